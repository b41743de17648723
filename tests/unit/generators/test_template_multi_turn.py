"""The template generator's multi_turn style: conversations whose follow-ups refer to the turn
before, a value taken out of an earlier result really in that result (from one conversation
state of the catalog's mock API, the results the execution stage gives), accepted by the stages
that judge conversations, deterministic, and a fallback where a catalog gives no conversation."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from generators.base import GenerationRequest
from generators.template.generator import TemplateGenerator
from generators.template.phrasebook import bundled_templates_dir
from generators.wrong_answers import leaves
from service.pipeline.tool_api import MockToolApi
from unified.catalogs import load_catalog
from unified.model import QueryStyle, Sample, Tool, ToolCall
from verifiers.mock_api import MockApi
from verifiers.mock_conversation import MockConversation
from verifiers.stages import StageContext, build_stages, run_stages

ROOT = Path(__file__).resolve().parents[3]
TRAVEL = load_catalog(ROOT / "examples" / "travel_api.yaml").tools
PETSTORE = load_catalog(
    ROOT / "tests" / "data" / "openapi" / "oai-v3.0-petstore-expanded.yaml"
).tools
MULTI_TURN = {QueryStyle.multi_turn: 1.0}
CREATED = {"created": "2026-01-31T12:00:00+00:00"}
JUDGING_STAGES = ["query", "format", "grounding", "coverage", "execution", "dedup"]
"""The stages that judge conversations without an LLM."""

FLIGHT_NUMBER = {"type": "string", "pattern": "^[A-Z]{2}[0-9]{3,4}$"}
BOOKING_ID = {"type": "string", "pattern": "^BK[0-9]{6}$"}
AIRPORT = {"type": "string", "pattern": "^[A-Z]{3}$"}
FLIGHTS = [
    Tool(
        name="search_flights",
        description="Search flights between two airports.",
        parameters={
            "type": "object",
            "properties": {"origin": AIRPORT, "destination": AIRPORT},
            "required": ["origin", "destination"],
        },
        response={
            "type": "array",
            "minItems": 2,
            "maxItems": 2,
            "items": {
                "type": "object",
                "properties": {
                    "flight_number": FLIGHT_NUMBER,
                    "price": {"type": "number", "minimum": 20, "maximum": 900},
                },
                "required": ["flight_number", "price"],
            },
        },
    ),
    Tool(
        name="book_flight",
        description="Book a seat on a flight.",
        parameters={
            "type": "object",
            "properties": {"flight_number": FLIGHT_NUMBER},
            "required": ["flight_number"],
        },
        response={
            "type": "object",
            "properties": {"booking_id": BOOKING_ID},
            "required": ["booking_id"],
        },
    ),
    Tool(
        name="cancel_booking",
        description="Cancel a booking.",
        parameters={
            "type": "object",
            "properties": {"booking_id": BOOKING_ID},
            "required": ["booking_id"],
        },
    ),
]


def conversations(tools: list[Tool], n: int, seed: int = 3, **options: Any) -> list[Sample]:
    generator = TemplateGenerator(tool_api=MockToolApi)
    request = GenerationRequest(n=n, seed=seed, styles=MULTI_TURN, options={**CREATED, **options})
    return generator.generate(tools, request)


def scalars(value: Any) -> list[Any]:
    return [scalar for _, scalar in leaves(value)]


def only_call(steps: list[Any]) -> ToolCall:
    [call] = [call for step in steps for call in step.tool_calls]
    return call


def played(tools: list[Tool], sample: Sample) -> list[Any]:
    """The answer to each turn's call, the turns played in order in one new conversation of
    the catalog's mock API (as the execution stage plays them)."""
    conversation = MockConversation(MockApi(tools))
    return [conversation.call(only_call(turn.steps)).body for turn in sample.conversation()]


def recorded(sample: Sample) -> list[Any]:
    """The result each turn but the last records for its call."""
    return [turn.steps[0].results for turn in sample.conversation()[:-1]]


