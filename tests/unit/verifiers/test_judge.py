"""The semantic judge's pure parts: its prompt, its template checks, and how answers become
verdicts. The judge's decisions through real HTTP and the real engine are in tests/llm/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm.base import LLMResult
from unified.model import Sample, Step, Tool, ToolCall, Turn
from verifiers.judge import (
    JudgeTemplateError,
    judge_prompt,
    load_judge_template,
    verdict_from_answer,
)
from verifiers.verdict import Reason

WEATHER = Tool(
    name="get_weather",
    description="Current weather for a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)


def _sample() -> Sample:
    return Sample(
        id="s1",
        query="What's the weather in Lisbon?",
        tools=[WEATHER],
        steps=[
            Step(
                tool_calls=[ToolCall(name="get_weather", arguments={"city": "Lisbon"})],
                results=[{"temperature_c": 21}],
                answer="It is 21 °C in Lisbon.",
            )
        ],
    )


def _result(text: str, finish: str = "stop") -> LLMResult:
    return LLMResult(text=text, finish_reason=finish)  # type: ignore[arg-type]


def test_prompt_carries_query_tools_calls_results_and_answer() -> None:
    prompt = judge_prompt(load_judge_template(), _sample())
    assert "What's the weather in Lisbon?" in prompt
    assert '"name": "get_weather"' in prompt
    assert json.dumps([{"name": "get_weather", "arguments": {"city": "Lisbon"}}]) in prompt
    assert '"temperature_c": 21' in prompt
    assert "It is 21 °C in Lisbon." in prompt


def test_prompt_of_a_sample_without_calls_says_so() -> None:
    sample = Sample(id="s2", query="Tell me a joke", tools=[WEATHER])
    prompt = judge_prompt(load_judge_template(), sample)
    assert "(no call)" in prompt
    assert "Results of the calls" not in prompt


@pytest.mark.parametrize(
    ("text", "finish", "accepted", "reason"),
    [
        ('{"pass": true, "reason": "matches"}', "stop", True, None),
        ('{"pass": false, "reason": "the city is invented"}', "stop", False, "judge_rejected"),
        ('{"pass": false, "reason": ""}', "stop", False, "judge_rejected"),
        ("yes, looks fine", "stop", False, "judge_unparseable"),
        ('{"pass": "yes", "reason": "x"}', "stop", False, "judge_unparseable"),
        ('["pass"]', "stop", False, "judge_unparseable"),
        ('{"pass": true}', "stop", False, "judge_unparseable"),  # no reasoning
        ('{"reason": "fine", "pass": true, "score": 9}', "stop", False, "judge_unparseable"),
        ('{"reason": "the values all come from the query", "pass": true}', "stop", True, None),
        ('{"pass": true, "rea', "length", False, "judge_unparseable"),
    ],
)
def test_answers_become_verdicts(
    text: str, finish: str, accepted: bool, reason: str | None
) -> None:
    verdict = verdict_from_answer(_result(text, finish))
    assert verdict.stage == "semantic"
    assert verdict.accepted is accepted
    assert verdict.reason == reason


def test_rejection_keeps_the_judges_reason() -> None:
    verdict = verdict_from_answer(_result('{"pass": false, "reason": "the city is invented"}'))
    assert verdict.reason == Reason.judge_rejected
    assert verdict.detail == "the city is invented"


def test_a_failed_request_rejects_with_its_error() -> None:
    failed = LLMResult(text="", finish_reason="error", error="prompt is too long for the model")
    verdict = verdict_from_answer(failed)
    assert verdict.reason == Reason.judge_unparseable
    assert verdict.detail == "prompt is too long for the model"


def test_template_with_an_unknown_variable_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "judge.j2"
    path.write_text("Query: {{ query }} by {{ user_name }}")
    with pytest.raises(JudgeTemplateError, match=r"variable 'user_name'.*use only answer, calls"):
        load_judge_template(path)


def test_template_with_a_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "judge.j2"
    path.write_text("Query:\n{{ query }\n")
    with pytest.raises(JudgeTemplateError, match=r"judge\.j2: line \d+: .*fix the Jinja syntax"):
        load_judge_template(path)


def test_missing_template_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(JudgeTemplateError, match="cannot read the judge template"):
        load_judge_template(tmp_path / "nope.j2")


def test_users_own_template_is_used(tmp_path: Path) -> None:
    path = tmp_path / "judge.j2"
    path.write_text("Q={{ query }} CALLS={{ calls | length }}")
    assert judge_prompt(load_judge_template(path), _sample()) == (
        "Q=What's the weather in Lisbon? CALLS=1"
    )


def test_control_characters_inside_the_reason_do_not_make_it_unparseable() -> None:
    verdict = verdict_from_answer(_result('{"pass": false, "reason": "bad\x15value"}'))
    assert (verdict.reason, verdict.detail) == ("judge_rejected", "bad\x15value")


def _conversation() -> Sample:
    porto = Turn(
        query="And in Porto?",
        steps=[
            Step(
                tool_calls=[ToolCall(name="get_weather", arguments={"city": "Porto"})],
                results=[{"temperature_c": 17}],
            ),
            Step(answer="It is 17 °C in Porto."),
        ],
    )
    return _sample().model_copy(update={"turns": [porto]})


def test_a_conversations_prompt_shows_every_turn_in_order() -> None:
    prompt = judge_prompt(load_judge_template(), _conversation())
    shown = [
        "Turn 1, user:\nWhat's the weather in Lisbon?",
        'Turn 1, assistant\'s calls:\n[{"name": "get_weather", "arguments": {"city": "Lisbon"}}]',
        'Turn 1, results of the calls:\n[{"temperature_c": 21}]',
        "Turn 1, assistant's answer:\nIt is 21 °C in Lisbon.",
        "Turn 2, user:\nAnd in Porto?",
        'Turn 2, assistant\'s calls:\n[{"name": "get_weather", "arguments": {"city": "Porto"}}]',
        'Turn 2, results of the calls:\n[{"temperature_c": 17}]',
        "Turn 2, assistant's answer:\nIt is 17 °C in Porto.",
    ]
    places = [prompt.find(part) for part in shown]
    assert -1 not in places and places == sorted(places)
    assert "read with the conversation before" in prompt
    assert "from the user's messages so far or from the results of earlier calls" in prompt
    assert "User query:" not in prompt


def test_a_single_turn_prompt_has_no_turns_and_a_turn_without_calls_says_so() -> None:
    assert "Turn 1" not in judge_prompt(load_judge_template(), _sample())
    talk = _conversation()
    talk.turns[0].steps = [Step(answer="I can only tell the weather.")]
    prompt = judge_prompt(load_judge_template(), talk)
    assert "Turn 2, assistant's calls:\n(no call)" in prompt
    assert "Turn 2, results of the calls" not in prompt


def test_a_template_may_loop_over_the_turns(tmp_path: Path) -> None:
    path = tmp_path / "turns.j2"
    path.write_text(
        "{% for t in turns %}{{ t.query }} -> {{ t.calls | json }} = {{ t.results | json }}; "
        "{{ t.answer }}\n{% endfor %}"
    )
    assert judge_prompt(load_judge_template(path), _conversation()).splitlines() == [
        "What's the weather in Lisbon? -> "
        '[{"name": "get_weather", "arguments": {"city": "Lisbon"}}] = [{"temperature_c": 21}]; '
        "It is 21 °C in Lisbon.",
        'And in Porto? -> [{"name": "get_weather", "arguments": {"city": "Porto"}}] = '
        '[{"temperature_c": 17}]; It is 17 °C in Porto.',
    ]
