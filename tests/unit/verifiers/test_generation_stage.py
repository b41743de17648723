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
from unified.model import QueryStyle, Sample, SampleMeta, Step, Turn
from verifiers.stages import (
    StageContext,
    StageOrderError,
    build_stages,
    check_stage_order,
    run_stages,
)


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


def _conversation(first: str, second: str, constraints: list[dict[str, object]]) -> Sample:
    return Sample(
        id="talk",
        query="Describe the sea.",
        steps=[Step(answer=first)],
        turns=[Turn(query="Now the mountains, please.", steps=[Step(answer=second)])],
        meta=SampleMeta(style=QueryStyle.instruction, extra={"constraints": constraints}),
    )


def test_a_conversations_constraints_bind_the_turn_they_name_or_the_last_answer() -> None:
    lowercase_first = {"kind": "lowercase", "text": "Write in lowercase.", "turn": 1}
    short_last = {"kind": "length", "max_words": 3, "text": "At most 3 words."}
    obeys = _conversation("the sea is blue", "High And Cold", [lowercase_first, short_last])
    shouts_first = _conversation("The Sea", "high and cold", [lowercase_first, short_last])
    long_last = _conversation("the sea", "high and very cold", [lowercase_first, short_last])
    verdicts = run_stages(
        build_stages(["generation"]), [obeys, shouts_first, long_last], StageContext()
    ).verdicts
    assert [(v[-1].accepted, v[-1].reason, v[-1].detail) for v in verdicts] == [
        (True, None, None),
        (
            False,
            "constraint_violated",
            "turn 1: constraint 'Write in lowercase.': has capital letters",
        ),
        (False, "constraint_violated", "constraint 'At most 3 words.': 4 words, at most 3 asked"),
    ]


def test_a_constraint_naming_a_turn_the_conversation_lacks_says_so() -> None:
    third = {"kind": "lowercase", "text": "Write in lowercase.", "turn": 3}
    (verdict,) = build_stages(["generation"])[0].verify_batch(
        [_conversation("a", "b", [third])], StageContext()
    )
    assert (verdict.accepted, verdict.reason) == (False, "constraint_violated")
    assert verdict.detail == (
        "turn 3: constraint 'Write in lowercase.': it names turn 3, and the conversation has 2 "
        "turn(s); give a turn number from 1, or none for the last answer"
    )
