"""Unified samples as chat conversations: the one format the model is trained on and evaluated in.

A conversation is a system turn (the instructions; the tools go to the chat template's `tools`),
the user's query, then per step an assistant turn whose content is the step's calls as a JSON
list `[{"name": ..., "arguments": {...}}]`, one `tool` turn per known result, and an assistant
turn with the step's answer when it has one. A sample that calls nothing (irrelevance) gets one
assistant turn with its answer, or a default refusal. Thoughts and few-shot examples are not
rendered: the model is asked for calls, and evaluation parses calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from unified.model import QueryStyle, Sample, Step, ToolCall

Message = dict[str, Any]

DEFAULT_INSTRUCTION = (
    "You can call the tools you are given. To call tools, answer with only a JSON list of "
    'calls, [{"name": "tool_name", "arguments": {...}}], one entry per call. If no tool fits '
    "the request, answer in plain text without a call."
)
DEFAULT_REFUSAL = "None of the available tools can do this, so I cannot call any of them."


@dataclass(frozen=True)
class Conversation:
    """A sample as chat messages plus its tools in the OpenAI tools format."""

    messages: list[Message]
    tools: list[dict[str, Any]] = field(default_factory=list)

    def prompt(self) -> list[Message]:
        """The messages before the first assistant turn: what the model sees at inference."""
        for index, message in enumerate(self.messages):
            if message["role"] == "assistant":
                return self.messages[:index]
        return list(self.messages)

    def has_assistant_turn(self) -> bool:
        """Whether there is anything to train on."""
        return any(message["role"] == "assistant" for message in self.messages)


def calls_text(calls: Sequence[ToolCall]) -> str:
    """The assistant's content for a list of calls: `[{"name": ..., "arguments": {...}}]`."""
    return orjson.dumps(
        [{"name": call.name, "arguments": call.arguments} for call in calls]
    ).decode()


def render(sample: Sample) -> Conversation:
    """The conversation of `sample`, for training and evaluation alike."""
    instruction = sample.task_instruction.strip() or DEFAULT_INSTRUCTION
    if sample.format_instruction.strip():
        instruction = f"{instruction}\n{sample.format_instruction.strip()}"
    messages: list[Message] = [
        {"role": "system", "content": instruction},
        {"role": "user", "content": sample.query},
    ]
    for step in sample.steps:
        messages.extend(_step_messages(step))
    if not any(m["role"] == "assistant" for m in messages) and _expects_refusal(sample):
        messages.append({"role": "assistant", "content": DEFAULT_REFUSAL})
    return Conversation(messages=messages, tools=[tool.openai() for tool in sample.tools])


def _step_messages(step: Step) -> list[Message]:
    messages: list[Message] = []
    if step.tool_calls:
        messages.append({"role": "assistant", "content": calls_text(step.tool_calls)})
        for call, result in zip(step.tool_calls, step.results, strict=False):
            content = result if isinstance(result, str) else orjson.dumps(result).decode()
            messages.append({"role": "tool", "name": call.name, "content": content})
    if step.answer is not None:
        messages.append({"role": "assistant", "content": step.answer})
    return messages


def _expects_refusal(sample: Sample) -> bool:
    return sample.meta.style is QueryStyle.irrelevance


def expected_calls(sample: Sample) -> list[ToolCall]:
    """The calls of the first assistant turn: what evaluation compares the model's output to.

    Empty when the first turn is an answer (the sample calls no tool)."""
    for step in sample.steps:
        if step.tool_calls:
            return list(step.tool_calls)
        if step.answer is not None:
            return []
    return []


def renders_tools(chat_template: str) -> bool:
    """Whether a chat template places the `tools` it is given (otherwise they go into the
    system turn as text)."""
    return "tools" in chat_template


def chat_inputs(
    conversation: Conversation, template_renders_tools: bool, *, prompt_only: bool = False
) -> tuple[list[Message], list[dict[str, Any]] | None]:
    """Messages and `tools` argument for `apply_chat_template`.

    With a template that ignores `tools`, the tools are appended to the system turn as JSON.
    `tools` is None rather than empty when there are none: some templates print tool
    boilerplate for an empty list.
    """
    messages = conversation.prompt() if prompt_only else list(conversation.messages)
    tools = conversation.tools or None
    if tools is None or template_renders_tools:
        return messages, tools
    listing = orjson.dumps(tools).decode()
    system = dict(messages[0])
    system["content"] = f"{system['content']}\nTools: {listing}"
    return [system, *messages[1:]], None
