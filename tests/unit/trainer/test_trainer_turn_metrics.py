"""Multi-turn samples judged turn by turn: per-turn and per-conversation accuracy on a
hand-computed case, next to single-turn samples whose figures do not move."""

from __future__ import annotations

import json

import pytest

from trainer.evaluate import METRICS, Counts, EvalReport, compare, judge, score
from unified.model import QueryStyle, Sample, SampleMeta, Step, Tool, ToolCall, Turn
from verifiers.format import FormatVerifier

SEARCH = Tool(
    name="search_flights",
    parameters={
        "type": "object",
        "properties": {"to": {"type": "string"}, "date": {"type": "string"}},
        "required": ["to"],
    },
)
BOOK = Tool(
    name="book_flight",
    parameters={
        "type": "object",
        "properties": {"flight": {"type": "string"}},
        "required": ["flight"],
    },
)
TOOLS = [SEARCH, BOOK]


def call(name: str, **arguments: object) -> ToolCall:
    return ToolCall(name=name, arguments=arguments)


def as_text(*calls: ToolCall) -> str:
    return json.dumps([{"name": c.name, "arguments": c.arguments} for c in calls])


SEARCH_ROME = call("search_flights", to="FCO")
BOOK_FR = call("book_flight", flight="FR1234")
SEARCH_OSLO = call("search_flights", to="OSL")
FLIGHTS = [{"flight": "SK4711", "price": 129}, {"flight": "FR1234", "price": 89}]

# X: three turns (search, book the cheaper one, thanks: no call).
X = Sample(
    id="X",
    query="Flights to Rome?",
    tools=TOOLS,
    steps=[Step(tool_calls=[SEARCH_ROME], results=[FLIGHTS]), Step(answer="Two flights.")],
    turns=[
        Turn(query="Book the cheaper one.", steps=[Step(tool_calls=[BOOK_FR], results=["ok"])]),
        Turn(query="Thanks!", steps=[Step(answer="You are welcome.")]),
    ],
    meta=SampleMeta(style=QueryStyle.multi_turn),
)
# Y: two turns (search, search again elsewhere).
Y = Sample(
    id="Y",
    query="Flights to Rome?",
    tools=TOOLS,
    steps=[Step(tool_calls=[SEARCH_ROME], results=[FLIGHTS])],
    turns=[Turn(query="And to Oslo?", steps=[Step(tool_calls=[SEARCH_OSLO])])],
    meta=SampleMeta(style=QueryStyle.multi_turn),
)
# S: one turn.
S = Sample(
    id="S",
    query="Book FR1234.",
    tools=TOOLS,
    steps=[Step(tool_calls=[BOOK_FR])],
    meta=SampleMeta(style=QueryStyle.simple),
)
REFERENCES = [X, Y, S]
ANSWERS = [
    # X: turn 1 right, turn 2 books the dearer flight, turn 3 right (no call).
    [as_text(SEARCH_ROME), as_text(call("book_flight", flight="SK4711")), "My pleasure."],
    # Y: both turns right, the second one with text around the call.
    [as_text(SEARCH_ROME), "Sure: " + as_text(SEARCH_OSLO)],
    as_text(BOOK_FR),
]


def test_the_hand_computed_case_per_turn_and_per_conversation() -> None:
    report = score(ANSWERS, REFERENCES)
    assert report.overall == Counts(
        samples=6,  # 3 + 2 turns, 1 single-turn sample
        call_samples=5,  # X1 X2 Y1 Y2 S
        tool_name_correct=5,
        exact_correct=4,  # all but X2
        format_pass=5,
        irrelevance_samples=1,  # X3
        irrelevance_correct=1,
        conversations=2,
        conversation_turns=5,
        conversation_turns_correct=4,  # X1 X3 Y1 Y2
        conversations_correct=1,  # Y
    )
    assert report.overall.accuracy == pytest.approx(5 / 6)
    assert report.overall.turn_accuracy == pytest.approx(4 / 5)
    assert report.overall.conversation_accuracy == pytest.approx(1 / 2)
    multi = report.by_style["multi_turn"]
    assert (multi.samples, multi.conversations) == (5, 2)
    assert multi.turn_accuracy == pytest.approx(4 / 5)
    assert multi.conversation_accuracy == pytest.approx(1 / 2)
    simple = report.by_style["simple"]
    assert simple.rates() == {
        "accuracy": 1.0,
        "tool_name_accuracy": 1.0,
        "exact_call_accuracy": 1.0,
        "irrelevance_accuracy": None,
        "format_pass_rate": 1.0,
        "turn_accuracy": None,
        "conversation_accuracy": None,
    }
    assert [group for group, _ in report.groups()] == ["overall", "simple", "multi_turn"]


def test_a_single_turn_sample_counts_as_before_beside_conversations() -> None:
    alone = score([ANSWERS[2]], [S])
    assert alone.overall == Counts(
        samples=1, call_samples=1, tool_name_correct=1, exact_correct=1, format_pass=1
    )
    assert alone.by_style["simple"] == score(ANSWERS, REFERENCES).by_style["simple"]
    assert score([[ANSWERS[2]]], [S]) == alone  # a list of one answer is the same


def test_each_turn_is_judged_against_its_own_calls() -> None:
    verifier = FormatVerifier()
    assert judge(as_text(BOOK_FR), X, verifier, turn=1).exact_match
    assert not judge(as_text(BOOK_FR), X, verifier, turn=0).exact_match
    thanks = judge("My pleasure.", X, verifier, turn=2)
    assert not thanks.expects_call and thanks.correct_refusal and thanks.right
    assert not judge(as_text(BOOK_FR), X, verifier, turn=2).right


def test_a_conversation_needs_one_answer_per_turn() -> None:
    with pytest.raises(ValueError, match="1 answers for reference sample 'X' of 3 turns"):
        score([as_text(SEARCH_ROME)], [X])
    with pytest.raises(ValueError, match="2 answers for reference sample 'X' of 3 turns"):
        score([ANSWERS[0][:2]], [X])


def test_the_conversation_figures_survive_the_json_form_and_compare() -> None:
    report = score(ANSWERS, REFERENCES)
    data = report.to_dict()
    assert data["overall"]["conversation_accuracy"] == 0.5
    assert data["by_style"]["multi_turn"]["turn_accuracy"] == 0.8
    assert EvalReport.from_dict(json.loads(json.dumps(data))) == report
    before = score([[as_text(), as_text(), ""], [as_text(), as_text()], ""], REFERENCES)
    deltas = {(d.group, d.metric): d for d in compare(before, report)}
    assert len(deltas) == 3 * len(METRICS)
    conversation = deltas[("multi_turn", "conversation_accuracy")]
    assert (conversation.before, conversation.after) == (0.0, 0.5)
    assert deltas[("simple", "turn_accuracy")].change is None


def test_a_report_stored_before_conversations_were_judged_still_reads() -> None:
    stored = score([ANSWERS[2]], [S]).to_dict()
    for counts in (stored["overall"], *stored["by_style"].values()):
        for name in ("conversations", "conversation_turns", "conversation_turns_correct"):
            del counts[name]
        del counts["conversations_correct"], counts["turn_accuracy"]
        del counts["conversation_accuracy"]
    read = EvalReport.from_dict(stored)
    assert read == score([ANSWERS[2]], [S])
    assert read.overall.conversation_accuracy is None
