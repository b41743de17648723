"""unified -> format -> unified for hand-built samples.

Each `*_keeps` function below is the precise list of what a format holds: it rebuilds, from the
original sample, the sample that must come back. Everything it does not copy is lost in that
format (the module docstrings say the same).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from itertools import count
from typing import Any

import orjson
import pytest
from format_samples import hand_built_samples, multi_turn_samples

from unified.formats import FORMATS, write_samples
from unified.formats.base import json_text
from unified.formats.xlam import xlam_row_id
from unified.model import Example, QueryStyle, Sample, Step, Tool, ToolCall, Turn


def _round_trip(sample: Sample, fmt: str) -> Sample:
    out = io.BytesIO()
    assert write_samples([sample], out, fmt) == 1
    (back,) = FORMATS.get(fmt).read(io.BytesIO(out.getvalue()), f"round-trip.{fmt}")
    return back


def _comparable(sample: Sample) -> dict[str, Any]:
    """The sample as JSON data, without the two fields no foreign format can hold."""
    data = sample.model_dump(mode="json")
    del data["meta"]["created"], data["meta"]["source"]
    return data


def _plain_tool(tool: Tool) -> Tool:
    return Tool(name=tool.name, description=tool.description, parameters=tool.parameters)


def _split_steps(steps: list[Step], fresh_ids: Iterator[str] | None) -> list[Step]:
    """Steps as chat formats give them back: a step with calls and an answer comes back as two,
    and with `fresh_ids` a call without an id gets the next one."""
    out = []
    for step in steps:
        if not step.tool_calls:
            text = step.answer if step.answer is not None else (step.thought or "")
            out.append(Step(answer=text))
            continue
        calls = [
            ToolCall(
                name=c.name,
                arguments=c.arguments,
                id=c.id if c.id is not None or fresh_ids is None else next(fresh_ids),
            )
            for c in step.tool_calls
        ]
        out.append(Step(thought=step.thought, tool_calls=calls, results=list(step.results)))
        if step.answer is not None:
            out.append(Step(answer=step.answer))
    return out


def _chat_keeps(sample: Sample, fresh_ids: Iterator[str] | None) -> Sample:
    return Sample(
        id=sample.id,
        task_instruction=sample.task_instruction,
        format_instruction=sample.format_instruction,
        tools=[_plain_tool(t) for t in sample.tools],
        examples=[
            Example(query=e.query, steps=_split_steps(e.steps, fresh_ids)) for e in sample.examples
        ],
        query=sample.query,
        steps=_split_steps(sample.steps, fresh_ids),
        turns=[Turn(query=t.query, steps=_split_steps(t.steps, fresh_ids)) for t in sample.turns],
        meta=sample.meta.model_copy(update={"generator": None, "seed": None, "extra": {}}),
    )


def xlam_keeps(sample: Sample) -> Sample:
    """xLAM holds the query, the tools (name, description, argument types, descriptions and
    defaults) and the calls' names and arguments, all in one step, and an integer id (a whole
    number id itself, any other id's number from `xlam_row_id`). Lost: ids that are not whole
    numbers, instructions, examples, thoughts, results, answers, step boundaries, call ids,
    metadata, and a conversation's follow-up turns (its first turn is written)."""
    calls = [
        ToolCall(name=c.name, arguments=c.arguments) for s in sample.steps for c in s.tool_calls
    ]
    return Sample(
        id=str(xlam_row_id(sample.id)),
        tools=[_plain_tool(t) for t in sample.tools],
        query=sample.query,
        steps=[Step(tool_calls=calls)] if calls else [],
        meta=sample.meta.model_copy(update={"generator": None, "seed": None, "extra": {}}),
    )


def openai_keeps(sample: Sample) -> Sample:
    """OpenAI chat rows hold the instructions (one system message), tools, examples, query,
    thoughts, calls, results and answers. Lost: which instruction was which (the format
    instruction comes back joined to the task instruction), the id (the row number comes back),
    metadata, tool sources, missing call ids (`call_1`, `call_2`, ... come back) and steps that
    mix calls and an answer (they come back as two). The summary or refusal written to end a row
    on an assistant message is not read back as an answer."""
    taken = {
        c.id
        for s in sample.all_steps() + [s for e in sample.examples for s in e.steps]
        for c in s.tool_calls
    }
    fresh = (f"call_{n}" for n in count(1) if f"call_{n}" not in taken)
    joined = "\n\n".join(t for t in (sample.task_instruction, sample.format_instruction) if t)
    return _chat_keeps(sample, fresh).model_copy(
        update={"id": "round-trip-1", "task_instruction": joined, "format_instruction": ""}
    )


def sharegpt_keeps(sample: Sample) -> Sample:
    """ShareGPT rows hold everything OpenAI rows hold, the id and missing call ids too. Lost:
    metadata, tool sources and steps that mix calls and an answer (they come back as two)."""
    return _chat_keeps(sample, None)