def test_follow_ups_take_values_out_of_the_mock_apis_earlier_results() -> None:
    samples = conversations(PETSTORE, 80)
    assert {sample.meta.style for sample in samples} == {QueryStyle.multi_turn}
    chained = 0
    for sample in samples:
        turns = sample.conversation()
        assert 2 <= len(turns) <= 3
        for number, follow_up in enumerate(sample.meta.extra["follow_ups"], 1):
            if follow_up["kind"] != "chain":
                continue
            chained += 1
            before, turn = turns[number - 1], turns[number]
            value = only_call(turn.steps).arguments[follow_up["argument"]]
            # The value is what the mock API answers to the call before in this conversation,
            # and the sample carries that answer as the call's result.
            answered = played(PETSTORE, sample)[number - 1]
            assert before.steps[0].results == [answered]
            assert value in scalars(answered)
    assert chained >= 30


def test_a_read_of_the_item_created_before_records_what_the_conversation_made() -> None:
    samples = conversations(PETSTORE, 300)
    reads = [
        sample
        for sample in samples
        if [only_call(turn.steps).name for turn in sample.conversation()[:2]]
        == ["addPet", "find_pet_by_id"]
        and sample.meta.extra["follow_ups"][0].get("pick") == "created"
        and len(sample.conversation()) == 3
    ]
    assert reads
    for sample in reads:
        created, read = sample.conversation()[:2]
        [pet] = created.steps[0].results
        [found] = read.steps[0].results
        # The pet found is the one made, under the name the user gave it: not what the mock
        # answers for that id in a conversation that created nothing.
        name = only_call(created.steps).arguments["name"]
        assert (found["id"], found["name"]) == (pet["id"], name)
        alone = MockApi(PETSTORE).call(only_call(read.steps)).body
        assert found != alone
        assert [r for step in read.steps for r in step.results] == [played(PETSTORE, sample)[1]]


def test_a_created_id_is_used_by_the_next_turn_without_the_user_saying_it() -> None:
    samples = conversations(PETSTORE, 120)
    created = [
        sample
        for sample in samples
        if any(f.get("pick") == "created" for f in sample.meta.extra["follow_ups"])
    ]
    assert created
    for sample in created:
        turns = sample.conversation()
        number = next(
            n
            for n, f in enumerate(sample.meta.extra["follow_ups"], 1)
            if f.get("pick") == "created"
        )
        before, turn = turns[number - 1], turns[number]
        assert only_call(before.steps).name == "addPet"
        pet_id = only_call(turn.steps).arguments["id"]
        assert before.steps[0].results[0]["id"] == pet_id
        assert str(pet_id) not in " ".join(t.query for t in turns)
        assert any(
            phrase in turn.query
            for phrase in ("the one you just created", "the new one", "the one you just made")
        )


def test_the_cheaper_of_two_flights_is_the_one_booked() -> None:
    samples = conversations(FLIGHTS, 150, seed=5)
    cheaper = [
        sample
        for sample in samples
        if sample.meta.extra["follow_ups"][0].get("pick") == "lowest"
        and sample.meta.extra["follow_ups"][0]["tool"] == "book_flight"
    ]
    assert cheaper
    for sample in cheaper:
        first, second = sample.conversation()[:2]
        [flights] = first.steps[0].results
        cheapest = min(flights, key=lambda flight: flight["price"])
        assert only_call(second.steps).arguments == {"flight_number": cheapest["flight_number"]}
        assert "the cheaper of those two" in second.query
    cancelled = [
        sample
        for sample in samples
        if any(f["tool"] == "cancel_booking" for f in sample.meta.extra["follow_ups"])
    ]
    assert cancelled


def test_the_stages_that_judge_conversations_accept_them_and_execution_gives_their_results() -> (
    None
):
    for tools in (PETSTORE, TRAVEL, FLIGHTS):
        samples = conversations(tools, 60)
        result = run_stages(build_stages(JUDGING_STAGES), samples, StageContext(tools))
        rejected = [
            (samples[i].id, verdicts[-1].reason, verdicts[-1].detail)
            for i, verdicts in enumerate(result.verdicts)
            if not verdicts[-1].accepted
        ]
        assert rejected == []
        for drafted, executed in zip(samples, result.samples, strict=True):
            assert recorded(executed)[: len(recorded(drafted))] == recorded(drafted)
            assert executed.conversation()[-1].steps[0].results == played(tools, drafted)[-1:]


