"""OpenAI chat fine-tuning rows (JSON Lines) with tool calls.

A row is `{"messages": [...], "tools": [{"type": "function", "function": {...}}],
"parallel_tool_calls"?: bool}`; the legacy `functions` / `function_call` / role `function` form is
read too (and written in the `tools` form).

Conventions, chosen so that a sample survives export and import:

- One system message opens the conversation: the task instruction, then the format instruction
  joined after it by a blank line (none when both are empty). Rows with two system messages, as
  this format wrote them before, are still read: the first is the task instruction, the second
  the format instruction; a single one is read as the task instruction.
- Few-shot examples come next as earlier turns, marked with OpenAI's own few-shot names: the
  example's user message has `"name": "example_user"`, its assistant messages
  `"name": "example_assistant"`.
- Then the conversation: the first real user message is the query, each later one a follow-up
  turn (`Sample.turns`). Each assistant message is a step of the turn it follows: with
  `tool_calls` its content (if any) is the step's thought; without, its content is a final answer.
  Tool messages that follow give the results, matched to the calls by `tool_call_id`.
- A step that has both tool calls and an answer is written as two assistant messages, so it
  comes back as two steps.
- Every turn ends with an assistant message (`unified.formats.chat.closing_turn`), so every row
  does: the turn's own answer or calls; when the turn ends on tool results without an answer, a
  summary the exporter writes (`The tools returned:`, then `- tool_name: result` per result since
  the last answer); when it has no step, `unified.formats.chat.DEFAULT_REFUSAL`. On reading, a
  turn's last assistant message that is exactly the summary or refusal the writer would add is
  left out, so the turn comes back without an answer, as it was.
- A tool message's text becomes a JSON value when writing that value back gives the same text,
  else it stays text; tool call arguments are written as JSON with `, ` and `: ` separators.
- Calls without an id get `call_1`, `call_2`, ... so that results can point at them.
- `parallel_tool_calls` goes to `meta.extra["openai_parallel_tool_calls"]`, other top-level keys
  to `meta.extra["openai_fields"]`; both are written back. A row's own `id` key, if any, is the
  sample id (and stays among the fields); rows without one get `<file stem>-<row>`.

What the format cannot hold, and so is lost on export: which system text was the task and which
the format instruction (both come back as the task instruction), the sample id and metadata (on
import the style is inferred from the calls and `created` is the time of import), tool response
schemas and sources, empty tool descriptions, a thought on a step without calls (its answer, or
the thought, is the message), a final answer that is exactly the summary or refusal above,
message keys other than role, name, content, tool_calls and tool_call_id (such as `weight`),
and the order of tool messages (they are matched by id).

Tool call arguments stay JSON text here, as OpenAI's fine-tuning format has them; Hugging Face chat
templates want them as objects, which the `hf` format (`unified.formats.hf`) writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from unified.errors import RowError
from unified.formats.base import (
    RowObjectFormat,
    infer_style,
    json_text,
    kind_of,
    result_text,
    result_value,
    row_id,
    short,
)
from unified.formats.chat import closing_turn, is_closing, system_text
from unified.model import Example, Sample, SampleMeta, Step, Tool, ToolCall, Turn

EXAMPLE_USER = "example_user"
EXAMPLE_ASSISTANT = "example_assistant"
CORE_KEYS = ("messages", "tools", "functions", "parallel_tool_calls")


class OpenAIChatFormat(RowObjectFormat):
    """OpenAI chat fine-tuning rows."""

    name = "openai"

    def sample_from_row(self, row: dict[str, Any], document: str, number: int) -> Sample:
        return _RowReader(document, number).sample(row)

    def row_from_sample(self, sample: Sample) -> dict[str, Any]:
        return row_from_sample(sample)


class _RowReader:
    """Walks the messages of one row, building the sample as it goes."""

    def __init__(self, document: str, row: int) -> None:
        self.document = document
        self.row = row
        self.systems: list[str] = []
        self.examples: list[Example] = []
        self.query: str | None = None
        self.steps: list[Step] = []
        self.turns: list[Turn] = []
        self.current: list[Step] | None = None
        self.open_step: Step | None = None
        self.filled: set[int] = set()

    def fail(self, message: str) -> RowError:
        return RowError(self.document, self.row, message)

    def sample(self, row: dict[str, Any]) -> Sample:
        messages = row.get("messages")
        if not isinstance(messages, list) or not messages:
            raise self.fail(
                f"field 'messages' is {kind_of(messages)}; write the conversation as a "
                "non-empty list of {role, content} messages"
            )
        tools = self.tools(row)
        for position, message in enumerate(messages, 1):
            self.message(message, f"message {position}")
        self.close_step()
        for steps in [self.steps, *(turn.steps for turn in self.turns)]:
            if is_closing(steps):
                steps.pop()
        if self.query is None:
            raise self.fail(
                'no user message without "name": "example_user"; add the user\'s request'
            )
        # The style of a conversation is its first turn's.
        calls = [call for step in self.steps for call in step.tool_calls]
        extra: dict[str, Any] = {}
        if "parallel_tool_calls" in row:
            extra["openai_parallel_tool_calls"] = row["parallel_tool_calls"]
        fields = {key: value for key, value in row.items() if key not in CORE_KEYS}
        if fields:
            extra["openai_fields"] = fields
        return Sample(
            id=row_id(row.get("id"), self.document, self.row),
            task_instruction=self.systems[0] if self.systems else "",
            format_instruction=self.systems[1] if len(self.systems) > 1 else "",
            tools=tools,
            examples=self.examples,
            query=self.query,
            steps=self.steps,
            turns=self.turns,
            meta=SampleMeta(
                style=infer_style(calls, len(tools)),
                source=f"openai:{self.document}",
                extra=extra,
            ),
        )

    def tools(self, row: dict[str, Any]) -> list[Tool]:
        legacy = "tools" not in row and "functions" in row
        entries = row.get("functions" if legacy else "tools")
        if entries is None:
            return []
        key = "functions" if legacy else "tools"
        if not isinstance(entries, list):
            raise self.fail(
                f"field '{key}' is {kind_of(entries)}; write a list of "
                '{"type": "function", "function": {name, description, parameters}}'
            )
        tools = []
        for index, entry in enumerate(entries, 1):
            spec = entry if legacy else (entry.get("function") if isinstance(entry, dict) else None)
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                raise self.fail(
                    f"tool {index} in '{key}' is {short(entry)}; write "
                    '{"type": "function", "function": {"name": ..., "parameters": {...}}}'
                )
            parameters = spec.get("parameters")
            tools.append(
                Tool(
                    name=spec["name"],
                    description=spec.get("description") or "",
                    **({"parameters": parameters} if parameters is not None else {}),
                )
            )
        return tools

    def message(self, message: Any, where: str) -> None:
        if not isinstance(message, dict):
            raise self.fail(f"{where} is {kind_of(message)}; write each message as an object")
        role = message.get("role")
        if role == "system":
            self.system(message, where)
        elif role == "user":
            self.user(message, where)
        elif role == "assistant":
            self.assistant(message, where)
        elif role in ("tool", "function"):
            self.tool_result(message, where)
        else:
            raise self.fail(f"{where} has role {short(role)}; use system, user, assistant or tool")

    def system(self, message: dict[str, Any], where: str) -> None:
        if self.current is not None:
            raise self.fail(
                f"{where} is a system message after the first user message; "
                "put system messages first"
            )
        if len(self.systems) == 2:
            raise self.fail(
                f"{where} is a third system message; use one for the task instruction and "
                "at most one more for the format instruction"
            )
        self.systems.append(self.text(message, where) or "")

    def user(self, message: dict[str, Any], where: str) -> None:
        self.close_step()
        text = self.text(message, where)
        if text is None:
            raise self.fail(f"{where} is a user message without content; write the request")
        if message.get("name") == EXAMPLE_USER:
            if self.query is not None:
                raise self.fail(
                    f"{where} is a few-shot example after the user's query; "
                    "put examples before the query"
                )
            self.examples.append(Example(query=text))
            self.current = self.examples[-1].steps
            return
        if self.query is not None:
            self.turns.append(Turn(query=text))
            self.current = self.turns[-1].steps
            return
        self.query = text
        self.current = self.steps

    def assistant(self, message: dict[str, Any], where: str) -> None:
        self.close_step()
        if self.current is None:
            raise self.fail(
                f"{where} is an assistant message before any user message; "
                "start with the user's request"
            )
        text = self.text(message, where)
        calls = self.calls(message, where)
        if calls:
            self.open_step = Step(thought=text, tool_calls=calls)
            self.current.append(self.open_step)
        else:
            self.current.append(Step(answer=text or ""))

    def calls(self, message: dict[str, Any], where: str) -> list[ToolCall]:
        entries = message.get("tool_calls")
        if entries is None and isinstance(message.get("function_call"), dict):
            entries = [{"function": message["function_call"]}]
        if entries is None:
            return []
        if not isinstance(entries, list):
            raise self.fail(f"{where}: 'tool_calls' is {kind_of(entries)}; write a list of calls")
        calls = []
        for index, entry in enumerate(entries, 1):
            function = entry.get("function") if isinstance(entry, dict) else None
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                raise self.fail(
                    f"{where}: tool call {index} is {short(entry)}; write "
                    '{"id": ..., "type": "function", '
                    '"function": {"name": ..., "arguments": "{...}"}}'
                )
            call_id = entry.get("id")
            calls.append(
                ToolCall(
                    name=function["name"],
                    arguments=function.get("arguments") or {},
                    id=call_id if isinstance(call_id, str) else None,
                )
            )
        return calls

    def tool_result(self, message: dict[str, Any], where: str) -> None:
        step = self.open_step
        if step is None:
            raise self.fail(
                f"{where} is a tool message with no assistant tool call before it; "
                "put it right after the assistant message whose call it answers"
            )
        index = self.call_index(step, message, where)
        content = self.text(message, where)
        if content is None:
            raise self.fail(f"{where} is a tool message without content; write the tool's output")
        if len(step.results) < len(step.tool_calls):
            step.results.extend([None] * (len(step.tool_calls) - len(step.results)))
        step.results[index] = result_value(content)
        self.filled.add(index)

    def call_index(self, step: Step, message: dict[str, Any], where: str) -> int:
        if message.get("role") == "function":
            name = message.get("name")
            for index, call in enumerate(step.tool_calls):
                if call.name == name and index not in self.filled:
                    return index
            raise self.fail(
                f"{where}: function result {short(name)} matches no call before it; "
                "name the function that was called"
            )
        call_id = message.get("tool_call_id")
        for index, call in enumerate(step.tool_calls):
            if call.id is not None and call.id == call_id:
                return index
        known = ", ".join(repr(call.id) for call in step.tool_calls)
        raise self.fail(
            f"{where}: tool_call_id {short(call_id)} matches no call of the assistant message "
            f"before it; use one of {known}"
        )

    def close_step(self) -> None:
        step = self.open_step
        if step is not None and self.filled:
            del step.results[max(self.filled) + 1 :]
        self.open_step = None
        self.filled = set()

    def text(self, message: dict[str, Any], where: str) -> str | None:
        content = message.get("content")
        if content is None or isinstance(content, str):
            return content
        if isinstance(content, list):
            parts = []
            for part in content:
                if not isinstance(part, dict) or part.get("type") != "text":
                    raise self.fail(
                        f"{where}: content part {short(part)} is not text; only text content "
                        "can be imported"
                    )
                parts.append(str(part.get("text", "")))
            return "".join(parts)
        raise self.fail(f"{where}: content is {kind_of(content)}; write a string")


def row_from_sample(sample: Sample) -> dict[str, Any]:
    """One fine-tuning row from a unified sample."""
    messages: list[dict[str, Any]] = []
    system = system_text(sample)
    if system:
        messages.append({"role": "system", "content": system})
    ids = _call_ids(sample)
    for example in sample.examples:
        messages.append({"role": "user", "name": EXAMPLE_USER, "content": example.query})
        messages.extend(_step_messages(example.steps, ids, EXAMPLE_ASSISTANT))
    for turn in sample.conversation():
        messages.append({"role": "user", "content": turn.query})
        messages.extend(_step_messages(turn.steps, ids, None))
        _, closing = closing_turn(turn.steps)
        if closing is not None:
            messages.append({"role": "assistant", "content": closing})
    row: dict[str, Any] = {"messages": messages, "tools": [_tool_entry(t) for t in sample.tools]}
    if "openai_parallel_tool_calls" in sample.meta.extra:
        row["parallel_tool_calls"] = sample.meta.extra["openai_parallel_tool_calls"]
    for key, value in (sample.meta.extra.get("openai_fields") or {}).items():
        row.setdefault(key, value)
    return row


def _call_ids(sample: Sample) -> Iterator[str]:
    """Fresh call ids (`call_1`, `call_2`, ...) that no call of the sample already uses."""
    steps = [step for example in sample.examples for step in example.steps] + sample.all_steps()
    taken = {call.id for step in steps for call in step.tool_calls}
    number = 0
    while True:
        number += 1
        if f"call_{number}" not in taken:
            yield f"call_{number}"


def _step_messages(
    steps: list[Step], ids: Iterator[str], name: str | None
) -> Iterator[dict[str, Any]]:
    named = {"name": name} if name else {}
    for step in steps:
        if not step.tool_calls:
            text = step.answer if step.answer is not None else (step.thought or "")
            yield {"role": "assistant", **named, "content": text}
            continue
        call_ids = [call.id or next(ids) for call in step.tool_calls]
        message: dict[str, Any] = {"role": "assistant", **named}
        if step.thought is not None:
            message["content"] = step.thought
        message["tool_calls"] = [
            {
                "id": call_id,
                "type": "function",
                "function": {
                    "name": call.name,
                    "arguments": call.arguments
                    if isinstance(call.arguments, str)
                    else json_text(call.arguments),
                },
            }
            for call, call_id in zip(step.tool_calls, call_ids, strict=True)
        ]
        yield message
        for call_id, result in zip(call_ids, step.results, strict=False):
            yield {"role": "tool", "tool_call_id": call_id, "content": result_text(result)}
        if step.answer is not None:
            yield {"role": "assistant", **named, "content": step.answer}


def _tool_entry(tool: Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name}
    if tool.description:
        function["description"] = tool.description
    function["parameters"] = tool.parameters
    return {"type": "function", "function": function}


FORMAT = OpenAIChatFormat()