KEEPS: dict[str, Callable[[Sample], Sample]] = {
    "xlam": xlam_keeps,
    "openai": openai_keeps,
    "sharegpt": sharegpt_keeps,
}
SAMPLES = hand_built_samples() + multi_turn_samples()


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.id for s in SAMPLES])
def test_unified_round_trip_keeps_everything(sample: Sample) -> None:
    assert _round_trip(sample, "unified") == sample


@pytest.mark.parametrize("fmt", sorted(KEEPS))
@pytest.mark.parametrize("sample", SAMPLES, ids=[s.id for s in SAMPLES])
def test_round_trip_keeps_what_the_format_holds(sample: Sample, fmt: str) -> None:
    back = _round_trip(sample, fmt)
    assert _comparable(back) == _comparable(KEEPS[fmt](sample))


def test_openai_gives_missing_call_ids_fresh_ones() -> None:
    sample = SAMPLES[0]
    back = _round_trip(sample, "openai")
    assert sample.steps[0].tool_calls[0].id is None
    assert back.steps[0].tool_calls[0].id == "call_1"


def test_chat_formats_split_a_step_with_calls_and_an_answer() -> None:
    step = Step(
        tool_calls=[ToolCall(name="get_weather", arguments={"city": "Oslo"}, id="c")],
        results=[{"temp_c": 3}],
        answer="3 °C",
    )
    sample = SAMPLES[0].model_copy(update={"steps": [step]})
    for fmt in ("openai", "sharegpt"):
        back = _round_trip(sample, fmt)
        assert [s.answer for s in back.steps] == [None, "3 °C"]
        assert back.steps[0].results == [{"temp_c": 3}]


def test_openai_result_text_that_is_json_comes_back_parsed() -> None:
    step = Step(tool_calls=[ToolCall(name="get_weather", arguments={}, id="c")], results=["42"])
    back = _round_trip(SAMPLES[0].model_copy(update={"steps": [step]}), "openai")
    assert back.steps[0].results == [42]


def test_xlam_keeps_an_integer_looking_id_as_an_integer() -> None:
    out = io.BytesIO()
    write_samples([SAMPLES[3]], out, "xlam")
    assert out.getvalue().startswith(b'{"id":42,')


def test_xlam_ids_are_integers_made_from_the_sample_id() -> None:
    out = io.BytesIO()
    write_samples([SAMPLES[0], SAMPLES[3], SAMPLES[0]], out, "xlam")
    ids = [orjson.loads(line)["id"] for line in out.getvalue().splitlines()]
    assert ids == [xlam_row_id("s-simple"), 42, xlam_row_id("s-simple")]
    assert xlam_row_id("s-simple") == 8_559_987_409_306_265
    assert all(isinstance(i, int) and 0 <= i < 2**53 for i in ids)
    assert xlam_row_id("s-multiple") != xlam_row_id("s-simple")
    # Not whole numbers as the dataset writes them: hashed like any other text.
    assert xlam_row_id("042") not in (42, 0) and xlam_row_id("-1") >= 0


def _rows_back(fmt: str, row: dict[str, Any]) -> dict[str, Any]:
    (sample,) = FORMATS.get(fmt).read([orjson.dumps(row)], "row.jsonl")
    out = io.BytesIO()
    write_samples([sample], out, fmt)
    back: dict[str, Any] = orjson.loads(out.getvalue())
    return back


def test_openai_keeps_parallel_tool_calls_and_other_keys() -> None:
    row = {
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
        "tools": [],
        "parallel_tool_calls": False,
        "source": "support-logs",
    }
    (sample,) = FORMATS.get("openai").read([orjson.dumps(row)], "row.jsonl")
    assert sample.meta.extra == {
        "openai_parallel_tool_calls": False,
        "openai_fields": {"source": "support-logs"},
    }
    assert _rows_back("openai", row) == row


def test_sharegpt_keeps_bare_tools_written_one_per_line() -> None:
    system = (
        "You are helpful.\n<tools>\n"
        '{"name": "f", "description": "Does f.", '
        '"parameters": {"type": "object", "properties": {}}}\n'
        '{"name": "g", "parameters": {"type": "object", "properties": {}}}\n'
        "</tools>\nCall tools in <tool_call> tags."
    )
    row = {
        "id": "r1",
        "conversations": [
            {"from": "system", "value": system},
            {"from": "human", "value": "do f"},
            {
                "from": "gpt",
                "value": 'Sure.\n<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>\n',
            },
        ],
    }
    (sample,) = FORMATS.get("sharegpt").read([orjson.dumps(row)], "row.jsonl")
    assert [t.name for t in sample.tools] == ["f", "g"]
    assert sample.steps[0].thought == "Sure."
    assert sample.meta.extra["sharegpt_layout"] == {"tools_per_line": True, "tools_unwrapped": True}
    assert _rows_back("sharegpt", row) == row


