"""What the chat formats that train as-is share: the one system message, the assistant's
messages in the Hugging Face chat shape, and the turn that closes a conversation.

- The system message is the task instruction with the format instruction joined after it by a
  blank line (`system_text`; `hf` leaves the format instruction out); there is none when both
  are empty.
- An assistant message with calls is `{"role": "assistant", "content": thought or "",
  "tool_calls": [{"type": "function", "function": {"name", "arguments"}, "id"?}]}`, arguments a
  JSON object (chat templates apply `tojson` to them), the call's `id` only when it has one; each
  known result follows as `{"role": "tool", "name", "content": text, "tool_call_id"?}`.
- Every conversation ends with an assistant message (`closing_turn`): the sample's own answer or
  calls when it ends on them; when it ends on tool results, a summary of those results written by
  the exporter (`summary`); when it has no step at all (its right answer is to call nothing), a
  refusal (`refusal`). Both texts are a pure function of the sample, so the same sample always
  gives the same bytes, and a reader can recognise them (`is_closing`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import orjson

from unified.model import Sample, Step, ToolCall

Message = dict[str, Any]
FinalTurn = Literal["answer", "tool_calls", "summary", "refusal"]
"""How a conversation ends: the sample's own answer (`answer`) or calls (`tool_calls`), or a turn
the exporter wrote: a summary of the last tool results (`summary`), a refusal (`refusal`)."""

DEFAULT_REFUSAL = "None of the available tools can do this, so I cannot call any of them."
SUMMARY_HEADING = "The tools returned:"


def system_text(sample: Sample, *, format_instruction: bool = True) -> str:
    """The one system message's text: the task instruction, then (unless left out) the format
    instruction."""
    parts = (sample.task_instruction, sample.format_instruction if format_instruction else "")
    return "\n\n".join(part for part in parts if part)


def tool_call_entries(calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    """Calls as `tool_calls` entries, arguments as they are (a JSON object; a string only when the
    call's arguments were not JSON), `id` only for a call that has one."""
    entries = []
    for call in calls:
        entry: dict[str, Any] = {
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
        }
        if call.id is not None:
            entry["id"] = call.id
        entries.append(entry)
    return entries


def result_content(result: Any) -> str:
    """A tool result as a tool message's text: strings verbatim, anything else compact JSON."""
    return result if isinstance(result, str) else orjson.dumps(result).decode()


def step_messages(step: Step, *, thoughts: bool = True) -> list[Message]:
    """The messages of one step: the calls (with the thought as content when `thoughts`), a tool
    message per known result, then the answer if the step has one. A step with neither calls nor
    answer gives its thought (or "") as an answer when `thoughts`, else nothing."""
    messages: list[Message] = []
    if step.tool_calls:
        content = (step.thought or "") if thoughts else ""
        messages.append(
            {
                "role": "assistant",
                "content": content,
                "tool_calls": tool_call_entries(step.tool_calls),
            }
        )
        for call, result in zip(step.tool_calls, step.results, strict=False):
            message: Message = {
                "role": "tool",
                "name": call.name,
                "content": result_content(result),
            }
            if call.id is not None:
                message["tool_call_id"] = call.id
            messages.append(message)
    if step.answer is not None:
        messages.append({"role": "assistant", "content": step.answer})
    elif thoughts and not step.tool_calls:
        messages.append({"role": "assistant", "content": step.thought or ""})
    return messages


def closing_turn(steps: Sequence[Step]) -> tuple[FinalTurn, str | None]:
    """How a conversation of `steps` ends, and the text of the turn the exporter adds (None when
    the steps end on an assistant message of their own)."""
    if not steps:
        return "refusal", DEFAULT_REFUSAL
    last = steps[-1]
    if last.answer is not None or not last.tool_calls:
        return "answer", None
    if not last.results:
        return "tool_calls", None
    return "summary", results_summary(steps)


def results_summary(steps: Sequence[Step]) -> str:
    """A plain summary of the results of the steps after the last answer, one line per result:
    `- tool_name: result`."""
    start = len(steps)
    while start > 0 and steps[start - 1].answer is None:
        start -= 1
    lines = [SUMMARY_HEADING]
    for step in steps[start:]:
        for call, result in zip(step.tool_calls, step.results, strict=False):
            lines.append(f"- {call.name}: {result_content(result)}")
    return "\n".join(lines)


def is_closing(steps: Sequence[Step]) -> bool:
    """Whether the last of `steps` is only the turn an exporter adds after the ones before it
    (read back from a file this package wrote), so a reader can leave it out."""
    if not steps:
        return False
    last = steps[-1]
    if last.tool_calls or last.answer is None or last.thought is not None:
        return False
    kind, text = closing_turn(steps[:-1])
    return kind in ("summary", "refusal") and text == last.answer
