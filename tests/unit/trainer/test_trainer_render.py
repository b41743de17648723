"""Samples as conversations: the one format the model is trained on and evaluated in."""

from __future__ import annotations

import json

from trainer.render import (
    DEFAULT_INSTRUCTION,
    DEFAULT_REFUSAL,
    chat_inputs,
    expected_calls,
    render,
    renders_tools,
)
from unified.model import QueryStyle, Sample, SampleMeta, Step, Tool, ToolCall

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


def test_parallel_calls_become_one_assistant_turn_with_a_json_list() -> None:
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
            "content": '[{"name":"get_weather","arguments":{"city":"Oslo"}},'
            '{"name":"get_weather","arguments":{"city":"Rome","unit":"celsius"}}]',
        },
    ]
    assert json.loads(conversation.messages[2]["content"]) == [
        {"name": c.name, "arguments": c.arguments} for c in calls
    ]
    assert conversation.tools == [WEATHER.openai()]
    assert conversation.prompt() == conversation.messages[:2]


def test_results_and_the_final_answer_follow_the_calls() -> None:
    step = Step(
        tool_calls=[ToolCall(name="get_weather", arguments={"city": "Oslo"})],
        results=[{"temp": 3}],
        answer="It is 3 degrees in Oslo.",
    )
    messages = render(sample([step])).messages
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert messages[3] == {"role": "tool", "name": "get_weather", "content": '{"temp":3}'}
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


def test_the_sample_instructions_replace_the_default() -> None:
    conversation = render(
        sample([], task_instruction="Use tools.", format_instruction="Answer in JSON.")
    )
    assert conversation.messages[0]["content"] == "Use tools.\nAnswer in JSON."


def test_expected_calls_are_those_of_the_first_assistant_turn() -> None:
    first = ToolCall(name="get_weather", arguments={"city": "Oslo"})
    later = ToolCall(name="get_weather", arguments={"city": "Rome"})
    steps = [Step(thought="look it up"), Step(tool_calls=[first]), Step(tool_calls=[later])]
    assert expected_calls(sample(steps)) == [first]
    assert expected_calls(sample([Step(answer="no"), Step(tool_calls=[later])])) == []


def test_tools_go_into_the_system_turn_when_the_template_ignores_them() -> None:
    conversation = render(sample([Step(answer="ok")]))
    messages, tools = chat_inputs(conversation, template_renders_tools=True)
    assert tools == [WEATHER.openai()] and messages == conversation.messages
    messages, tools = chat_inputs(conversation, template_renders_tools=False, prompt_only=True)
    assert tools is None
    assert messages[0]["content"].startswith(DEFAULT_INSTRUCTION + "\nTools: [")
    assert json.loads(messages[0]["content"].split("Tools: ", 1)[1]) == [WEATHER.openai()]
    assert [m["role"] for m in messages] == ["system", "user"]
    assert conversation.messages[0]["content"] == DEFAULT_INSTRUCTION  # not changed in place


def test_no_tools_means_no_tools_argument() -> None:
    conversation = render(Sample(id="x", query="hi", steps=[Step(answer="hello")]))
    assert chat_inputs(conversation, template_renders_tools=True)[1] is None


def test_renders_tools_looks_for_tools_in_the_template() -> None:
    assert renders_tools("{% if tools %}{{ tools | tojson }}{% endif %}")
    assert not renders_tools("{% for m in messages %}{{ m['content'] }}{% endfor %}")
