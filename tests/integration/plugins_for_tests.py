"""Generators and a verification stage registered only by the job-engine tests: a small
deterministic generator, a slow one, one that always raises, one that refuses every spec, and a
stage that crashes. Workers started by the tests load them through worker_with_test_plugins.py."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

from generators.base import GENERATORS, GenerationRequest
from unified.errors import ActionForgeError
from unified.model import QueryStyle, Sample, SampleMeta, Step, Tool, ToolCall
from verifiers.stages import STAGES
from verifiers.verdict import Verdict

# Every REJECT_EVERY-th sample calls a tool the catalog does not have (format: unknown_tool).
REJECT_EVERY = 4


class CountingGenerator:
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


class SlowGenerator:
    """The template generator, a tenth of a second slower per batch, so a job of a few dozen
    batches is surely still running when a test kills a worker."""

    def __init__(self) -> None:
        self._inner = GENERATORS.get("template")()

    def generate(self, tools: Sequence[Tool], request: GenerationRequest) -> list[Sample]:
        time.sleep(0.1)
        return list(self._inner.generate(tools, request))


class ExplodingGenerator:
    """Raises a programming error on every call, as a buggy generator would."""

    calls = 0

    def generate(self, tools: Sequence[Tool], request: GenerationRequest) -> list[Sample]:
        ExplodingGenerator.calls += 1
        raise ZeroDivisionError("the generator divided by zero")


class RefusingGenerator:
    """Refuses every request the way a generator refuses an impossible spec."""

    def generate(self, tools: Sequence[Tool], request: GenerationRequest) -> list[Sample]:
        raise ActionForgeError("style 'multiple' needs at least 2 tools; the catalog has 1")


class CrashingStage:
    """A verification stage with a bug: raises on every batch."""

    name = "crashing"
    calls = 0

    def verify_batch(self, samples: Sequence[Sample], tools: Sequence[Tool]) -> list[Verdict]:
        CrashingStage.calls += 1
        raise KeyError("verdict")


def register_test_plugins() -> None:
    """Make the generators and the stage above known by name in this process."""
    module = __name__
    STAGES.register("crashing", f"{module}:CrashingStage")
    GENERATORS.register("counting", f"{module}:CountingGenerator")
    GENERATORS.register("slow", f"{module}:SlowGenerator")
    GENERATORS.register("exploding", f"{module}:ExplodingGenerator")
    GENERATORS.register("refusing", f"{module}:RefusingGenerator")
