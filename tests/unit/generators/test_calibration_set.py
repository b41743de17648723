"""The judge's calibration set: half right answers from the template generator, half wrong
ones of every kind, seeded; the no-LLM stages accept the right ones and reject the wrong ones
they can tell (a judge must do at least as well to be trusted). A set with one side empty is
no evidence, and scores no trust (a fake backend: the scoring is pure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from generators.calibration_set import calibration_set
from llm.base import LLMResult
from unified.catalogs import load_catalog
from unified.model import Sample
from verifiers.judge import SemanticJudge
from verifiers.judge_calibration import calibrate
from verifiers.stages import DEFAULT_STAGES, StageContext, build_stages, run_stages

TRAVEL = load_catalog(Path(__file__).resolve().parents[3] / "examples" / "travel_api.yaml").tools


def shown(labelled: list[tuple[Sample, bool]]) -> list[tuple[str, str, str, bool]]:
    """What a judge is shown of each sample, and its label (not when it was made)."""
    return [(s.id, s.query, str(s.tool_calls()), right) for s, right in labelled]


def test_half_right_half_wrong_seeded_and_distinct() -> None:
    labelled = calibration_set(TRAVEL, 24, seed=5)
    assert sorted(right for _, right in labelled) == [False] * 12 + [True] * 12
    assert shown(labelled) == shown(calibration_set(TRAVEL, 24, seed=5))
    assert shown(labelled) != shown(calibration_set(TRAVEL, 24, seed=6))
    right = {(s.query, str(s.tool_calls())) for s, is_right in labelled if is_right}
    wrong = [(s.query, str(s.tool_calls())) for s, is_right in labelled if not is_right]
    assert not right & set(wrong)
    assert len({s.id for s, _ in labelled}) == len(labelled)


def test_the_no_llm_stages_pass_its_right_answers_and_reject_most_wrong_ones() -> None:
    labelled = calibration_set(TRAVEL, 40, seed=1)
    result = run_stages(
        build_stages(list(DEFAULT_STAGES)), [s for s, _ in labelled], StageContext()
    )
    kept = set(result.survivors())
    right = [i for i, (_, is_right) in enumerate(labelled) if is_right]
    wrong = [i for i, (_, is_right) in enumerate(labelled) if not is_right]
    assert all(i in kept for i in right)
    assert sum(i not in kept for i in wrong) >= len(wrong) // 2


class _Approving:
    def generate(self, requests: list[Any]) -> list[LLMResult]:
        answer = '{"reason": "fine", "pass": true}'
        return [LLMResult(text=answer, finish_reason="stop") for _ in requests]


def test_a_set_without_wrong_answers_gives_no_trust() -> None:
    labelled = [(sample, True) for sample, right in calibration_set(TRAVEL, 8, seed=2) if right]
    judge = SemanticJudge(_Approving())  # type: ignore[arg-type]
    scored = calibrate(judge, labelled, StageContext.for_catalog(TRAVEL), min_accuracy=0.8)
    assert (scored.right, scored.wrong, scored.accuracy, scored.trusted) == (4, 0, 0.5, False)
