"""The generator interface and the registry of generators by name."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from generators.errors import GenerationError
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


class Generator(Protocol):
    """Makes candidate samples from tools. Deterministic for a request's seed."""

    def generate(self, tools: Sequence[Tool], request: GenerationRequest) -> list[Sample]: ...


GENERATORS = Registry(
    "generator",
    {
        "template": "generators.template.generator:TemplateGenerator",
        "llm": "generators.llm.generator:LlmGenerator",
    },
    "actionforge.generators",
)
