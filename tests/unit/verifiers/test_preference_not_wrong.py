"""Preference pairs never take a sample rejected for a reason that says nothing against its
answer (a duplicate, a sandbox failure, an unreadable judge) as the rejected side."""

from __future__ import annotations

from pathlib import Path

import pytest

from generators.base import GenerationRequest
from generators.perturb import perturb
from generators.template.generator import TemplateGenerator
from service.export.preference import NOT_WRONG_REASONS, REJECTED_SAMPLE, build_pairs
from unified.catalogs import load_catalog
from verifiers import Verdict

TRAVEL = Path(__file__).resolve().parents[3] / "examples" / "travel_api.yaml"


@pytest.mark.parametrize(
    ("stage", "reason"),
    [("dedup", "duplicate"), ("dedup", "near_duplicate"), ("execution", "sandbox_error"),
     ("semantic", "judge_unparseable")],
)  # fmt: skip
def test_a_sample_rejected_for_a_reason_not_about_its_answer_is_not_a_rejected_side(
    stage: str, reason: str
) -> None:
    assert reason in NOT_WRONG_REASONS
    tools = load_catalog(TRAVEL).tools
    request = GenerationRequest(n=1, seed=2, options={"created": "2026-01-01T00:00:00+00:00"})
    (chosen,) = TemplateGenerator().generate(tools, request)
    copy = chosen.model_copy(update={"id": "copy"})
    (pair,) = build_pairs([chosen], rejected=[(copy, Verdict.reject(stage, reason, "seen"))])
    assert pair.source.startswith("perturbation:")
    assert pair.rejected != pair.chosen
    # A right-looking answer that a judge rejected (a copy would give a pair whose two sides are
    # the same answer, which is passed over: it teaches nothing).
    judged = perturb(chosen, "invented_value")
    assert judged is not None
    wrong = (judged, Verdict.reject("semantic", "judge_rejected", "wrong city"))
    (pair,) = build_pairs([chosen], rejected=[wrong])
    assert (pair.source, pair.reason) == (REJECTED_SAMPLE, "judge_rejected")
