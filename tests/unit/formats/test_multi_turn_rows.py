"""Real multi-turn BFCL rows (tests/data/formats, see SOURCES.md) read as conversations, and
their round trips through the formats that hold conversations."""

from __future__ import annotations

import io

import orjson
import pytest
from format_samples import DATA

from unified.errors import RowError
from unified.formats import FORMATS, read_samples, write_samples
from unified.model import QueryStyle, Sample, Step, Turn

QUESTIONS = DATA / "bfcl_multi_turn_questions.jsonl"
ANSWERS = DATA / "bfcl_multi_turn_possible_answers.jsonl"
FUNCTIONS = DATA / "bfcl_gorilla_file_system_functions.jsonl"


def _conversations() -> list[Sample]:
    return list(read_samples(QUESTIONS, "bfcl", answers=ANSWERS, functions=FUNCTIONS))


def _calls(turn: Turn) -> list[tuple[str, object]]:
    return [(call.name, call.arguments) for step in turn.steps for call in step.tool_calls]


def test_bfcl_multi_turn_rows_read_as_conversations_with_calls_per_turn() -> None:
    base_1, base_3, miss_func_3 = _conversations()
    assert [s.format_version for s in (base_1, base_3, miss_func_3)] == ["1.1"] * 3
    assert base_1.query.startswith("I am alex. Check if the current directory is under my name")
    assert [turn.query for turn in base_1.turns][-1] == "Finally, show the last 20 lines the file."
    assert [_calls(turn) for turn in base_1.conversation()] == [
        [("ls", {"a": True})],
        [("cd", {"folder": "workspace"}), ("mv", {"source": "log.txt", "destination": "archive"})],
        [("cd", {"folder": "archive"}), ("grep", {"file_name": "log.txt", "pattern": "Error"})],
        [("tail", {"file_name": "log.txt", "lines": 20})],
    ]
    # The row's excluded functions are not offered; the rest of the document is.
    names = {tool.name for tool in base_1.tools}
    assert "cp" not in names and {"ls", "mv", "tail"} <= names
    assert "mv" not in {tool.name for tool in base_3.tools}
    assert base_1.meta.extra["bfcl_fields"]["involved_classes"] == ["GorillaFileSystem"]
    assert base_1.meta.style == QueryStyle.multiple
    # miss_func: the first turn's function is held out (no call), an empty turn hands it over.
    assert miss_func_3.steps == [] and miss_func_3.meta.style == QueryStyle.irrelevance
    assert miss_func_3.turns[0].query == ""
    assert _calls(miss_func_3.turns[0]) == [("find", {"path": ".", "name": "test"})]
    assert miss_func_3.meta.extra["bfcl_fields"]["missed_function"] == {"1": ["find", "ls"]}


def _round_trip(sample: Sample, fmt: str) -> Sample:
    out = io.BytesIO()
    write_samples([sample], out, fmt)
    (back,) = FORMATS.get(fmt).read(io.BytesIO(out.getvalue()), f"round-trip.{fmt}")
    return back


def test_bfcl_conversations_round_trip_through_unified_json_lines_byte_for_byte() -> None:
    samples = _conversations()
    out = io.BytesIO()
    write_samples(samples, out, "unified")
    back = list(FORMATS.get("unified").read(io.BytesIO(out.getvalue()), "conversations.jsonl"))
    assert back == samples
    again = io.BytesIO()
    write_samples(back, again, "unified")
    assert again.getvalue() == out.getvalue()


@pytest.mark.parametrize("fmt", ["openai", "sharegpt"])
def test_bfcl_conversations_keep_their_turns_and_calls_in_chat_formats(fmt: str) -> None:
    for sample in _conversations():
        back = _round_trip(sample, fmt)
        assert [t.query for t in back.conversation()] == [t.query for t in sample.conversation()]
        assert [_calls(t) for t in back.conversation()] == [
            _calls(t) for t in sample.conversation()
        ]
        assert back.tools == [tool.model_copy(update={"response": None}) for tool in sample.tools]
        assert back.meta.style == sample.meta.style
        # Written again, the row is the same row.
        assert _round_trip(back, fmt).conversation() == back.conversation()


