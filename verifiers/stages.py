"""Verification stages by name, and the pipeline that runs them in order over a batch.

A stage judges a batch of samples at once (an LLM judge or a de-duplicator needs the whole
batch) and returns one verdict per sample. A sample leaves the pipeline at the first stage that
rejects it; the stages after that never see it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from unified.model import Sample, Tool
from unified.registry import Registry
from verifiers.format import STAGE as FORMAT_STAGE
from verifiers.format import FormatVerifier
from verifiers.verdict import Verdict


class Stage(Protocol):
    """One verification stage: judges samples against the job's catalog tools."""

    name: str

    def verify_batch(self, samples: Sequence[Sample], tools: Sequence[Tool]) -> list[Verdict]:
        """One verdict per sample, in the order of `samples`."""
        ...


class FormatStage:
    """The format stage: calls name a tool offered to the sample and fit its JSON Schema.

    A sample that carries its own tools is checked against those (it may only call what it was
    offered); one without tools is checked against the catalog.
    """

    name = FORMAT_STAGE

    def __init__(self) -> None:
        self._verifier = FormatVerifier()

    def verify_batch(self, samples: Sequence[Sample], tools: Sequence[Tool]) -> list[Verdict]:
        """Check every sample's calls; never raises on bad calls."""
        return [self._verifier.verify(s, s.tools if s.tools else tools) for s in samples]


STAGES = Registry(
    "verification stage", {FORMAT_STAGE: "verifiers.stages:FormatStage"}, "actionforge.stages"
)


def check_stage_names(names: Sequence[str]) -> None:
    """Raise `UnknownNameError` naming the first unknown stage and listing the known ones."""
    for name in names:
        STAGES.get(name)


def build_stages(names: Sequence[str]) -> list[Stage]:
    """Instantiate the stages called `names`, in order."""
    return [STAGES.get(name)() for name in names]


def run_stages(
    stages: Sequence[Stage], samples: Sequence[Sample], tools: Sequence[Tool]
) -> list[list[Verdict]]:
    """Run `stages` in order; per sample, the verdicts of the stages it reached.

    A sample's last verdict decides it: rejected if that stage rejected it, accepted when it
    passed every stage (or there were none, and its list is empty).
    """
    verdicts: list[list[Verdict]] = [[] for _ in samples]
    alive = list(range(len(samples)))
    for stage in stages:
        if not alive:
            break
        judged = stage.verify_batch([samples[i] for i in alive], tools)
        if len(judged) != len(alive):
            raise RuntimeError(
                f"stage '{stage.name}' returned {len(judged)} verdicts for {len(alive)} samples"
            )
        for index, verdict in zip(alive, judged, strict=True):
            verdicts[index].append(verdict)
        alive = [i for i, verdict in zip(alive, judged, strict=True) if verdict.accepted]
    return verdicts
