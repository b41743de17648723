"""Unified samples as chat conversations: the one format the model is trained on and evaluated in.

`render` gives a conversation in the OpenAI chat shape: a system turn (the sample's task
instruction), the user's query, then per step an assistant turn carrying the step's calls as
`tool_calls`, one `tool` turn per known result, and an assistant turn with the step's answer when
it has one. A sample that calls nothing (irrelevance) gets one assistant turn with its answer, or
a default refusal. Thoughts and few-shot examples are not rendered: the model is asked for calls,
and evaluation parses calls.

A multi-turn sample renders every turn in order, each the user's message then its steps'
messages as above. A turn the assistant does not answer (no call, no answer: a BFCL turn whose
ground truth is empty) gets the default refusal, as the `hf` export closes it, so every user
turn is answered; a conversation none of whose turns has a step is left as it is (nothing to
train on, like a single-turn sample without steps). `Conversation.prompt(turn)` is what the
model sees when asked for a turn's answer: the reference's earlier turns with their results,
then that turn's user message.

`chat_inputs` fits the conversation to a chat template, so that the prompt and the target
always agree:

- a template that renders assistant `tool_calls` gets them as they are, and the `tools` too:
  the calls are written the template's own way (`<tool_call>` blocks, ...), and the system turn
  says nothing of a call format;
- with any other template the calls become the assistant's text, a JSON list
  `[{"name": ..., "arguments": {...}}]`, and the system turn ends with `CALLS_AS_TEXT`, which asks
  for exactly that (the tools, when the template does not place them either, are listed there).

A sample's own `format_instruction` is not rendered: it describes the answer format of the data
it came from (xLAM's asks for `{"tool_calls": [...]}` and `[]` for no call), which is not the
format the model is trained to write here.

The assistant and tool messages are those of the `hf` export (`unified.formats.chat.step_messages`),
without thoughts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from unified.formats.chat import DEFAULT_REFUSAL, step_messages
from unified.model import QueryStyle, Sample, Step, ToolCall

Message = dict[str, Any]

DEFAULT_INSTRUCTION = (
    "You can call the tools you are given. If no tool fits the request, answer in plain text "
    "without a call."
)
CALLS_AS_TEXT = (
    'To call tools, answer with only a JSON list of calls, [{"name": "tool_name", '
    '"arguments": {...}}], one entry per call.'
)


@dataclass(frozen=True)
class Conversation:
    """A sample as chat messages plus its tools in the OpenAI tools format."""

    messages: list[Message]
    tools: list[dict[str, Any]] = field(default_factory=list)

    def prompt(self, turn: int = 0) -> list[Message]:
        """What the model sees when asked for user turn `turn`'s answer (0: the first): the
        messages before the assistant's first message after that turn's user message."""
        starts = self.turn_starts()
        if not 0 <= turn < len(starts):
            raise IndexError(f"turn {turn} of a conversation of {len(starts)} user turns")
        for index in range(starts[turn] + 1, len(self.messages)):
            if self.messages[index]["role"] in ("assistant", "user"):
                return self.messages[:index]
        return list(self.messages)

    def turn_starts(self) -> list[int]:
        """The index of each user turn's message, in order."""
        return [index for index, message in enumerate(self.messages) if message["role"] == "user"]

    def has_assistant_turn(self) -> bool:
        """Whether there is anything to train on."""
        return any(message["role"] == "assistant" for message in self.messages)


def render(sample: Sample) -> Conversation:
    """The conversation of `sample`, for training and evaluation alike."""
    messages: list[Message] = [
        {"role": "system", "content": sample.task_instruction.strip() or DEFAULT_INSTRUCTION},
    ]
    turns = sample.conversation()
    answer_every_turn = _expects_refusal(sample) or (
        len(turns) > 1 and any(turn.steps for turn in turns)
    )
    for turn in turns:
        messages.append({"role": "user", "content": turn.query})
        answer = [message for step in turn.steps for message in _step_messages(step)]
        if answer_every_turn and not any(m["role"] == "assistant" for m in answer):
            answer.append({"role": "assistant", "content": DEFAULT_REFUSAL})
        messages.extend(answer)
    return Conversation(messages=messages, tools=[tool.openai() for tool in sample.tools])


def _step_messages(step: Step) -> list[Message]:
    return step_messages(step, thoughts=False)


def _expects_refusal(sample: Sample) -> bool:
    return sample.meta.style is QueryStyle.irrelevance


def expected_calls(sample: Sample, turn: int = 0) -> list[ToolCall]:
    """The calls of the assistant's first message in user turn `turn` (0: the first): what
    evaluation compares the model's output to.

    Empty when that message is an answer (the turn calls no tool)."""
    steps = sample.steps if turn == 0 else sample.turns[turn - 1].steps
    for step in steps:
        if step.tool_calls:
            return list(step.tool_calls)
        if step.answer is not None:
            return []
    return []


@dataclass(frozen=True)
class TemplateAbilities:
    """What a chat template places itself: the `tools` it is given, the assistant's
    `tool_calls`."""

    tools: bool
    tool_calls: bool

    @classmethod
    def of(cls, chat_template: str) -> TemplateAbilities:
        return cls(tools="tools" in chat_template, tool_calls="tool_calls" in chat_template)


def renders_tools(chat_template: str) -> bool:
    """Whether a chat template places the `tools` it is given (otherwise they go into the
    system turn as text)."""
    return TemplateAbilities.of(chat_template).tools


def chat_inputs(
    conversation: Conversation,
    abilities: TemplateAbilities,
    *,
    prompt_only: bool = False,
    turn: int = 0,
) -> tuple[list[Message], list[dict[str, Any]] | None]:
    """Messages and `tools` argument for `apply_chat_template` with a template of `abilities`:
    the whole conversation, or with `prompt_only` its prompt for user turn `turn`.

    `tools` is None rather than empty when there are none: some templates print tool
    boilerplate for an empty list. The conversation is not changed.
    """
    messages = conversation.prompt(turn) if prompt_only else list(conversation.messages)
    tools = conversation.tools or None
    if abilities.tool_calls:
        return messages, tools
    messages = [_calls_as_text(message) for message in messages]
    system = dict(messages[0])
    if tools is not None:
        system["content"] = f"{system['content']}\n{CALLS_AS_TEXT}"
        if not abilities.tools:
            system["content"] += f"\nTools: {orjson.dumps(tools).decode()}"
            tools = None
    return [system, *messages[1:]], tools


def _calls_as_text(message: Message) -> Message:
    if message["role"] != "assistant" or "tool_calls" not in message:
        return message
    calls = [entry["function"] for entry in message["tool_calls"]]
    text = orjson.dumps([{"name": c["name"], "arguments": c["arguments"]} for c in calls])
    return {"role": "assistant", "content": text.decode()}
