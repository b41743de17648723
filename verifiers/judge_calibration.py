"""Scoring a judge on a calibration set of right and wrong answers, before it is trusted.

Light on purpose (pydantic only at import): the service's settings take `DEFAULT_MIN_ACCURACY`
from here, and every CLI command reads the settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from unified.model import Sample
    from verifiers.judge import SemanticJudge
    from verifiers.stages import StageContext

DEFAULT_MIN_ACCURACY = 0.8
"""The balanced accuracy a judge needs on its calibration set where nothing else is set."""


class JudgeCalibration(BaseModel):
    """How a judge did on a calibration set of right and wrong answers from the job's own
    catalog, before it judged anything of the job."""

    right: int = Field(description="Right answers in the set.")
    right_accepted: int
    wrong: int = Field(description="Schema-valid wrong answers in the set.")
    wrong_rejected: int
    accuracy: float = Field(
        description="Balanced accuracy: the mean of the shares of right answers accepted and "
        "wrong ones rejected (a judge that passes everything scores 0.5)."
    )
    min_accuracy: float = Field(description="Below this the job fails with judge_uncalibrated.")
    votes: int = 1

    @property
    def trusted(self) -> bool:
        return self.accuracy >= self.min_accuracy

    def summary(self) -> str:
        return (
            f"the judge accepted {self.right_accepted} of {self.right} right answers and "
            f"rejected {self.wrong_rejected} of {self.wrong} wrong ones from this catalog "
            f"(balanced accuracy {self.accuracy:.2f}, at least {self.min_accuracy:.2f} needed)"
        )


def calibrate(
    judge: SemanticJudge,
    labelled: Sequence[tuple[Sample, bool]],
    context: StageContext,
    min_accuracy: float,
) -> JudgeCalibration:
    """Judge `labelled` (each sample with whether it is right) and score the judge."""
    verdicts = judge.judge([sample for sample, _ in labelled], context)
    outcomes = [
        (is_right, verdict.accepted)
        for (_, is_right), verdict in zip(labelled, verdicts, strict=True)
    ]
    right = [accepted for is_right, accepted in outcomes if is_right]
    wrong = [not accepted for is_right, accepted in outcomes if not is_right]
    # No right or no wrong answer to score on is no evidence: the judge is not trusted.
    shares = [sum(side) / len(side) if side else 0.0 for side in (right, wrong)]
    return JudgeCalibration(
        right=len(right),
        right_accepted=sum(right),
        wrong=len(wrong),
        wrong_rejected=sum(wrong),
        accuracy=round(sum(shares) / 2, 4),
        min_accuracy=min_accuracy,
        votes=judge.votes,
    )
