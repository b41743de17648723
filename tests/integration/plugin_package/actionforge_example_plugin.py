"""A plug-in package with one of each extension: a generator, a verification stage, an LLM
backend and an export format. ActionForge finds them only through the entry points that
tests/integration/test_plugins.py writes beside this file (as an installed package's
`entry_points.txt` would); nothing in ActionForge names them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session, sessionmaker

from generators.base import GenerationRequest, GenerationUsage
from generators.errors import GenerationError
from generators.template.generator import TemplateGenerator
from llm.base import BackendConfig, LLMRequest, LLMResult
from service.export.accepted import DEFAULT_CHUNK_SIZE, accepted_chunks
from service.export.base import Exporter
from unified.model import Sample, Tool
from verifiers.stages import StageBase, StageContext
from verifiers.verdict import Verdict

SHORT_QUERY_STAGE = "short_query"
QUERY_TOO_LONG = "query_too_long"


class ShoutingGenerator(TemplateGenerator):
    """The template generator's samples with their queries in capitals; it requires the
    short_query stage and reports how many samples it made."""

    name = "shouting generator"
    required_stages = (SHORT_QUERY_STAGE,)

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        unknown = sorted(set(options) - {"exclaim"})
        if unknown:
            raise GenerationError(f"shouting generator: unknown option '{unknown[0]}'")

    def generate_with_usage(
        self, tools: Sequence[Tool], request: GenerationRequest
    ) -> tuple[list[Sample], GenerationUsage | None]:
        plain = request.model_copy(update={"options": {}})
        mark = "!" if request.options.get("exclaim") else ""
        samples = [
            sample.model_copy(update={"query": sample.query.upper() + mark})
            for sample in self.generate(tools, plain)
        ]
        return samples, GenerationUsage(requests=len(samples), samples=len(samples))


class ShortQueryOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_chars: int = Field(400, ge=1, description="The longest query kept.")


class ShortQueryStage(StageBase):
    """Rejects samples whose query is longer than its `max_chars` option."""

    name = SHORT_QUERY_STAGE
    options_model: ClassVar[type[BaseModel]] = ShortQueryOptions

    def verify_batch(self, samples: Sequence[Sample], context: StageContext) -> list[Verdict]:
        limit = context.options_for(self).max_chars
        return [
            Verdict.accept(self.name)
            if len(sample.query) <= limit
            else Verdict.reject(
                self.name, QUERY_TOO_LONG, f"{len(sample.query)} characters, at most {limit}"
            )
            for sample in samples
        ]


class ApprovingBackend:
    """An LLM backend that approves whatever a judge asks it about."""

    name = "approving"

    def __init__(self, config: BackendConfig) -> None:
        self.config = config

    def generate(self, requests: Sequence[LLMRequest]) -> list[LLMResult]:
        answer = '{"pass": true, "reason": "approved by the plug-in backend"}'
        return [LLMResult(text=answer, finish_reason="stop") for _ in requests]

    def close(self) -> None:
        pass


def query_lines(
    sessions: sessionmaker[Session], job_id: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[bytes]:
    """One accepted query a line."""
    for chunk in accepted_chunks(sessions, job_id, chunk_size=chunk_size):
        yield "".join(f"{sample.query}\n" for sample in chunk).encode()


QUERIES = Exporter("queries", "text/plain", ".txt", query_lines)

MODULE = "actionforge_example_plugin"
"""The name the package is installed under (tests import this file by another path)."""
ENTRY_POINTS = {
    "actionforge.generators": {"shouting": f"{MODULE}:ShoutingGenerator"},
    "actionforge.stages": {SHORT_QUERY_STAGE: f"{MODULE}:ShortQueryStage"},
    "actionforge.llm_backends": {"approving": f"{MODULE}:ApprovingBackend"},
    "actionforge.exporters": {"queries": f"{MODULE}:QUERIES"},
}
"""What the package's `entry_points.txt` declares."""
