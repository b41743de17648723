"""Hugging Face conversational rows (JSON Lines) that train as they are: write only.

A row is `{"messages": [...], "tools": [...], "final_turn": ...}`, the conversational language
modeling shape TRL's `SFTTrainer` reads and `tokenizer.apply_chat_template(messages,
tools=row["tools"])` renders:

- `tools`: the sample's tools as OpenAI / JSON Schema function definitions
  (`{"type": "function", "function": {"name", "description", "parameters"}}`); `[]` when none.
- `messages`: one system message, the task instruction (none when it is empty); each few-shot
  example as a user turn and its
  assistant turns; the user's query; then one assistant message per step (`unified.formats.chat`):
  calls as `tool_calls` whose `arguments` are JSON objects (chat templates apply `tojson` to
  them: a JSON string there would be encoded twice), the thought as its content (`""` without
  one), each known result as a `tool` message (`name`, text `content`, `tool_call_id` when the
  call has an id), and the step's answer.
- A conversation's follow-up turns come after the first turn's messages, each its user message
  then its steps' messages, each closed like the last one below (so every user turn is answered
  by an assistant message).
- Every row ends with an assistant message; `final_turn` says which (for a conversation, how
  its last turn ends): `answer` (the sample's own
  final answer), `tool_calls` (the sample's own calls, which have no results), `summary` (the
  sample ends on tool results without an answer: the exporter writes `The tools returned:` and one
  `- tool_name: result` line per result of the steps since the last answer) or `refusal` (the
  sample has no step: the exporter writes `unified.formats.chat.DEFAULT_REFUSAL`).

`prompt_messages` (system, examples, query) and `completion_messages` (what follows) are what the
DPO export (`service.export.preference`) renders with, so a sample's DPO prompt is its SFT prompt.

The sample's format instruction is left out, as the trainer leaves it out (`trainer.render`): it
describes the answer format of the data the sample came from (xLAM's asks for
`{"tool_calls": [...]}`), while a chat template writes `tool_calls` its own way (`<tool_call>`
blocks, ...), so keeping it would teach a model to ignore its system prompt.

What the format cannot hold: the sample id and metadata, tool response schemas and sources, call
acceptable values, and the format instruction. It has no reader.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any, NoReturn

from unified.errors import ActionForgeError
from unified.formats.base import RowSource, write_rows
from unified.formats.chat import FinalTurn, Message, closing_turn, step_messages, system_text
from unified.model import Sample, Step


@dataclass(frozen=True)
class HFConversation:
    """A sample as chat messages, its tools as function definitions and how it ends."""

    messages: list[Message]
    tools: list[dict[str, Any]] = field(default_factory=list)
    final_turn: FinalTurn = "answer"

    def row(self) -> dict[str, Any]:
        """The JSON row."""
        return {"messages": self.messages, "tools": self.tools, "final_turn": self.final_turn}


def prompt_messages(sample: Sample) -> list[Message]:
    """The system message, the few-shot turns and the user's query: what the model is given."""
    messages: list[Message] = []
    system = system_text(sample, format_instruction=False)
    if system:
        messages.append({"role": "system", "content": system})
    for example in sample.examples:
        messages.append({"role": "user", "content": example.query})
        messages.extend(steps_messages(example.steps))
    messages.append({"role": "user", "content": sample.query})
    return messages


def steps_messages(steps: Iterable[Step]) -> list[Message]:
    """The messages of every step, in order."""
    return [message for step in steps for message in step_messages(step)]


def completion_messages(sample: Sample) -> tuple[list[Message], FinalTurn]:
    """The assistant's side of the first turn after the prompt, ending on an assistant message,
    and how it ends."""
    return _answer_messages(sample.steps)


def _answer_messages(steps: list[Step]) -> tuple[list[Message], FinalTurn]:
    messages = steps_messages(steps)
    final_turn, closing = closing_turn(steps)
    if closing is not None:
        messages.append({"role": "assistant", "content": closing})
    return messages, final_turn


def conversation(sample: Sample) -> HFConversation:
    """The row of `sample` as a conversation: the prompt, the first turn's answer, then each
    follow-up turn's user message and answer."""
    completion, final_turn = completion_messages(sample)
    for turn in sample.turns:
        completion.append({"role": "user", "content": turn.query})
        answer, final_turn = _answer_messages(turn.steps)
        completion.extend(answer)
    return HFConversation(
        messages=prompt_messages(sample) + completion,
        tools=[tool.openai() for tool in sample.tools],
        final_turn=final_turn,
    )


def row_from_sample(sample: Sample) -> dict[str, Any]:
    """One row from a unified sample."""
    return conversation(sample).row()


class HFChatFormat:
    """Hugging Face conversational rows, written only."""

    name = "hf"

    def read(self, stream: RowSource, document: str, **options: Any) -> NoReturn:
        raise ActionForgeError(
            f"{document}: format 'hf' is written for training, not read back (it does not say "
            "which system text was the task and which the format instruction); "
            "read the dataset in the format it was made from (unified, openai, ...)"
        )

    def write(self, samples: Iterable[Sample], stream: IO[Any]) -> int:
        """Write each sample as one row; return how many were written."""
        return write_rows(samples, row_from_sample, stream)


FORMAT = HFChatFormat()
