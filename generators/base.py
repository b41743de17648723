"""The generator interface and the registry of generators by name.

A generator is a class registered under a short name (`GENERATORS`, or the entry point group
`actionforge.generators`). The service asks the class, before anything is queued, whether a job's
options are right (`check_options`), what it needs (`required_stages`, `uses_llm`) and to fill in
the deployment's LLM (`with_llm_defaults`); a worker makes one instance per process and calls
`generate_with_usage` per batch. `GeneratorBase` gives every member a default, so a plug-in
defines `generate` and overrides only what it needs.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field

from generators.errors import GenerationError
from llm.base import LlmDefaults
from unified.model import QueryStyle, Sample, Tool
from unified.registry import Registry

DEFAULT_STYLES: dict[QueryStyle, float] = {
    QueryStyle.simple: 0.3,
    QueryStyle.multiple: 0.2,
    QueryStyle.parallel: 0.2,
    QueryStyle.parallel_multiple: 0.15,
    QueryStyle.irrelevance: 0.15,
}


class GenerationRequest(BaseModel):
    """What to generate: how many samples, the mix of query styles, the seed, and the id prefix
    that makes sample ids deterministic (`f"{id_prefix}{i}"` for i in range(n))."""

    model_config = ConfigDict(extra="forbid")

    n: int = Field(ge=1)
    seed: int = 0
    styles: dict[QueryStyle, float] = Field(default_factory=lambda: dict(DEFAULT_STYLES))
    id_prefix: str = ""
    options: dict[str, Any] = Field(default_factory=dict)


def derived_seed(*parts: object) -> int:
    """A seed that depends only on `parts` (not on the process's string-hash seed)."""
    digest = hashlib.blake2b(":".join(str(part) for part in parts).encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big")


def style_weights(
    request: GenerationRequest, styles: Sequence[QueryStyle], generator: str
) -> list[tuple[QueryStyle, float]]:
    """The request's styles with a weight above zero, in the order of `styles` (those the
    generator makes); `GenerationError`, naming the generator, for a style it cannot make, a
    negative weight or no weight at all."""
    unsupported = [s.value for s, w in request.styles.items() if w > 0 and s not in styles]
    if unsupported:
        raise GenerationError(
            f"{generator}: cannot make '{unsupported[0]}' samples; remove it from "
            f"styles or give it weight 0 (it makes: {', '.join(s.value for s in styles)})"
        )
    if any(weight < 0 for weight in request.styles.values()):
        raise GenerationError(
            f"{generator}: style weights must be zero or more; fix the negative weight"
        )
    weights = [(style, float(request.styles.get(style, 0.0))) for style in styles]
    weights = [(style, weight) for style, weight in weights if weight > 0]
    if not weights:
        raise GenerationError(f"{generator}: give at least one style a weight above zero")
    return weights


def pick_style(weights: list[tuple[QueryStyle, float]], rng: random.Random) -> QueryStyle:
    """A style drawn in proportion to its weight."""
    point = rng.random() * sum(weight for _, weight in weights)
    for style, weight in weights:
        point -= weight
        if point < 0:
            return style
    return weights[-1][0]


class ServerUsage(BaseModel):
    """What one LLM server answered of a batch."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class GenerationUsage(BaseModel):
    """What generating a batch cost: LLM requests, tokens, seconds spent waiting on the backend,
    samples returned, failed generations by kind (see `llm.output.FAILURES`), and per server
    (the `openai` backend's base URLs) the requests it answered; what a generator without an
    LLM reports is None."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    wall_s: float = 0.0
    samples: int = 0
    failures: dict[str, int] = Field(default_factory=dict)
    servers: dict[str, ServerUsage] = Field(default_factory=dict)

    @property
    def completion_tokens_per_s(self) -> float:
        """Throughput of the backend over this batch (0 when nothing was sent)."""
        return self.completion_tokens / self.wall_s if self.wall_s > 0 else 0.0

    def count_failure(self, kind: str) -> None:
        """Count one failed generation of `kind`."""
        self.failures[kind] = self.failures.get(kind, 0) + 1


class Generator(Protocol):
    """Makes candidate samples from tools. Deterministic for a request's seed.

    The class-level members are asked without an instance (the API checks a job before any
    worker loads templates or a model).
    """

    uses_llm: ClassVar[bool]
    """Generation calls an LLM: the service gives its jobs engine-sized batches
    (AF_LLM_BATCH_SIZE) and offers its LLM (AF_LLM_BASE_URL, AF_LLM_MODEL) to
    `with_llm_defaults`."""
    required_stages: ClassVar[tuple[str, ...]]
    """Verification stages every job of this generator runs first, in this order (the llm
    generator's `generation` stage rejects the failed generations it keeps as marked samples)."""

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> object:
        """Refuse bad options with a `GenerationError` that names the option and what to change;
        load nothing (files named by options are checked where they are used)."""
        ...

    @classmethod
    def with_llm_defaults(cls, options: Mapping[str, Any], llm: LlmDefaults) -> dict[str, Any]:
        """The options with the deployment's LLM filled in where they name none."""
        ...

    def generate(self, tools: Sequence[Tool], request: GenerationRequest) -> list[Sample]:
        """At most `request.n` samples with ids `f"{request.id_prefix}{i}"`."""
        ...

    def generate_with_usage(
        self, tools: Sequence[Tool], request: GenerationRequest
    ) -> tuple[list[Sample], GenerationUsage | None]:
        """The samples of `generate`, and what making them cost (None: nothing to report)."""
        ...


class GeneratorBase:
    """Defaults for every `Generator` member but `generate`: no LLM, no required stage, no
    options, no usage to report."""

    uses_llm: ClassVar[bool] = False
    required_stages: ClassVar[tuple[str, ...]] = ()
    name: ClassVar[str] = ""
    """How error messages name the generator (default: its class)."""

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> object:
        if options:
            named = cls.name or f"generator {cls.__name__}"
            raise GenerationError(f"{named} takes no options; remove them")
        return None

    @classmethod
    def with_llm_defaults(cls, options: Mapping[str, Any], llm: LlmDefaults) -> dict[str, Any]:
        return dict(options)

    def generate(self, tools: Sequence[Tool], request: GenerationRequest) -> list[Sample]:
        raise NotImplementedError

    def generate_with_usage(
        self, tools: Sequence[Tool], request: GenerationRequest
    ) -> tuple[list[Sample], GenerationUsage | None]:
        return self.generate(tools, request), None


def load_generator(name: str) -> type[Generator]:
    """The generator class registered as `name`; `UnknownNameError` for an unknown name and
    `GenerationError` for a class that lacks a member of the `Generator` protocol."""
    generator = GENERATORS.get(name)
    missing = [
        member
        for member in (
            "uses_llm",
            "required_stages",
            "check_options",
            "with_llm_defaults",
            "generate",
            "generate_with_usage",
        )
        if not hasattr(generator, member)
    ]
    if missing:
        raise GenerationError(
            f"generator '{name}' lacks {', '.join(missing)}; subclass "
            "generators.base.GeneratorBase, which gives every member a default"
        )
    checked: type[Generator] = generator
    return checked


GENERATORS = Registry(
    "generator",
    {
        "template": "generators.template.generator:TemplateGenerator",
        "llm": "generators.llm.generator:LlmGenerator",
    },
    "actionforge.generators",
)
