"""Samples as conversations: the one format the model is trained on and evaluated in."""

from __future__ import annotations

import json

from trainer.render import (
    CALLS_AS_TEXT,
    DEFAULT_INSTRUCTION,
    DEFAULT_REFUSAL,
    TemplateAbilities,
    chat_inputs,
    expected_calls,
    render,
    renders_tools,
)
from unified.model import QueryStyle, Sample, SampleMeta, Step, Tool, ToolCall, Turn

WEATHER = Tool(
    name="get_weather",
    description="Weather of a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
        "required": ["city"],
    },
)


def sample(steps: list[Step], style: QueryStyle | None = None, **fields: object) -> Sample:
    return Sample(
        id="s1",
        query="Weather in Oslo and Rome?",
        tools=[WEATHER],
        steps=steps,
        meta=SampleMeta(style=style),
        **fields,  # type: ignore[arg-type]
    )


NATIVE = TemplateAbilities(tools=True, tool_calls=True)
TOOLS_ONLY = TemplateAbilities(tools=True, tool_calls=False)
PLAIN = TemplateAbilities(tools=False, tool_calls=False)


def test_parallel_calls_become_one_assistant_turn_with_tool_calls() -> None:
    calls = [
        ToolCall(name="get_weather", arguments={"city": "Oslo"}),
        ToolCall(name="get_weather", arguments={"city": "Rome", "unit": "celsius"}),
    ]
    conversation = render(sample([Step(tool_calls=calls)], QueryStyle.parallel))
    assert conversation.messages == [
        {"role": "system", "content": DEFAULT_INSTRUCTION},
        {"role": "user", "content": "Weather in Oslo and Rome?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in calls
            ],
        },
    ]
    assert conversation.tools == [WEATHER.openai()]
    assert conversation.prompt() == conversation.messages[:2]


def test_a_template_that_writes_tool_calls_gets_them_and_no_call_format() -> None:
    conversation = render(sample([Step(tool_calls=[ToolCall(name="get_weather")])]))
    messages, tools = chat_inputs(conversation, NATIVE)
    assert messages == conversation.messages and tools == [WEATHER.openai()]
    assert CALLS_AS_TEXT not in messages[0]["content"]


def test_otherwise_the_target_is_the_json_list_the_system_turn_asks_for() -> None:
    calls = [
        ToolCall(name="get_weather", arguments={"city": "Oslo"}),
        ToolCall(name="get_weather", arguments={"city": "Rome", "unit": "celsius"}),
    ]
    conversation = render(sample([Step(tool_calls=calls)], QueryStyle.parallel))
    messages, tools = chat_inputs(conversation, TOOLS_ONLY)
    assert tools == [WEATHER.openai()]
    assert messages[0]["content"] == f"{DEFAULT_INSTRUCTION}\n{CALLS_AS_TEXT}"
    assert messages[2] == {
        "role": "assistant",
        "content": '[{"name":"get_weather","arguments":{"city":"Oslo"}},'
        '{"name":"get_weather","arguments":{"city":"Rome","unit":"celsius"}}]',
    }
    assert json.loads(messages[2]["content"]) == [
        {"name": c.name, "arguments": c.arguments} for c in calls
    ]
    assert '[{"name": "tool_name", "arguments": {...}}]' in CALLS_AS_TEXT
    assert "tool_calls" in conversation.messages[2]  # not changed in place


def test_results_and_the_final_answer_follow_the_calls() -> None:
    step = Step(
        tool_calls=[ToolCall(name="get_weather", arguments={"city": "Oslo"})],
        results=[{"temp": 3}],
        answer="It is 3 degrees in Oslo.",
    )
    messages = render(sample([step])).messages
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert messages[3] == {"role": "tool", "name": "get_weather", "content": '{"temp":3}'}
    step.tool_calls[0].id = "call_1"
    tool_turn = render(sample([step])).messages[3]
    assert tool_turn["tool_call_id"] == "call_1"
    assert messages[4]["content"] == "It is 3 degrees in Oslo."


def test_an_irrelevance_sample_answers_without_a_call() -> None:
    answered = render(sample([Step(answer="I cannot book trains.")], QueryStyle.irrelevance))
    assert answered.messages[-1] == {"role": "assistant", "content": "I cannot book trains."}
    bare = render(sample([], QueryStyle.irrelevance))
    assert bare.messages[-1] == {"role": "assistant", "content": DEFAULT_REFUSAL}
    assert expected_calls(sample([Step(answer="No.")], QueryStyle.irrelevance)) == []


def test_a_sample_without_steps_or_refusal_has_nothing_to_train_on() -> None:
    conversation = render(sample([], QueryStyle.simple))
    assert not conversation.has_assistant_turn()
    assert conversation.prompt() == conversation.messages


def test_the_task_instruction_replaces_the_default_and_the_format_instruction_is_left_out() -> None:
    conversation = render(
        sample([], task_instruction="Use tools.", format_instruction='Write {"tool_calls": []}.')
    )
    assert conversation.messages[0]["content"] == "Use tools."
    messages, _ = chat_inputs(conversation, PLAIN)
    assert messages[0]["content"].startswith(f"Use tools.\n{CALLS_AS_TEXT}\nTools: [")


