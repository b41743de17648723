"""The generation stage: failed LLM generations leave with their own reason, first."""

from __future__ import annotations

import pytest

from llm.output import (
    BACKEND_ERROR,
    GENERATION_DETAIL,
    GENERATION_ERROR,
    TRUNCATED,
    UNPARSEABLE,
)
from unified.model import QueryStyle, Sample, SampleMeta, Step
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


def _instruction(answer: str) -> Sample:
    constraints = [
        {"kind": "lowercase", "text": "Write in lowercase letters only."},
        {"kind": "length", "max_words": 5, "text": "Answer in at most 5 words."},
    ]
    return Sample(
        id=f"s-{len(answer)}",
        query="Describe the sea.",
        steps=[Step(answer=answer)],
        meta=SampleMeta(style=QueryStyle.instruction, extra={"constraints": constraints}),
    )


def test_an_instruction_response_that_breaks_a_stated_constraint_is_rejected() -> None:
    (stage,) = build_stages(["generation"])
    obeys, too_long, shouts = (
        _instruction("the sea is blue"),
        _instruction("the sea is wide and deep and blue"),
        _instruction("THE SEA"),
    )
    verdicts = stage.verify_batch([obeys, too_long, shouts], StageContext())
    assert [(v.accepted, v.reason) for v in verdicts] == [
        (True, None),
        (False, "constraint_violated"),
        (False, "constraint_violated"),
    ]
    assert str(verdicts[1].detail).startswith("constraint 'Answer in at most 5 words.': ")
    assert str(verdicts[2].detail).startswith("constraint 'Write in lowercase letters only.': ")