def test_a_follow_up_value_no_result_holds_is_rejected_by_grounding() -> None:
    [sample] = [
        s
        for s in conversations(FLIGHTS, 40, seed=5)
        if s.meta.extra["follow_ups"][0]["kind"] == "chain"
        and s.meta.extra["follow_ups"][0]["tool"] == "book_flight"
    ][:1]
    second = sample.turns[0]
    invented = second.model_copy(
        update={
            "steps": [
                second.steps[0].model_copy(
                    update={
                        "tool_calls": [
                            ToolCall(name="book_flight", arguments={"flight_number": "ZZ9999"})
                        ]
                    }
                ),
                *second.steps[1:],
            ]
        }
    )
    tampered = sample.model_copy(update={"turns": [invented, *sample.turns[1:]]})
    stages = build_stages(["grounding"])
    [kept, made_up] = run_stages(stages, [sample, tampered], StageContext(FLIGHTS)).verdicts
    assert kept[-1].accepted
    assert (made_up[-1].reason, made_up[-1].detail) == (
        "value_not_in_query",
        'turn 2: call book_flight: argument flight_number = "ZZ9999" is not stated in the '
        "query (nor a default of the tool, nor in an earlier result)",
    )


def test_conversations_are_deterministic() -> None:
    first = [s.to_json() for s in conversations(PETSTORE, 30, seed=9)]
    again = [s.to_json() for s in conversations(PETSTORE, 30, seed=9)]
    assert first == again
    assert [s.to_json() for s in conversations(PETSTORE, 10, seed=9)] == first[:10]
    assert first != [s.to_json() for s in conversations(PETSTORE, 30, seed=10)]


def test_without_a_tool_api_follow_ups_ask_again_and_carry_no_results() -> None:
    request = GenerationRequest(n=40, seed=2, styles=MULTI_TURN)
    samples = TemplateGenerator().generate(TRAVEL, request)
    assert {s.meta.style for s in samples} == {QueryStyle.multi_turn}
    for sample in samples:
        assert {f["kind"] for f in sample.meta.extra["follow_ups"]} == {"again"}
        assert all(step.results == [] for step in sample.all_steps())
        assert sample.format_version == "1.1"


def test_a_catalog_without_a_follow_up_falls_back_to_a_simple_sample() -> None:
    ping = Tool(name="ping", description="Check that the service answers.")
    samples = conversations([ping], 5)
    assert {s.meta.style for s in samples} == {QueryStyle.simple}
    assert {s.meta.extra["requested_style"] for s in samples} == {"multi_turn"}
    assert not any(s.is_multi_turn() for s in samples)


def test_a_templates_dir_made_before_conversations_phrases_them_with_the_bundled_ones(
    tmp_path: Path,
) -> None:
    mine = tmp_path / "mine"
    shutil.copytree(bundled_templates_dir(), mine)
    for name in ("multi_turn.j2", "multi_turn_answer.j2"):
        (mine / name).unlink()
    (mine / "simple.j2").write_text("Mine: {{ asks[0].parts[0] }} please.")
    samples = conversations(TRAVEL, 5, templates_dir=str(mine))
    assert all(s.query.startswith("Mine: ") for s in samples)
    assert all(s.is_multi_turn() and not s.turns[0].query.startswith("Mine") for s in samples)

    (mine / "multi_turn.j2").write_text("{{ follow_up.kind }} follow-up, {{ choose(['x']) }}.")
    (mine / "multi_turn_answer.j2").write_text("Done ({{ tool_names | join(',') }}).")
    samples = conversations(TRAVEL, 5, templates_dir=str(mine))
    assert {s.turns[0].query for s in samples} == {"again follow-up, x."}
    assert all(s.steps[-1].answer == f"Done ({s.steps[0].tool_calls[0].name})." for s in samples)