def test_expected_calls_are_those_of_the_first_assistant_turn() -> None:
    first = ToolCall(name="get_weather", arguments={"city": "Oslo"})
    later = ToolCall(name="get_weather", arguments={"city": "Rome"})
    steps = [Step(thought="look it up"), Step(tool_calls=[first]), Step(tool_calls=[later])]
    assert expected_calls(sample(steps)) == [first]
    assert expected_calls(sample([Step(answer="no"), Step(tool_calls=[later])])) == []


def test_tools_go_into_the_system_turn_when_the_template_ignores_them() -> None:
    conversation = render(sample([Step(answer="ok")]))
    messages, tools = chat_inputs(conversation, TOOLS_ONLY)
    assert tools == [WEATHER.openai()] and "Tools: [" not in messages[0]["content"]
    messages, tools = chat_inputs(conversation, PLAIN, prompt_only=True)
    assert tools is None
    assert messages[0]["content"].startswith(f"{DEFAULT_INSTRUCTION}\n{CALLS_AS_TEXT}\nTools: [")
    assert json.loads(messages[0]["content"].split("Tools: ", 1)[1]) == [WEATHER.openai()]
    assert [m["role"] for m in messages] == ["system", "user"]
    assert conversation.messages[0]["content"] == DEFAULT_INSTRUCTION  # not changed in place


def test_no_tools_means_no_tools_argument() -> None:
    conversation = render(Sample(id="x", query="hi", steps=[Step(answer="hello")]))
    messages, tools = chat_inputs(conversation, PLAIN)
    assert tools is None and messages[0]["content"] == DEFAULT_INSTRUCTION


def test_the_abilities_of_a_template_are_read_from_its_text() -> None:
    assert renders_tools("{% if tools %}{{ tools | tojson }}{% endif %}")
    assert not renders_tools("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    assert TemplateAbilities.of("{{ tools }}{% for c in m.tool_calls %}{% endfor %}") == NATIVE


BOOK = Tool(
    name="book_table",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)


def two_turns(second: list[Step]) -> Sample:
    oslo = ToolCall(name="get_weather", arguments={"city": "Oslo"}, id="c1")
    return Sample(
        id="mt",
        query="Weather in Oslo?",
        tools=[WEATHER, BOOK],
        steps=[Step(tool_calls=[oslo], results=[{"temp": 3}]), Step(answer="3 degrees.")],
        turns=[Turn(query="Then book a table there.", steps=second)],
        meta=SampleMeta(style=QueryStyle.multi_turn),
    )


def test_every_turn_is_rendered_in_order() -> None:
    book = ToolCall(name="book_table", arguments={"city": "Oslo"})
    conversation = render(two_turns([Step(tool_calls=[book], results=["ok"])]))
    roles = [m["role"] for m in conversation.messages]
    first = ["user", "assistant", "tool", "assistant"]
    assert roles == ["system", *first, "user", "assistant", "tool"]
    assert conversation.messages[5] == {"role": "user", "content": "Then book a table there."}
    assert conversation.messages[6]["tool_calls"][0]["function"]["name"] == "book_table"
    assert conversation.turn_starts() == [1, 5]


def test_a_turns_prompt_holds_the_earlier_turns_with_their_results() -> None:
    book = ToolCall(name="book_table", arguments={"city": "Oslo"})
    sample = two_turns([Step(tool_calls=[book])])
    conversation = render(sample)
    assert conversation.prompt() == conversation.prompt(0) == conversation.messages[:2]
    second = conversation.prompt(1)
    assert second == conversation.messages[:6]
    assert second[3] == {
        "role": "tool",
        "name": "get_weather",
        "content": '{"temp":3}',
        "tool_call_id": "c1",
    }
    assert second[-1]["content"] == "Then book a table there."
    assert expected_calls(sample, 1) == [book]
    assert expected_calls(sample) == sample.steps[0].tool_calls
    messages, _ = chat_inputs(conversation, PLAIN, prompt_only=True, turn=1)
    assert [m["role"] for m in messages] == [m["role"] for m in second]
    assert json.loads(messages[2]["content"]) == [
        {"name": "get_weather", "arguments": {"city": "Oslo"}}
    ]


def test_a_turn_without_an_answer_gets_the_refusal_so_every_user_turn_is_answered() -> None:
    conversation = render(two_turns([]))
    assert conversation.messages[-1] == {"role": "assistant", "content": DEFAULT_REFUSAL}
    assert conversation.prompt(1) == conversation.messages[:-1]
    assert expected_calls(two_turns([]), 1) == []


def test_a_conversation_without_any_step_has_nothing_to_train_on() -> None:
    bare = two_turns([]).model_copy(update={"steps": []})
    conversation = render(bare)
    assert [m["role"] for m in conversation.messages] == ["system", "user", "user"]
    assert not conversation.has_assistant_turn()
    assert conversation.prompt(0) == conversation.messages[:2]
