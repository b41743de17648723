"""The generator interface and the registry of generators by name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

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


class Generator(Protocol):
    """Makes candidate samples from tools. Deterministic for a request's seed."""

    def generate(self, tools: Sequence[Tool], request: GenerationRequest) -> list[Sample]: ...


GENERATORS = Registry(
    "generator",
    {
        "template": "generators.template:TemplateGenerator",
        "llm": "generators.llm_generator:LlmGenerator",
    },
    "actionforge.generators",
)
