"""The `generation` stage: rejects the samples whose generation failed (an LLM answer cut off at
its token limit, a request the backend refused, an answer that did not parse).

The LLM generator keeps such samples, marked in `meta.extra`, instead of dropping them, so that
every requested sample is accounted for in the job's funnel; this stage is where they leave,
each with its own reason. It runs first: the other stages have nothing to check in them.
"""

from __future__ import annotations

from collections.abc import Sequence

from generators.llm_output import BACKEND_ERROR, TRUNCATED, UNPARSEABLE, generation_failure
from unified.model import Sample
from verifiers.stages import StageContext
from verifiers.verdict import Reason, Verdict

STAGE = "generation"

REASONS = {
    TRUNCATED: Reason.truncated,
    BACKEND_ERROR: Reason.generation_error,
    UNPARSEABLE: Reason.unparseable_output,
}


def generation_verdict(sample: Sample) -> Verdict:
    """Accept a sample unless it records a failed generation."""
    failure = generation_failure(sample)
    if failure is None:
        return Verdict.accept(STAGE)
    kind, detail = failure
    return Verdict.reject(STAGE, REASONS.get(kind, Reason.generation_error), detail)


class GenerationStage:
    """Rejects failed generations with `truncated`, `generation_error` or `unparseable_output`."""

    name = STAGE

    def verify_batch(self, samples: Sequence[Sample], context: StageContext) -> list[Verdict]:
        """One verdict per sample, in order."""
        return [generation_verdict(sample) for sample in samples]
