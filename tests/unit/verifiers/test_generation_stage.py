"""The generation stage: failed LLM generations leave with their own reason, first."""

from __future__ import annotations

import pytest

from generators.llm_output import (
    BACKEND_ERROR,
    GENERATION_DETAIL,
    GENERATION_ERROR,
    TRUNCATED,
    UNPARSEABLE,
)
from unified.model import Sample, SampleMeta
from verifiers.stages import StageContext, StageOrderError, build_stages, check_stage_order


def _failed(kind: str | None) -> Sample:
    extra = {} if kind is None else {GENERATION_ERROR: kind, GENERATION_DETAIL: f"{kind} detail"}
    return Sample(id=f"s-{kind}", query="q", meta=SampleMeta(extra=extra))


def test_each_failure_gets_its_reason_and_good_samples_pass() -> None:
    (stage,) = build_stages(["generation"])
    samples = [_failed(None), _failed(TRUNCATED), _failed(BACKEND_ERROR), _failed(UNPARSEABLE)]
    verdicts = stage.verify_batch(samples, StageContext())
    assert [(v.stage, v.accepted, v.reason) for v in verdicts] == [
        ("generation", True, None),
        ("generation", False, "truncated"),
        ("generation", False, "generation_error"),
        ("generation", False, "unparseable_output"),
    ]
    assert verdicts[1].detail == "truncated detail"


def test_generation_must_come_first() -> None:
    check_stage_order(["generation", "format", "dedup"])
    with pytest.raises(StageOrderError, match=r"'generation' must come first.*before 'format'"):
        check_stage_order(["format", "generation"])
