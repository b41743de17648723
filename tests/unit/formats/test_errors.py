"""Every RowError path: the message names the file, the row and what to change."""

from __future__ import annotations

import io
from typing import Any

import orjson
import pytest

from unified.errors import ActionForgeError, RowError, UnknownNameError
from unified.formats import FORMATS, read_samples, write_samples
from unified.model import Sample, Step, ToolCall

DOC = "rows.jsonl"


def _line(row: Any) -> bytes:
    return row if isinstance(row, bytes) else orjson.dumps(row)


def _read_error(fmt: str, *rows: Any, **options: Any) -> RowError:
    stream = io.BytesIO(b"\n".join(_line(row) for row in rows))
    with pytest.raises(RowError) as caught:
        list(FORMATS.get(fmt).read(stream, DOC, **options))
    return caught.value


def _user(text: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"role": "user", "content": text, **extra}


def _assistant_call(call_id: str = "c1", name: str = "f") -> dict[str, Any]:
    return {
        "role": "assistant",
        "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}
        ],
    }


SYSTEM_TOOLS = {"from": "system", "value": 'Tools:\n<tools>\n[{"name": "f"}]\n</tools>\n'}
HUMAN = {"from": "human", "value": "hi"}
GPT_CALL = {"from": "gpt", "value": '<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>\n'}
TOOL_REPLY = {
    "from": "tool",
    "value": '<tool_response>\n{"name": "f", "content": 1}\n</tool_response>\n',
}
# A gpt turn as printed in the hermes-function-calling-v1 dataset card (structured extraction
# example): the newlines around the payload are a literal backslash and "n".
CARD_GPT = {
    "from": "gpt",
    "value": '<tool_call>\\n{"arguments": {"queries": [\'How can the concept of graph traversal be '
    "applied to real-world situations, such as project management workflows or social networks?', "
    "'Can you think of any other real-world scenarios where understanding and effectively using "
    "spatial positioning in a graph would be important?', 'In what ways can the concept of "
    'marking nodes be useful in problem-solving or decision-making processes?\'], "name": '
    '"ExpertQAExtractor"}}\\n</tool_call>',
}
XLAM_OK = {"id": 1, "query": "q", "tools": "[]", "answers": "[]"}

