"""Verification of conversations: every stage judges every turn, or says it cannot."""

from __future__ import annotations

from typing import Any

from unified.model import Sample, Step, Tool, ToolCall, Turn
from verifiers.stages import STAGES, StageContext, build_stages, run_stages, stage_class
from verifiers.verdict import Reason, Verdict

FLIGHTS = Tool(
    name="search_flights",
    description="Find flights from one city to another.",
    parameters={
        "type": "object",
        "properties": {"origin": {"type": "string"}, "destination": {"type": "string"}},
        "required": ["origin", "destination"],
    },
)
BOOK = Tool(
    name="book_flight",
    description="Book a flight by its flight number.",
    parameters={
        "type": "object",
        "properties": {"flight": {"type": "string"}, "passenger": {"type": "string"}},
        "required": ["flight"],
    },
)


def conversation(second_turn: str, booked: dict[str, Any]) -> Sample:
    """Flights are searched in the first turn; the second turn books one of them."""
    return Sample(
        id="trip",
        tools=[FLIGHTS, BOOK],
        query="Find flights from Lisbon to Porto tomorrow, please.",
        steps=[
            Step(
                tool_calls=[
                    ToolCall(
                        name="search_flights",
                        arguments={"origin": "Lisbon", "destination": "Porto"},
                    )
                ],
                results=[[{"flight": "TP1940", "price": 59}, {"flight": "FR8341", "price": 23}]],
            ),
            Step(answer="TP1940 at 59 EUR and FR8341 at 23 EUR."),
        ],
        turns=[
            Turn(
                query=second_turn,
                steps=[Step(tool_calls=[ToolCall(name="book_flight", arguments=booked)])],
            )
        ],
    )


def judged(sample: Sample, stages: str) -> list[tuple[str, bool, str | None, str | None]]:
    result = run_stages(build_stages(stages.split(",")), [sample], StageContext())
    return [(v.stage, v.accepted, v.reason, v.detail) for v in result.verdicts[0]]


def test_a_value_only_the_first_turns_result_holds_is_grounded_in_the_second_turn() -> None:
    sample = conversation("Book the cheaper of those two for me.", {"flight": "FR8341"})
    assert judged(sample, "grounding") == [("grounding", True, None, None)]


def test_a_value_no_turn_and_no_result_holds_is_rejected_naming_the_turn() -> None:
    sample = conversation("Book the cheaper of those two for me.", {"flight": "LH2222"})
    ((stage, accepted, reason, detail),) = judged(sample, "grounding")
    assert (stage, accepted, reason) == ("grounding", False, Reason.value_not_in_query)
    assert detail is not None and detail.startswith(
        'turn 2: call book_flight: argument flight = "LH2222"'
    )


def test_a_value_an_earlier_user_turn_states_is_grounded_in_a_later_one() -> None:
    sample = conversation(
        "Book the cheaper one for me.", {"flight": "FR8341", "passenger": "Ana Lima"}
    )
    sample.turns.insert(0, Turn(query="My name is Ana Lima, by the way."))
    assert judged(sample, "grounding") == [("grounding", True, None, None)]
    invented = conversation("Book the cheaper one.", {"flight": "FR8341", "passenger": "Ana Lima"})
    assert judged(invented, "grounding")[0][2] == Reason.value_not_in_query


def test_the_format_stage_checks_every_call_of_every_turn() -> None:
    sample = conversation("Book the cheaper of those two.", {"flight": 8341})
    ((stage, accepted, reason, detail),) = judged(sample, "format")
    assert (stage, accepted, reason) == ("format", False, Reason.argument_type_mismatch)
    assert detail is not None and detail.startswith(
        "turn 2, call 0 ('book_flight'): argument 'flight'"
    )


def test_the_query_stage_reads_every_user_turn_and_passes_over_an_empty_one() -> None:
    sample = conversation("{}", {"flight": "FR8341"})
    ((_, accepted, reason, detail),) = judged(sample, "query")
    assert (accepted, reason) == (False, Reason.query_malformed)
    assert detail is not None and detail.startswith("turn 2: ")
    empty = conversation("", {"flight": "FR8341"})
    assert judged(empty, "query") == [("query", True, None, None)]


def test_coverage_judges_each_turn_against_its_own_message() -> None:
    sample = conversation("Book the cheaper of those two flights.", {"flight": "FR8341"})
    assert judged(sample, "coverage") == [("coverage", True, None, None)]
    doubled = conversation("Book the cheaper of those two flights.", {"flight": "FR8341"})
    doubled.turns[0].steps[0].tool_calls.append(
        ToolCall(name="book_flight", arguments={"flight": "FR8341"})
    )
    ((_, accepted, reason, detail),) = judged(doubled, "coverage")
    assert (accepted, reason) == (False, Reason.duplicate_call)
    assert detail is not None and detail.startswith("turn 2: ")


def test_every_built_in_stage_judges_conversations() -> None:
    built_in = [
        name for name in STAGES.names() if STAGES.get(name).__module__.startswith("verifiers.")
    ]
    assert len(built_in) == 8
    assert [name for name in built_in if not stage_class(name).judges_conversations] == []


def test_execution_rejects_a_value_only_a_recorded_result_holds_when_its_calls_do_not_give_it() -> (
    None
):
    """The first turn's results as recorded hold FR8341; the sample's own tools (no response
    schema) answer otherwise, so once the calls are made the booking takes a value from
    nowhere."""
    sample = conversation("Book the cheaper of those two for me.", {"flight": "FR8341"})
    assert judged(sample, "grounding") == [("grounding", True, None, None)]
    result = run_stages(build_stages(["execution"]), [sample], StageContext())
    (verdict,) = result.verdicts[0]
    assert (verdict.stage, verdict.accepted, verdict.reason) == (
        "execution",
        False,
        Reason.value_not_in_results,
    )
    assert verdict.detail == (
        'turn 2: call book_flight: argument flight = "FR8341" comes from an earlier result as '
        "recorded, and the results of making the calls do not hold it: the recorded results "
        "are not what this catalog's API answers"
    )
    made = result.samples[0]
    assert made.steps[0].results[0]["tool"] == "search_flights"
    assert made.turns[0].steps[0].results[0]["result"]["flight"] == "FR8341"


def test_a_stage_without_the_attribute_gives_conversations_the_same_verdict() -> None:
    class PluginStage:
        name = "plugin"

        def verify_batch(self, samples: list[Sample], context: StageContext) -> list[Verdict]:
            return [Verdict.accept(self.name) for _ in samples]

    multi = conversation("Book the cheaper of those two.", {"flight": "FR8341"})
    single = multi.model_copy(update={"turns": []})
    result = run_stages([PluginStage()], [multi, single], StageContext())  # type: ignore[list-item]
    assert [(v[-1].accepted, v[-1].reason) for v in result.verdicts] == [
        (False, Reason.multi_turn_not_judged),
        (True, None),
    ]


def test_dedup_compares_whole_conversations() -> None:
    multi = conversation("Book the cheaper of those two.", {"flight": "FR8341"})
    other_booking = conversation("Book the dearer of those two.", {"flight": "TP1940"})
    first_turn_alone = multi.model_copy(update={"turns": []})
    result = run_stages(
        build_stages(["dedup"]),
        [multi, first_turn_alone, other_booking, multi.model_copy(update={"id": "again"})],
        StageContext(),
    )
    assert [(v[-1].accepted, v[-1].reason) for v in result.verdicts][:3] == [
        (True, None),
        (True, None),
        (True, None),
    ]
    last = result.verdicts[3][-1]
    assert not last.accepted and last.stage == "dedup"
