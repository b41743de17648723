"""The LLM generator's multi_turn style (APIGen-MT) with scripted LLMs and the real mock API:
blueprints read and validated on the mock before any dialogue, the dialogue's steps and how it
ends, the conversation as a format 1.1 sample with its blueprint in `meta.extra`, every round's
requests of a batch in one backend call, and the generation stage's verdicts on what went wrong.
The same style against real vLLM and SmolLM2: tests/llm/test_llm_multi_turn_smollm2.py."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from llm_scripted_backend import Following, ScriptedBackend, user_text

from generators.base import GenerationRequest
from generators.errors import GenerationError
from generators.llm.blueprint import (
    Blueprint,
    BlueprintTurn,
    call_key,
    parse_blueprint,
    read_blueprint,
    stated_details,
    unmatched,
    validate_blueprint,
)
from generators.llm.dialogue import RESULT_CHARS, Dialogue, End, Phase
from generators.llm.few_shot import choose_examples, read_examples
from generators.llm.generator import LlmGenerator
from generators.llm.prompts import PromptSet
from llm.base import LLMRequest, LLMResult
from llm.output import (
    BLUEPRINT_FAILED,
    BLUEPRINT_NOT_FOLLOWED,
    PROMPT_TOO_LONG,
    TRUNCATED,
    Unparseable,
    generation_failure,
)
from service.pipeline.tool_api import MockToolApi
from unified.catalogs import load_catalog
from unified.model import QueryStyle, Sample, ToolCall
from verifiers.mock_api import MockApi
from verifiers.stages import StageContext, build_stages, run_stages

ROOT = Path(__file__).resolve().parents[3]
TRAVEL = load_catalog(ROOT / "examples" / "travel_api.yaml").tools
BY_NAME = {tool.name: tool for tool in TRAVEL}
MULTI_TURN = {QueryStyle.multi_turn: 1.0}
CREATED = "2026-01-31T12:00:00+00:00"

WEATHER = {"name": "get_weather", "arguments": {"city": "Lisbon"}}
FLIGHTS = {
    "name": "search_flights",
    "arguments": {"origin": "OSL", "destination": "FCO", "date": "2026-05-03"},
}


def blueprint_text(*turns: list[dict[str, Any]]) -> str:
    return json.dumps(
        {
            "intent": "Weather in Lisbon, then flights from Oslo to Rome on 2026-05-03.",
            "turns": [
                {"request": f"part {number}", "calls": calls}
                for number, calls in enumerate(turns, 1)
            ],
            "outcome": "The user knows the weather and the flights.",
        }
    )


def generate(
    backend: ScriptedBackend, n: int = 6, seed: int = 3, **more: Any
) -> tuple[list[Sample], Any]:
    styles = more.pop("styles", MULTI_TURN)
    options = {"model": "scripted", "created": CREATED, **more}
    request = GenerationRequest(n=n, seed=seed, styles=styles, id_prefix="m-", options=options)
    return LlmGenerator(backend=backend, tool_api=MockToolApi).generate_with_usage(TRAVEL, request)


def generation_verdicts(samples: list[Sample]) -> list[tuple[bool, str | None, str | None]]:
    (stage,) = build_stages(["generation"])
    result = run_stages([stage], samples, StageContext(tools=TRAVEL))
    return [(v[-1].accepted, v[-1].reason, v[-1].detail) for v in result.verdicts]


# --- blueprints ---------------------------------------------------------------------------


def test_a_blueprint_is_read_turn_by_turn() -> None:
    blueprint = parse_blueprint(blueprint_text([WEATHER], [FLIGHTS, WEATHER]))
    assert blueprint.intent.startswith("Weather in Lisbon")
    assert [turn.request for turn in blueprint.turns] == ["part 1", "part 2"]
    names = [call.name for call in blueprint.calls()]
    assert names == ["get_weather", "search_flights", "get_weather"]
    again = read_blueprint(blueprint.as_dict())
    assert again.as_dict() == blueprint.as_dict()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not json", "not JSON"),
        ('{"intent": "x", "turns": [], "outcome": "y"}', "has no turns"),
        ('{"intent": "x", "outcome": "y"}', "has no 'turns'"),
        ('{"intent": "x", "turns": [{"request": "r", "calls": []}], "outcome": "y"}', "no call"),
        ('{"intent": "x", "turns": ["r"], "outcome": "y"}', "turn 1 is not an object"),
        ('{"intent": "x", "turns": [{"calls": [{}]}], "outcome": "y"}', "lacks a string"),
        (
            '{"intent": "x", "turns": [{"request": "r", "calls": [{"x": 1}]}], "outcome": "y"}',
            "call 0 of blueprint turn 1 in the output is not an object with a string 'name'",
        ),
    ],
)
def test_a_malformed_blueprint_is_unparseable_with_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(Unparseable, match=problem):
        parse_blueprint(text)


def test_validation_runs_the_calls_on_the_mock_and_keeps_their_results() -> None:
    blueprint = parse_blueprint(blueprint_text([WEATHER], [FLIGHTS]))
    tools = [BY_NAME["get_weather"], BY_NAME["search_flights"]]
    assert validate_blueprint(blueprint, MockApi(tools)) is None
    mock = MockApi(tools)
    expected = [[mock.call(ToolCall.model_validate(c)).body] for c in (WEATHER, FLIGHTS)]
    assert [turn.results for turn in blueprint.turns] == expected
    assert blueprint.as_dict()["turns"][1]["results"] == expected[1]


def test_a_blueprint_whose_call_fails_on_the_mock_names_the_turn_call_and_reason() -> None:
    bad = {"name": "search_flights", "arguments": {"origin": "OSL", "destination": "FCO"}}
    blueprint = parse_blueprint(blueprint_text([WEATHER], [bad]))
    problem = validate_blueprint(
        blueprint, MockApi([BY_NAME["get_weather"], BY_NAME["search_flights"]])
    )
    assert problem is not None
    assert problem.startswith(
        "blueprint turn 2, call 1 ('search_flights') fails on the mock API: "
        "missing_required_argument: "
    )
    unknown = parse_blueprint(blueprint_text([{"name": "book_spa", "arguments": {}}]))
    assert "unknown_tool" in str(validate_blueprint(unknown, MockApi(TRAVEL)))


def test_calls_compare_by_name_and_arguments_whatever_their_order_and_number_form() -> None:
    one = ToolCall(name="f", arguments={"a": 2.0, "b": {"c": [1.0, "x"]}})
    same = ToolCall(name="f", arguments={"b": {"c": [1, "x"]}, "a": 2})
    assert call_key(one) == call_key(same) == 'f({"a":2,"b":{"c":[1,"x"]}})'
    other = ToolCall(name="f", arguments={"a": 2.5})
    missing, extra = unmatched([one, other, one], [same, ToolCall(name="g")])
    assert missing == [call_key(one), call_key(other)]
    assert extra == ["g({})"]


def test_the_details_a_user_states_are_each_argument_value_once() -> None:
    calls = [ToolCall.model_validate(FLIGHTS), ToolCall(name="x", arguments={"date": "2026-05-03"})]
    assert stated_details(calls) == ["origin: OSL", "destination: FCO", "date: 2026-05-03"]
    assert stated_details([ToolCall(name="y", arguments={"n": 3, "tags": ["a"]})]) == [
        "n: 3",
        'tags: ["a"]',
    ]


# --- a dialogue ---------------------------------------------------------------------------


def dialogue(max_turns: int = 4) -> Dialogue:
    blueprint = Blueprint(
        "weather then flights",
        [
            BlueprintTurn("the weather", [ToolCall.model_validate(WEATHER)]),
            BlueprintTurn("flights", [ToolCall.model_validate(FLIGHTS)]),
        ],
        "done",
    )
    return Dialogue(blueprint, MockApi(TRAVEL), max_turns)


def test_a_dialogue_that_makes_the_blueprints_calls_completes() -> None:
    talk = dialogue()
    assert talk.phase is Phase.user and talk.user_variables()["request"] == "the weather"
    assert talk.user_variables()["details"] == ["city: Lisbon"]
    talk.take_message("How is the weather in Lisbon?")
    assert talk.act_variables() == {"history": [], "message": "How is the weather in Lisbon?"}
    talk.take_calls([ToolCall.model_validate(WEATHER)])
    (call,) = talk.answer_variables()["calls"]
    assert call["name"] == "get_weather" and len(call["result"]) <= RESULT_CHARS
    talk.take_answer("Sunny.")
    assert not talk.finished and talk.user_variables()["request"] == "flights"
    (earlier,) = talk.user_variables()["history"]
    assert earlier["message"] == "How is the weather in Lisbon?" and earlier["answer"] == "Sunny."
    talk.take_message("Now flights from OSL to FCO on 2026-05-03.")
    talk.take_calls([ToolCall.model_validate(FLIGHTS)])
    talk.take_answer("Here they are.")
    assert talk.end is End.completed and talk.not_followed is None
    first, second = talk.turns
    mock = MockApi(TRAVEL)
    assert first.steps[0].results == [mock.call(ToolCall.model_validate(WEATHER)).body]
    assert second.steps[0].results == [mock.call(ToolCall.model_validate(FLIGHTS)).body]
    assert [step.answer for step in second.steps] == [None, "Here they are."]


def test_a_turn_without_calls_asks_again_for_the_same_part_until_the_limit() -> None:
    talk = dialogue(max_turns=2)
    for _ in range(2):
        assert talk.user_variables()["request"] == "the weather"
        talk.take_message("Hi there, can you help me?")
        talk.take_calls([])
        talk.take_answer("What do you need?")
    assert talk.end is End.turn_limit
    assert talk.not_followed == (
        'after 2 turns (the limit) the blueprint\'s call get_weather({"city":"Lisbon"}) was '
        "not made (2 of its calls missing)"
    )
    assert all(len(turn.steps) == 1 for turn in talk.turns)  # only the answer


def test_a_call_the_blueprint_does_not_make_ends_the_dialogue() -> None:
    talk = dialogue()
    talk.take_message("Weather in Porto?")
    talk.take_calls([ToolCall(name="get_weather", arguments={"city": "Porto"})])
    talk.take_answer("Rainy.")
    assert talk.end is End.diverged
    assert talk.not_followed == (
        'turn 1: the assistant called get_weather({"city":"Porto"}), which is not among the '
        "blueprint's calls left to make"
    )


# --- the generator ------------------------------------------------------------------------


def test_conversations_follow_their_blueprints_into_format_1_1_samples() -> None:
    backend = ScriptedBackend()
    samples, usage = generate(backend, n=6)
    assert [s.id for s in samples] == [f"m-{i}" for i in range(6)]
    stages = build_stages(["generation", "format"])
    judged = run_stages(stages, samples, StageContext(tools=TRAVEL))
    assert all(v.accepted for verdicts in judged.verdicts for v in verdicts)
    for sample in samples:
        assert sample.meta.style is QueryStyle.multi_turn and generation_failure(sample) is None
        blueprint = read_blueprint(sample.meta.extra["blueprint"])
        turns = sample.conversation()
        assert len(turns) == len(blueprint.turns) and 2 <= len(turns) <= 3
        assert json.loads(sample.to_json())["format_version"] == "1.1"
        mock = MockApi(sample.tools)
        for turn, planned in zip(turns, blueprint.turns, strict=True):
            assert turn.query == planned.request
            calls, answer = turn.steps
            assert [call_key(c) for c in calls.tool_calls] == [call_key(c) for c in planned.calls]
            assert calls.results == [mock.call(call).body for call in calls.tool_calls]
            assert calls.results == planned.results  # the blueprint's own run, on a fresh mock
            assert answer.answer and not answer.tool_calls
        assert sample.meta.extra["dialogue"] == {
            "turns": len(turns),
            "max_turns": 4,
            "end": "completed",
            "requests": 3 * len(turns),
        }
        assert {tool.name for tool in sample.tools} >= {c.name for c in sample.tool_calls()}
    assert usage.failures == {}
    assert usage.requests == 6 + sum(s.meta.extra["dialogue"]["requests"] for s in samples)


def test_each_round_sends_the_requests_of_every_conversation_in_one_call() -> None:
    backend = ScriptedBackend()
    samples, _ = generate(backend, n=8, styles={QueryStyle.multi_turn: 1, QueryStyle.simple: 1})
    multi = [s for s in samples if s.meta.style is QueryStyle.multi_turn]
    assert 0 < len(multi) < 8
    # the blueprints go with the simple samples' requests
    assert len(backend.batches[0]) == 8
    longest = max(len(s.turns) + 1 for s in multi)
    assert len(backend.batches) == 1 + 3 * longest
    for round_number, batch in enumerate(backend.batches[1:]):
        turn = round_number // 3 + 1
        going = [s for s in multi if len(s.turns) + 1 >= turn]
        assert len(batch) == len(going)
        kinds = {tuple(r.json_schema["properties"]) for r in batch}
        assert kinds == {[("message",), ("calls",), ("answer",)][round_number % 3]}


def test_the_prompts_seed_the_user_with_the_blueprint_and_show_the_assistant_the_results() -> None:
    backend = ScriptedBackend()
    samples, _ = generate(backend, n=1, seed=11)
    (sample,) = samples
    blueprint = sample.meta.extra["blueprint"]
    user_turn_2, act_turn_2 = backend.batches[4][0], backend.batches[5][0]
    assert blueprint["intent"] in user_text(user_turn_2)
    assert "ask only for this part of your goal: " + blueprint["turns"][1]["request"] in user_text(
        user_turn_2
    )
    first_result = json.dumps(sample.steps[0].results[0], ensure_ascii=False, separators=(",", ":"))
    assert first_result[:40] in user_text(act_turn_2)
    assert "Result: " in user_text(act_turn_2)
    assert blueprint["intent"] not in user_text(act_turn_2)  # the assistant is not told the plan
    assert backend.batches[0][0].messages[0]["content"].startswith("You are a data labeler")
    assert user_turn_2.messages[0]["content"].startswith("You play the user")


def test_a_blueprint_that_fails_on_the_mock_is_rejected_without_a_dialogue() -> None:
    following = Following()

    def reply(request: LLMRequest, index: int) -> LLMResult:
        blueprint = json.loads(following(request, index).text)
        blueprint["turns"][1]["calls"] = [{"name": "book_spa", "arguments": {}}]
        text = json.dumps(blueprint)
        return LLMResult(text=text, finish_reason="stop", prompt_tokens=10, completion_tokens=5)

    backend = ScriptedBackend(reply)
    samples, usage = generate(backend, n=3)
    assert len(backend.batches) == 1
    assert usage.failures == {BLUEPRINT_FAILED: 3}
    verdicts = generation_verdicts(samples)
    for sample, (accepted, reason, detail) in zip(samples, verdicts, strict=True):
        assert not sample.query and not sample.steps and not sample.turns
        assert (accepted, reason) == (False, "blueprint_failed")
        assert str(detail).startswith(
            "blueprint turn 2, call 1 ('book_spa') fails on the mock API: unknown_tool: "
        )
        kept = sample.meta.extra["blueprint"]["turns"]
        assert kept[1]["calls"] == [{"name": "book_spa", "arguments": {}}]
        assert len(kept[0]["results"]) == len(kept[0]["calls"])  # turn 1 ran


def test_a_conversation_that_leaves_its_blueprint_is_kept_and_rejected_with_the_difference() -> (
    None
):
    following = Following()

    def reply(request: LLMRequest, index: int) -> LLMResult:
        if set(request.json_schema["properties"]) == {"calls"}:
            arguments = {"city": "Nowhere at all"}
            text = json.dumps({"calls": [{"name": "get_weather", "arguments": arguments}]})
            return LLMResult(text=text, finish_reason="stop")
        return following(request, index)

    samples, usage = generate(ScriptedBackend(reply), n=4, seed=5)
    verdicts = generation_verdicts(samples)
    assert usage.failures == {BLUEPRINT_NOT_FOLLOWED: 4}
    for sample, (accepted, reason, detail) in zip(samples, verdicts, strict=True):
        assert (accepted, reason) == (False, "blueprint_not_followed")
        assert str(detail).startswith("turn 1: the assistant called get_weather(")
        assert sample.query and sample.steps[0].tool_calls[0].arguments == {
            "city": "Nowhere at all"
        }
        assert sample.steps[-1].answer  # the turn is closed before the dialogue ends
        assert sample.meta.extra["dialogue"]["end"] == "diverged"


def test_a_request_that_fails_mid_dialogue_marks_the_sample_with_where() -> None:
    following = Following()

    def reply(request: LLMRequest, index: int) -> LLMResult:
        if set(request.json_schema["properties"]) == {"answer"}:
            return LLMResult(text='{"answer": "Sun', finish_reason="length", completion_tokens=9)
        return following(request, index)

    samples, usage = generate(ScriptedBackend(reply), n=2, max_tokens=64)
    assert usage.failures == {TRUNCATED: 2}
    for sample, (accepted, reason, detail) in zip(
        samples, generation_verdicts(samples), strict=True
    ):
        assert (accepted, reason) == (False, "truncated")
        assert str(detail).startswith("turn 1, the answer: the output stopped at max_tokens=64")
        assert sample.steps[0].tool_calls and not sample.turns
        assert sample.meta.extra["raw_output"] == '{"answer": "Sun'
        assert sample.meta.extra["dialogue"]["end"] == "failed"


class LongHistories(ScriptedBackend):
    """A backend that knows its context (600 tokens) and counts 5,000 tokens for any prompt
    that shows an earlier turn, 100 for the others (a prompt whose bytes already fit is not
    counted at all)."""

    def context_length(self) -> int:
        return 600

    def count_prompt_tokens(self, prompts: list[list[dict[str, str]]]) -> list[int]:
        return [5000 if "The conversation so far" in str(p) else 100 for p in prompts]


def test_a_prompt_that_outgrows_the_context_ends_the_dialogue_unsent() -> None:
    backend = LongHistories()
    samples, usage = generate(backend, n=2, max_tokens=64)
    assert usage.failures == {PROMPT_TOO_LONG: 2}
    assert [len(batch) for batch in backend.batches] == [2, 2, 2, 2]  # turn 2 never sent
    for sample, (accepted, reason, detail) in zip(
        samples, generation_verdicts(samples), strict=True
    ):
        assert (accepted, reason) == (False, "prompt_too_long")
        assert str(detail).startswith("turn 2, the user's message: the prompt takes 5000 tokens")
        assert len(sample.conversation()) == 1 and sample.steps[-1].answer


def test_the_turn_limit_caps_the_blueprint_and_the_dialogue() -> None:
    backend = ScriptedBackend()
    samples, _ = generate(backend, n=4, max_turns=2)
    assert all(r.json_schema["properties"]["turns"]["maxItems"] == 2 for r in backend.batches[0])
    assert all(len(s.conversation()) == 2 for s in samples)


def test_without_a_mock_api_multi_turn_samples_are_refused() -> None:
    request = GenerationRequest(n=2, styles=MULTI_TURN, options={"model": "m"})
    with pytest.raises(GenerationError, match="multi_turn samples run their calls on the"):
        LlmGenerator(backend=ScriptedBackend()).generate(TRAVEL, request)
    single = GenerationRequest(n=2, options={"model": "m"})
    assert len(LlmGenerator(backend=ScriptedBackend()).generate(TRAVEL, single)) == 2


def test_a_catalog_with_nothing_to_call_gives_irrelevance_samples() -> None:
    never = {"type": "object", "properties": {"x": {"not": {}}}, "required": ["x"]}
    unsatisfiable = TRAVEL[0].model_copy(update={"parameters": never})
    request = GenerationRequest(n=3, styles=MULTI_TURN, options={"model": "m"})
    generator = LlmGenerator(backend=ScriptedBackend(), tool_api=MockToolApi)
    samples = generator.generate([unsatisfiable], request)
    assert [s.meta.style for s in samples] == [QueryStyle.irrelevance] * 3
    assert all(s.meta.extra["requested_style"] == "multi_turn" for s in samples)


def test_blueprint_examples_come_from_earlier_conversations_and_the_seeds() -> None:
    samples, _ = generate(ScriptedBackend(), n=1)
    examples = read_examples([samples[0].model_dump(mode="json")])
    (example,) = examples[QueryStyle.multi_turn]
    assert example["output"]["intent"] == samples[0].meta.extra["blueprint"]["intent"]
    assert "results" not in example["output"]["turns"][0]
    seeds = PromptSet().seeds
    chosen = choose_examples(QueryStyle.multi_turn, 2, {}, seeds, random.Random(1))
    assert len(chosen) == 2 and all(
        set(e["output"]) == {"intent", "turns", "outcome"} for e in chosen
    )
    backend = ScriptedBackend()
    generate(backend, n=1, num_examples=2)
    assert "Examples of blueprints for other functions" in user_text(backend.batches[0][0])