def test_xlam_keeps_other_keys_and_json_schema_parameters() -> None:
    tools = [
        {
            "name": "f",
            "description": "Does f.",
            "parameters": {"type": "object", "properties": {"a": {"type": "string"}}},
        }
    ]
    row = {"id": "x-1", "query": "q", "tools": json_text(tools), "answers": "[]", "split": "train"}
    (sample,) = FORMATS.get("xlam").read([orjson.dumps(row)], "row.jsonl")
    assert sample.tools[0].parameters == tools[0]["parameters"]
    assert sample.meta.extra == {"xlam_fields": {"split": "train"}}
    assert sample.meta.style is QueryStyle.irrelevance
    back = _rows_back("xlam", row)
    assert back["split"] == "train" and back["id"] == xlam_row_id("x-1")


def _openai_row(sample: Sample) -> dict[str, Any]:
    out = io.BytesIO()
    write_samples([sample], out, "openai")
    row: dict[str, Any] = orjson.loads(out.getvalue())
    return row


def test_openai_rows_have_one_system_message_and_end_on_an_assistant_message() -> None:
    for sample in SAMPLES:
        messages = _openai_row(sample)["messages"]
        assert [m["role"] for m in messages].count("system") <= 1
        assert messages[-1]["role"] == "assistant"
    simple = SAMPLES[0]
    assert _openai_row(simple)["messages"][0] == {
        "role": "system",
        "content": f"{simple.task_instruction}\n\n{simple.format_instruction}",
    }


def test_openai_still_reads_two_system_messages_as_task_and_format_instructions() -> None:
    row = {
        "messages": [
            {"role": "system", "content": "You are a travel assistant."},
            {"role": "system", "content": "Answer in JSON."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
        ]
    }
    (sample,) = FORMATS.get("openai").read([orjson.dumps(row)], "row.jsonl")
    assert (sample.task_instruction, sample.format_instruction) == (
        "You are a travel assistant.",
        "Answer in JSON.",
    )
    assert _openai_row(sample)["messages"][0] == {
        "role": "system",
        "content": "You are a travel assistant.\n\nAnswer in JSON.",
    }


def test_openai_summary_after_tool_results_is_written_and_not_read_back() -> None:
    step = Step(
        tool_calls=[ToolCall(name="get_weather", arguments={"city": "Oslo"}, id="c")],
        results=[{"temp_c": 3}],
    )
    sample = SAMPLES[0].model_copy(update={"steps": [step]})
    last = _openai_row(sample)["messages"][-1]
    assert last == {
        "role": "assistant",
        "content": 'The tools returned:\n- get_weather: {"temp_c":3}',
    }
    back = _round_trip(sample, "openai")
    assert back.steps == [step]
    # A different answer after the results is the sample's own and comes back.
    row = _openai_row(sample)
    row["messages"][-1]["content"] = "It is 3 °C in Oslo."
    (read,) = FORMATS.get("openai").read([orjson.dumps(row)], "row.jsonl")
    assert read.final_answer() == "It is 3 °C in Oslo."


def test_openai_refusal_for_a_sample_without_steps_is_not_read_back() -> None:
    sample = SAMPLES[0].model_copy(update={"steps": []})
    last = _openai_row(sample)["messages"][-1]
    assert last == {
        "role": "assistant",
        "content": "None of the available tools can do this, so I cannot call any of them.",
    }
    assert _round_trip(sample, "openai").steps == []


def test_openai_writes_every_user_turn_each_closed_by_an_assistant_message() -> None:
    conversation = multi_turn_samples()[0]
    messages = _openai_row(conversation)["messages"]
    users = [m["content"] for m in messages if m["role"] == "user"]
    assert users == [turn.query for turn in conversation.conversation()]
    before_users = [messages[i - 1]["role"] for i, m in enumerate(messages) if m["role"] == "user"]
    assert before_users[1:] == ["assistant", "assistant"]
    assert messages[-1] == {"role": "assistant", "content": "Have a good trip."}
    # The second turn ended on tool results: the writer closed it with a summary, not read back.
    summary = messages[[m.get("content") for m in messages].index(users[2]) - 1]
    assert summary["content"].startswith("The tools returned:")
    assert _round_trip(conversation, "openai").turns[0].steps[-1].answer is None


def test_sharegpt_reads_follow_up_human_turns_as_turns() -> None:
    row = {
        "conversations": [
            {"from": "human", "value": "Hi"},
            {"from": "gpt", "value": "Hello!"},
            {"from": "human", "value": "Weather in Faro?"},
            {
                "from": "gpt",
                "value": '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Faro"}}\n'
                "</tool_call>\n",
            },
        ]
    }
    (sample,) = FORMATS.get("sharegpt").read([orjson.dumps(row)], "conversation.jsonl")
    assert sample.query == "Hi" and sample.steps == [Step(answer="Hello!")]
    assert [t.query for t in sample.turns] == ["Weather in Faro?"]
    assert [c.arguments for c in sample.turns[0].steps[0].tool_calls] == [{"city": "Faro"}]
    assert sample.format_version == "1.1"
    assert _rows_back("sharegpt", row)["conversations"] == row["conversations"]