def test_xlam_gets_the_first_turn_of_a_conversation() -> None:
    base_1 = _conversations()[0]
    out = io.BytesIO()
    write_samples([base_1], out, "xlam")
    row = orjson.loads(out.getvalue())
    assert row["query"] == base_1.query
    assert orjson.loads(row["answers"]) == [{"name": "ls", "arguments": {"a": True}}]


def _bfcl(question: dict[str, object], answer: dict[str, object]) -> list[Sample]:
    return list(
        FORMATS.get("bfcl").read(
            [orjson.dumps(question)],
            "q.jsonl",
            answers=[orjson.dumps(answer)],
            functions=FUNCTIONS.read_bytes().splitlines(),
        )
    )


TWO_TURNS = [[{"role": "user", "content": "Sort it."}], [{"role": "user", "content": "Again."}]]


def test_bfcl_positional_arguments_are_named_by_the_tools_parameters() -> None:
    (sample,) = _bfcl(
        {"id": "multi_turn_x", "question": TWO_TURNS},
        {"id": "multi_turn_x", "ground_truth": [["sort('final_report.pdf')"], []]},
    )
    assert _calls(sample.conversation()[0]) == [("sort", {"file_name": "final_report.pdf"})]
    assert sample.turns == [Turn(query="Again.", steps=[])]
    assert sample.steps == [Step(tool_calls=sample.steps[0].tool_calls)]


@pytest.mark.parametrize(
    ("truth", "message"),
    [
        ([["sort('a')"]], "the ground truth has 1 turns and the question 2"),
        ([["sort('a', 'b')"], []], "passes 2 positional argument(s) and the tool 'sort' has 1"),
        ([["nope('a')"], []], "give the function documents (the `functions` option)"),
        ([["sort(file_name=open('x'))"], []], "has an argument that is not a literal value"),
        ([["not a call"], []], "is not a Python call"),
    ],
)
def test_bfcl_bad_multi_turn_ground_truth_names_the_turn_and_the_fix(
    truth: list[list[str]], message: str
) -> None:
    with pytest.raises(RowError, match=r"q\.jsonl") as raised:
        _bfcl({"id": "m", "question": TWO_TURNS}, {"id": "m", "ground_truth": truth})
    assert message in str(raised.value)


def test_openai_multi_turn_rows_read_as_two_turns_and_write_back_but_for_weight() -> None:
    path = DATA / "openai_multi_turn_chat.jsonl"
    samples = list(read_samples(path, "openai"))
    assert (samples[0].query, samples[0].turns[0].query) == (
        "What's the capital of France?",
        "Can you be more sarcastic?",
    )
    assert all(s.format_version == "1.1" and len(s.turns) == 1 for s in samples)
    assert samples[1].steps == [Step(answer="William Shakespeare")]
    assert samples[1].turns[0].steps == [
        Step(answer="Oh, just some guy named William Shakespeare. Ever heard of him?")
    ]
    assert samples[2].task_instruction == "Marv is a factual chatbot that is also sarcastic."
    out = io.BytesIO()
    write_samples(samples, out, "openai")
    written = [orjson.loads(line) for line in out.getvalue().splitlines()]
    originals = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    # `weight` is a message key the format does not keep (unified.formats.openai_chat).
    for row in originals:
        for message in row["messages"]:
            message.pop("weight", None)
        row["tools"] = []
    assert written == originals


def test_bfcl_multi_turn_rows_without_function_documents_say_to_give_them() -> None:
    with pytest.raises(RowError, match="row 1: the row has no 'function' list") as raised:
        list(read_samples(QUESTIONS, "bfcl", answers=ANSWERS))
    assert "['GorillaFileSystem']" in str(raised.value)
    assert "(--functions FILE)" in str(raised.value)
