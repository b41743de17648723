"""The `hf` format: rows `{"messages", "tools", "final_turn"}` that TRL's SFTTrainer and
`apply_chat_template(messages, tools=...)` take as they are: one system message, calls whose
arguments are JSON objects, tool results as `tool` messages, and always an assistant message
last. Loading them with `datasets` and TRL's own tokenization:
tests/trainer/test_export_consumers.py.
"""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest
from format_samples import hand_built_samples, multi_turn_samples

from unified.errors import ActionForgeError
from unified.formats import FORMATS, read_samples, writable_formats, write_samples
from unified.formats.chat import DEFAULT_REFUSAL, SUMMARY_HEADING
from unified.formats.hf import conversation, prompt_messages
from unified.model import Sample, Step, ToolCall

SAMPLES = {sample.id: sample for sample in hand_built_samples() + multi_turn_samples()}


def rows(samples: list[Sample]) -> list[dict]:
    out = io.BytesIO()
    assert write_samples(samples, out, "hf") == len(samples)
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


def test_hf_is_a_writable_format() -> None:
    assert "hf" in FORMATS.names() and "hf" in writable_formats()


@pytest.mark.parametrize("sample", list(SAMPLES.values()), ids=list(SAMPLES))
def test_every_row_has_the_conversational_shape(sample: Sample) -> None:
    (row,) = rows([sample])
    assert list(row) == ["messages", "tools", "final_turn"]
    assert row["tools"] == [tool.openai() for tool in sample.tools]
    messages = row["messages"]
    systems = [m for m in messages if m["role"] == "system"]
    assert len(systems) <= 1 and (not systems or messages[0] is systems[0])
    assert messages[-1]["role"] == "assistant"
    for message in messages:
        assert isinstance(message["content"], str)
        for call in message.get("tool_calls", []):
            assert call["type"] == "function"
            assert isinstance(call["function"]["arguments"], dict)
            assert set(call) <= {"type", "function", "id"}
    calls = [
        (c["function"]["name"], c["function"]["arguments"], c.get("id"))
        for m in messages[len(prompt_messages(sample)) :]
        for c in m.get("tool_calls", [])
    ]
    assert calls == [(c.name, c.arguments, c.id) for c in sample.tool_calls()]


def test_one_system_message_holds_the_task_instruction_and_not_the_format_one() -> None:
    sample = SAMPLES["s-simple"]
    assert sample.format_instruction  # it asks for an answer format a chat template overrides
    (row,) = rows([sample])
    assert row["messages"][0] == {"role": "system", "content": sample.task_instruction}
    assert [m["role"] for m in row["messages"]].count("system") == 1
    bare = sample.model_copy(update={"task_instruction": "", "format_instruction": "x"})
    assert rows([bare])[0]["messages"][0] == {"role": "user", "content": sample.query}


def test_calls_results_and_the_final_answer() -> None:
    (row,) = rows([SAMPLES["s-simple"]])
    assert row["final_turn"] == "answer"
    assert row["messages"][1:] == [
        {"role": "user", "content": "What's the weather in Lisbon?"},
        {
            "role": "assistant",
            "content": "I should look the weather up.",
            "tool_calls": [
                {
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": {"city": "Lisbon"}},
                }
            ],
        },
        {"role": "tool", "name": "get_weather", "content": '{"temp_c":21.5,"sky":"clear"}'},
        {"role": "assistant", "content": '{"answer": "21.5 °C and clear"}'},
    ]


def test_calls_keep_their_ids_and_results_point_at_them() -> None:
    sample = SAMPLES["s-parallel"]
    (row,) = rows([sample])
    start = len(prompt_messages(sample))
    assistant, first, second = row["messages"][start : start + 3]
    assert [call["id"] for call in assistant["tool_calls"]] == ["call_a", "call_b"]
    assert [first["tool_call_id"], second["tool_call_id"]] == ["call_a", "call_b"]


def test_a_sample_ending_on_tool_results_gets_a_summary_answer() -> None:
    sample = SAMPLES["42"]
    (row,) = rows([sample])
    assert row["final_turn"] == "summary"
    assert row["messages"][-2]["role"] == "tool"
    step = sample.steps[-1]
    expected = [SUMMARY_HEADING] + [
        f"- {call.name}: {orjson.dumps(result).decode()}"
        for call, result in zip(step.tool_calls, step.results, strict=True)
    ]
    assert row["messages"][-1] == {"role": "assistant", "content": "\n".join(expected)}
    assert rows([sample]) == [row]  # the same bytes every time


def test_a_sample_ending_on_calls_without_results_ends_on_them() -> None:
    (row,) = rows([SAMPLES["s-multiple"]])
    assert row["final_turn"] == "tool_calls"
    assert "tool_calls" in row["messages"][-1]


def test_a_sample_without_steps_gets_a_refusal() -> None:
    sample = SAMPLES["s-irrelevance"].model_copy(update={"steps": []})
    (row,) = rows([sample])
    assert row["final_turn"] == "refusal"
    assert row["messages"][-1] == {"role": "assistant", "content": DEFAULT_REFUSAL}
    (own,) = rows([SAMPLES["s-irrelevance"]])
    assert own["final_turn"] == "answer"


def test_few_shot_examples_are_earlier_turns() -> None:
    sample = SAMPLES["s-few-shot"]
    messages = conversation(sample).messages
    users = [m["content"] for m in messages if m["role"] == "user"]
    assert users == [e.query for e in sample.examples] + [sample.query]


def test_arguments_that_are_not_json_stay_text() -> None:
    step = Step(tool_calls=[ToolCall(name="get_weather", arguments="{city: Oslo")])
    sample = SAMPLES["s-simple"].model_copy(update={"steps": [step]})
    (row,) = rows([sample])
    assert row["messages"][-1]["tool_calls"][0]["function"]["arguments"] == "{city: Oslo"


def test_zero_samples_make_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    assert write_samples([], path, "hf") == 0
    assert path.read_bytes() == b""


def test_hf_cannot_be_read(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    write_samples(list(SAMPLES.values()), path, "hf")
    with pytest.raises(ActionForgeError, match="format 'hf' is written for training, not read"):
        read_samples(path, "hf")


def test_a_conversation_has_every_user_turn_each_answered_by_an_assistant_message() -> None:
    trip, refused_first = multi_turn_samples()
    (row,) = rows([trip])
    messages = row["messages"]
    users = [i for i, m in enumerate(messages) if m["role"] == "user"]
    assert [messages[i]["content"] for i in users] == [t.query for t in trip.conversation()]
    assert all(messages[i - 1]["role"] == "assistant" for i in users[1:])
    # The second turn ends on tool results: a summary answers it before the third user turn.
    assert messages[users[2] - 1]["content"].startswith(SUMMARY_HEADING)
    assert row["final_turn"] == "answer"
    (row,) = rows([refused_first])
    assert row["messages"][1] == {"role": "assistant", "content": DEFAULT_REFUSAL}
    assert row["final_turn"] == "tool_calls"
    assert conversation(refused_first).messages == row["messages"]