CASES: list[tuple[str, list[Any], int, str]] = [
    # shared by every format
    ("xlam", [b'{"id": 1, "query": '], 1, "not valid JSON ("),
    ("xlam", [XLAM_OK, b"", b"{oops}"], 3, "each line must hold one JSON object (JSON Lines)"),
    (
        "openai",
        [b'"just text"'],
        1,
        "the row is a string, not a JSON object; write one object a row",
    ),
    ("xlam", [b"[1, 2]"], 1, "the row is a number, not a JSON object"),
    (
        "sharegpt",
        [{"id": [1], "conversations": [HUMAN]}],
        1,
        "field 'id' is a list; write the id as a string or an integer",
    ),
    # unified
    ("unified", [b"{oops"], 1, "not valid JSON ("),
    ("unified", [{"id": "a"}], 1, "Sample field 'query': Field required; add it"),
    (
        "unified",
        [{"id": "a", "query": "q", "steps": [{"tool_calls": [{"arguments": {}}]}]}],
        1,
        "Sample field 'steps.0.tool_calls.0.name': Field required; add it",
    ),
    (
        "unified",
        [{"id": "a", "query": 3}],
        1,
        "Sample field 'query': Input should be a valid string (got 3); fix its value",
    ),
    # xlam
    (
        "xlam",
        [{"id": 1, "tools": "[]", "answers": "[]"}],
        1,
        "field 'query' is null; write the user's request as a string",
    ),
    (
        "xlam",
        [{**XLAM_OK, "answers": 5}],
        1,
        "field 'answers' is not a JSON string or list: 5; write a list (or its JSON text)",
    ),
    ("xlam", [{**XLAM_OK, "answers": "[{"}], 1, "field 'answers' is a string but not valid JSON"),
    (
        "xlam",
        [{**XLAM_OK, "tools": '[{"description": "x"}]'}],
        1,
        "tool 1 in 'tools' is {'description': 'x'}; give each tool an object with a string 'name'",
    ),
    (
        "xlam",
        [{**XLAM_OK, "tools": '[{"name": "f", "parameters": {"a": {"type": "List[str"}}}]'}],
        1,
        "tool 1 in 'tools' ('f'): type 'List[str' is not a type expression",
    ),
    (
        "xlam",
        [{**XLAM_OK, "tools": '[{"name": "bad name", "parameters": {}}]'}],
        1,
        "tool name 'bad name' is not allowed",
    ),
    (
        "xlam",
        [{**XLAM_OK, "answers": '[{"arguments": {}}]'}],
        1,
        "answer 1 in 'answers' is {'arguments': {}}; write each answer as",
    ),
    # openai
    (
        "openai",
        [{"tools": []}],
        1,
        "field 'messages' is null; write the conversation as a non-empty list",
    ),
    (
        "openai",
        [{"messages": [_user()], "tools": {}}],
        1,
        "field 'tools' is an object; write a list of",
    ),
    (
        "openai",
        [{"messages": [_user()], "tools": [{"type": "function"}]}],
        1,
        "tool 1 in 'tools' is {'type': 'function'}",
    ),
    (
        "openai",
        [
            {
                "messages": [_user()],
                "tools": [{"type": "function", "function": {"name": "get weather"}}],
            }
        ],
        1,
        "Tool field 'name': String should match pattern",
    ),
    ("openai", [{"messages": ["hi"]}], 1, "message 1 is a string; write each message as an object"),
    (
        "openai",
        [{"messages": [{"role": "robot", "content": "x"}]}],
        1,
        "message 1 has role 'robot'; use system, user, assistant or tool",
    ),
    (
        "openai",
        [{"messages": [_user(), {"role": "system", "content": "x"}]}],
        1,
        "message 2 is a system message after the first user message; put system messages first",
    ),
    (
        "openai",
        [{"messages": [{"role": "system", "content": "x"}] * 3 + [_user()]}],
        1,
        "message 3 is a third system message",
    ),
    (
        "openai",
        [{"messages": [{"role": "user"}]}],
        1,
        "message 1 is a user message without content; write the request",
    ),
    (
        "openai",
        [{"messages": [_user(), _user(name="example_user")]}],
        1,
        "message 2 is a few-shot example after the user's query; put examples before the query",
    ),
    (
        "openai",
        [{"messages": [{"role": "assistant", "content": "hello"}]}],
        1,
        "message 1 is an assistant message before any user message",
    ),
    (
        "openai",
        [{"messages": [_user(), {"role": "assistant", "tool_calls": {}}]}],
        1,
        "message 2: 'tool_calls' is an object; write a list of calls",
    ),
    (
        "openai",
        [{"messages": [_user(), {"role": "assistant", "tool_calls": [{"id": "c"}]}]}],
        1,
        "message 2: tool call 1 is {'id': 'c'}; write",
    ),
    (
        "openai",
        [{"messages": [_user(), {"role": "tool", "tool_call_id": "c", "content": "1"}]}],
        1,
        "message 2 is a tool message with no assistant tool call before it",
    ),
    (
        "openai",
        [{"messages": [_user(), _assistant_call(), {"role": "tool", "tool_call_id": "c1"}]}],
        1,
        "message 3 is a tool message without content; write the tool's output",
    ),
    (
        "openai",
        [
            {
                "messages": [
                    _user(),
                    _assistant_call(),
                    {"role": "tool", "tool_call_id": "nope", "content": "1"},
                ]
            }
        ],
        1,
        "message 3: tool_call_id 'nope' matches no call of the "
        "assistant message before it; use one of 'c1'",
    ),
    (
        "openai",
        [
            {
                "messages": [
                    _user(),
                    {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}},
                    {"role": "function", "name": "other", "content": "1"},
                ]
            }
        ],
        1,
        "message 3: function result 'other' matches no call "
        "before it; name the function that was called",
    ),
    (
        "openai",
        [{"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}],
        1,
        "message 1: content part {'type': 'image_url'} is not "
        "text; only text content can be imported",
    ),
    (
        "openai",
        [{"messages": [{"role": "user", "content": 7}]}],
        1,
        "message 1: content is a number; write a string",
    ),
    (
        "openai",
        [{"messages": [{"role": "system", "content": "x"}]}],
        1,
        'no user message without "name": "example_user"; add the user\'s request',
    ),
    # sharegpt
    (
        "sharegpt",
        [{"id": "a"}],
        1,
        "field 'conversations' is null; write the conversation as a non-empty list",
    ),
    (
        "sharegpt",
        [{"conversations": [HUMAN], "few_shot_examples": -1}],
        1,
        "field 'few_shot_examples' is -1; write how many human turns are few-shot examples",
    ),
    (
        "sharegpt",
        [{"conversations": [HUMAN], "few_shot_examples": 1}],
        1,
        "no human turn after the 1 few-shot example(s); add the "
        "user's request, or lower few_shot_examples",
    ),
    (
        "sharegpt",
        [{"conversations": ["hi"]}],
        1,
        "turn 1 is a string; write each turn as an object",
    ),
    (
        "sharegpt",
        [{"conversations": [{"from": "bot", "value": "x"}]}],
        1,
        "turn 1 is from 'bot'; use system, human, gpt or tool",
    ),
    (
        "sharegpt",
        [{"conversations": [{"from": "human", "value": 3}]}],
        1,
        "turn 1: 'value' is a number; write the text as a string",
    ),
    (
        "sharegpt",
        [{"conversations": [HUMAN, {"from": "system", "value": "x"}]}],
        1,
        "turn 2 is a system turn; only the first turn may be one",
    ),
    (
        "sharegpt",
        [{"conversations": [{"from": "system", "value": "<tools>\n[not a list\n</tools>"}, HUMAN]}],
        1,
        "turn 1: the <tools> block is neither a JSON list, a "
        "Python list, nor one JSON object a line",
    ),
    (
        "sharegpt",
        [
            {
                "conversations": [
                    {"from": "system", "value": '<tools>[{"description": "x"}]</tools>'},
                    HUMAN,
                ]
            }
        ],
        1,
        "turn 1: tool 1 in <tools> is {'description': 'x'}",
    ),
    (
        "sharegpt",
        [{"conversations": [GPT_CALL]}],
        1,
        "turn 1 is a gpt turn before any human turn; start with the request",
    ),
    (
        "sharegpt",
        [{"conversations": [HUMAN, {"from": "gpt", "value": GPT_CALL["value"] + "done"}]}],
        1,
        "turn 2: text 'done' follows </tool_call>; put any commentary before the first block",
    ),
    (
        "sharegpt",
        [{"conversations": [HUMAN, CARD_GPT]}],
        1,
        "turn 2: tool call 1 is neither JSON nor a Python literal",
    ),
    (
        "sharegpt",
        [
            {
                "conversations": [
                    HUMAN,
                    {"from": "gpt", "value": '<tool_call>{"arguments": {}}</tool_call>'},
                ]
            }
        ],
        1,
        "turn 2: tool call 1 is {'arguments': {}}, without a string 'name'",
    ),
    (
        "sharegpt",
        [{"conversations": [HUMAN, TOOL_REPLY]}],
        1,
        "turn 2 is a tool turn with no tool call before it",
    ),
    (
        "sharegpt",
        [{"conversations": [SYSTEM_TOOLS, HUMAN, GPT_CALL, TOOL_REPLY, TOOL_REPLY]}],
        1,
        "turn 5: more tool responses than the 1 call(s) before them",
    ),
]


@pytest.mark.parametrize(("fmt", "rows", "row", "fragment"), CASES)
def test_read_errors_name_file_row_and_fix(
    fmt: str, rows: list[Any], row: int, fragment: str
) -> None:
    error = _read_error(fmt, *rows)
    assert (error.document, error.row) == (DOC, row)
    assert str(error).startswith(f"{DOC}: row {row}: ")
    assert fragment in error.message


def test_a_json_array_that_breaks_off_names_the_element() -> None:
    sample = Sample(id="a", query="q").to_json()
    stream = io.BytesIO(b"[\n" + sample.encode() + b',\n{"id": ')
    reader = FORMATS.get("unified").read(stream, DOC, on_error="skip")
    assert next(reader).id == "a"
    with pytest.raises(RowError, match=r"rows.jsonl: row 2: the JSON array breaks off here"):
        next(reader)


# ---- BFCL ------------------------------------------------------------------------------------

QUESTION = {
    "id": "simple_0",
    "question": [[{"role": "user", "content": "Area of a 10 by 5 triangle?"}]],
    "function": [
        {"name": "area", "parameters": {"type": "dict", "properties": {"b": {"type": "integer"}}}}
    ],
}
ANSWERS = "answers.jsonl"


def _bfcl_error(question: dict[str, Any], answer: Any = None) -> RowError:
    answers = io.BytesIO(_line(answer)) if answer is not None else None
    return _read_error("bfcl", question, answers=answers, answers_document=ANSWERS)


BFCL_QUESTION_CASES: list[tuple[dict[str, Any], str]] = [
    ({**QUESTION, "id": None}, "field 'id' is None; give each question a string id"),
    ({**QUESTION, "question": 3}, 'field \'question\' is a number; write [[{"role": "user"'),
    (
        {**QUESTION, "question": [[_user()], [_user(), _user()]]},
        "turn 2 has 2 user messages; write one user message a turn",
    ),
    (
        {**QUESTION, "question": [[_user()], [{"role": "system", "content": "x"}]]},
        "turn 2 holds a system message; only the first turn may hold them",
    ),
    (
        {**QUESTION, "question": [[_user()], "hi"]},
        "turn 2 is a string; write a list of messages",
    ),
    ({**QUESTION, "question": ["hi"]}, "turn 1 is a string; write a list of messages"),
    (
        {**QUESTION, "question": [[{"role": "assistant", "content": "x"}]]},
        "message 1 of the question is {'role': 'assistant', "
        "'content': 'x'}; write system and user messages",
    ),
    (
        {**QUESTION, "question": [[_user(), _user()]]},
        "the question has 2 user messages in one turn; write one user message a turn",
    ),
    (
        {**QUESTION, "function": "area"},
        "field 'function' is a string; write a list of function definitions",
    ),
    (
        {
            **QUESTION,
            "function": [
                {
                    "name": "area",
                    "parameters": {"type": "dict", "properties": {"b": {"type": "widget"}}},
                }
            ],
        },
        "field 'function', at /0/parameters/properties/b/type: type 'widget' is not a BFCL type",
    ),
]


@pytest.mark.parametrize(("question", "fragment"), BFCL_QUESTION_CASES)
def test_bfcl_question_errors(question: dict[str, Any], fragment: str) -> None:
    error = _bfcl_error(question)
    assert str(error).startswith(f"{DOC}: row 1: ")
    assert fragment in error.message


BFCL_ANSWER_CASES: list[tuple[Any, str, str]] = [
    (
        "x",
        ANSWERS,
        'the row is a string, not a JSON object; write {"id": ..., "ground_truth": [...]}',
    ),
    (
        {"id": "simple_1", "ground_truth": []},
        ANSWERS,
        "answer id 'simple_1' does not match question id 'simple_0'; "
        "keep the answer file in the question file's order",
    ),
    (
        {"id": "simple_0", "ground_truth": {}},
        ANSWERS,
        "field 'ground_truth' is an object; write a list of",
    ),
    (
        {"id": "simple_0", "ground_truth": [{"a": {}, "b": {}}]},
        DOC,
        "ground truth 1 is {'a': {}, 'b': {}}; write one",
    ),
    (
        {"id": "simple_0", "ground_truth": [{"area": [1]}]},
        DOC,
        "ground truth 1 ('area'): the arguments are a list; map "
        "each argument to a list of acceptable values",
    ),
    (
        {"id": "simple_0", "ground_truth": [{"area": {"b": 1}}]},
        DOC,
        "ground truth 'area', argument 'b': 1 is not a list of "
        "acceptable values; wrap it in a list",
    ),
]


@pytest.mark.parametrize(("answer", "document", "fragment"), BFCL_ANSWER_CASES)
def test_bfcl_answer_errors(answer: Any, document: str, fragment: str) -> None:
    error = _bfcl_error(QUESTION, answer)
    assert str(error).startswith(f"{document}: row 1: ")
    assert fragment in error.message


# ---- the registry and the convenience functions ----------------------------------------------


def test_unknown_format_lists_the_known_ones() -> None:
    with pytest.raises(
        UnknownNameError,
        match=(
            r"Unknown dataset format 'csv'\. Known: bfcl, hf, llamafactory, openai, sharegpt, "
            r"unified, xlam"
        ),
    ):
        FORMATS.get("csv")


def test_unknown_option_names_the_accepted_ones(tmp_path: Any) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text("")
    with pytest.raises(
        ActionForgeError, match=r"format 'xlam' has no option 'answers'; its options are on_error"
    ):
        read_samples(path, "xlam", answers=path)


def test_bfcl_cannot_be_written() -> None:
    with pytest.raises(
        ActionForgeError,
        match=(
            r"format 'bfcl' can be read but not written; write one "
            r"of: hf, llamafactory, openai, sharegpt, unified, xlam"
        ),
    ):
        write_samples([], io.BytesIO(), "bfcl")


def test_on_error_must_be_raise_or_skip() -> None:
    with pytest.raises(
        ActionForgeError, match=r"rows.jsonl: on_error must be 'raise' or 'skip', got 'ignore'"
    ):
        FORMATS.get("xlam").read(io.BytesIO(b""), DOC, on_error="ignore")


def test_a_sample_that_is_not_json_cannot_be_written() -> None:
    step = Step(tool_calls=[ToolCall(name="f", arguments={"when": {1, 2}})])
    out = io.BytesIO()
    with pytest.raises(
        RowError,
        match=(
            r"<output>: row 1: sample 'x' cannot be written as JSON .*; "
            r"keep arguments and results to JSON values"
        ),
    ):
        write_samples([Sample(id="x", query="q", steps=[step])], out, "xlam")
