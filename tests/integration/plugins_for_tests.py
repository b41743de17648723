"""Generators and a verification stage registered only by the job-engine tests: a small
deterministic generator, one that repeats itself (for the dedup stage), a slow one, one that
always raises, one that refuses every spec, and a stage that crashes. Workers started by the
tests load them through worker_with_test_plugins.py."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

from generators.base import GENERATORS, GenerationRequest, GeneratorBase
from unified.errors import ActionForgeError
from unified.model import QueryStyle, Sample, SampleMeta, Step, Tool, ToolCall
from verifiers.stages import STAGES, StageBase, StageContext
from verifiers.verdict import Verdict

# Every REJECT_EVERY-th sample calls a tool the catalog does not have (format: unknown_tool).
REJECT_EVERY = 4


class CountingGenerator(GeneratorBase):
    """Sample i asks an irrelevant question (no call), except every REJECT_EVERY-th, which
    calls an unknown tool; deterministic for a seed."""

    def generate(self, tools: Sequence[Tool], request: GenerationRequest) -> list[Sample]:
        rng = random.Random(request.seed)
        samples = []
        for i in range(request.n):
            word = rng.choice(["tides", "poems", "chess", "owls"])
            calls = [ToolCall(name="no_such_tool", arguments={})] if i % REJECT_EVERY == 0 else []
            samples.append(
                Sample(
                    id=f"{request.id_prefix}{i}",
                    tools=list(tools),
                    query=f"Tell me about {word}.",
                    steps=[Step(tool_calls=calls, answer=None if calls else "I cannot help.")],
                    meta=SampleMeta(style=QueryStyle.irrelevance, generator="counting"),
                )
            )
        return samples


class DuplicatingGenerator(GeneratorBase):
    """Weather questions about three cities, each asked plainly or with one word more: exact and
    near duplicates (same calls) within and across batches; every REJECT_EVERY-th sample calls
    a tool the catalog does not have. Deterministic for a seed."""

    CITIES = ("Lisbon", "Osaka", "Quito")
    ENDINGS = ("", " please", " today")

    def generate(self, tools: Sequence[Tool], request: GenerationRequest) -> list[Sample]:
        rng = random.Random(request.seed)
        samples = []
        for i in range(request.n):
            city, ending = rng.choice(self.CITIES), rng.choice(self.ENDINGS)
            name = "no_such_tool" if i % REJECT_EVERY == 0 else "get_weather"
            samples.append(
                Sample(
                    id=f"{request.id_prefix}{i}",
                    tools=list(tools),
                    query=(
                        "Tell me the current weather conditions and the temperature in the "
                        f"city of {city} for my trip{ending}"
                    ),
                    steps=[Step(tool_calls=[ToolCall(name=name, arguments={"city": city})])],
                    meta=SampleMeta(style=QueryStyle.simple, generator="duplicating"),
                )
            )
        return samples


class SlowGenerator(GeneratorBase):
    """The template generator, a tenth of a second slower per batch, so a job of a few dozen
    batches is surely still running when a test kills a worker."""

    def __init__(self) -> None:
        self._inner = GENERATORS.get("template")()

    def generate(self, tools: Sequence[Tool], request: GenerationRequest) -> list[Sample]:
        time.sleep(0.1)
        return list(self._inner.generate(tools, request))


class ExplodingGenerator(GeneratorBase):
    """Raises a programming error on every call, as a buggy generator would."""

    calls = 0

    def generate(self, tools: Sequence[Tool], request: GenerationRequest) -> list[Sample]:
        ExplodingGenerator.calls += 1
        raise ZeroDivisionError("the generator divided by zero")


class RefusingGenerator(GeneratorBase):
    """Refuses every request the way a generator refuses an impossible spec."""

    def generate(self, tools: Sequence[Tool], request: GenerationRequest) -> list[Sample]:
        raise ActionForgeError("style 'multiple' needs at least 2 tools; the catalog has 1")


class CrashingStage(StageBase):
    """A verification stage with a bug: raises on every batch."""

    name = "crashing"
    calls = 0

    def verify_batch(self, samples: Sequence[Sample], context: StageContext) -> list[Verdict]:
        CrashingStage.calls += 1
        raise KeyError("verdict")


def register_test_plugins() -> None:
    """Make the generators and the stage above known by name in this process."""
    module = __name__
    STAGES.register("crashing", f"{module}:CrashingStage")
    GENERATORS.register("counting", f"{module}:CountingGenerator")
    GENERATORS.register("duplicating", f"{module}:DuplicatingGenerator")
    GENERATORS.register("slow", f"{module}:SlowGenerator")
    GENERATORS.register("exploding", f"{module}:ExplodingGenerator")
    GENERATORS.register("refusing", f"{module}:RefusingGenerator")
