"""ShareGPT rows in the Hermes function-calling style (NousResearch hermes-function-calling-v1).

A row is `{"id": ..., "conversations": [{"from": "system" | "human" | "gpt" | "tool", "value":
...}], ...}`. The system message carries the tools as a list inside `<tools></tools>`; a `gpt`
message calls tools with `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` blocks; a
`tool` message answers with `<tool_response>{"name": ..., "content": ...}</tool_response>` blocks.

Conventions, chosen so that a sample survives export and import:

- System message: `{task}\\n<tools>\\n{tools}\\n</tools>\\n{format}`; the text before the tools
  block is the task instruction, the text after it the format instruction. Without tools and
  without a format instruction the system message is the task instruction alone. The block is
  found as the first `<tools>...</tools>` that holds a list, so prose such as "within
  <tools></tools> XML tags" stays part of the text.
- The tools list, the tool calls and the tool responses may be JSON or Python literals (as many
  Hermes rows are, `{'name': ..., 'arguments': {..., 'flag': True}}`); tools may be wrapped
  (`{"type": "function", "function": {...}}`, as written) or bare, a list or one per line. How a
  row wrote them, the whitespace around the tools block, the order of `name` and `arguments` in a
  call and what follows each closing tag are kept in `meta.extra["sharegpt_layout"]` and used on
  export, so Hermes rows come back unchanged.
- A `gpt` message with calls is a step: text before the first `<tool_call>` is its thought. A
  `gpt` message without calls is a final answer. Tool responses fill the step's results in order.
- Few-shot examples are earlier human/gpt turns; the row key `few_shot_examples` says how many
  human turns are examples. The first human turn after them is the query; each later one starts
  a follow-up turn of the conversation (`Sample.turns`), answered by the gpt and tool turns
  after it.
- The row's `id` is the sample id (rows without one get `<file stem>-<row>`, written on export);
  other keys (`category`, `task`, ...) go to `meta.extra["sharegpt_fields"]` and are written back.

What the format cannot hold, and so is lost on export: metadata other than `meta.extra`
(on import the style is inferred and `created` is the time of import), tool response schemas
and sources, empty tool descriptions, leading and trailing whitespace of the instructions,
thoughts, answers and call payloads, a thought on a step without calls, a step's calls and
answer in one message (the answer comes back as its own step), and tool response names (a
response is matched to its call by position).
"""

from __future__ import annotations

import ast
import re
from typing import Any

import orjson

from unified.errors import RowError
from unified.formats.base import (
    RowObjectFormat,
    infer_style,
    json_text,
    kind_of,
    result_value,
    row_id,
    short,
)
from unified.model import Example, Sample, SampleMeta, Step, Tool, ToolCall, Turn

ROLES = {
    "system": "system",
    "human": "human",
    "user": "human",
    "gpt": "gpt",
    "assistant": "gpt",
    "tool": "tool",
}
EXAMPLES_KEY = "few_shot_examples"
CORE_KEYS = ("id", "conversations", EXAMPLES_KEY)
DEFAULT_SPACING = ["\n", "\n", "\n", "\n"]
DEFAULT_BLOCK_END = "\n"

_TOOLS_BLOCK = re.compile(r"<tools>(\s*)([\[{].*?)(\s*)</tools>", re.DOTALL)
_TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
_TOOL_RESPONSE = re.compile(r"<tool_response>(.*?)</tool_response>", re.DOTALL)
_LEADING_SPACE = re.compile(r"^\s*")
_TRAILING_SPACE = re.compile(r"\s*$")


class ShareGPTFormat(RowObjectFormat):
    """ShareGPT / Hermes function-calling rows."""

    name = "sharegpt"

    def sample_from_row(self, row: dict[str, Any], document: str, number: int) -> Sample:
        return _RowReader(document, number).sample(row)

    def row_from_sample(self, sample: Sample) -> dict[str, Any]:
        return row_from_sample(sample)


def _loads(text: str) -> tuple[Any, str] | None:
    """A JSON value, else a Python literal, with which syntax it was; None if neither."""
    try:
        return orjson.loads(text), "json"
    except orjson.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(text), "python"
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


class _RowReader:
    """Walks the turns of one row, building the sample as it goes."""

    def __init__(self, document: str, row: int) -> None:
        self.document = document
        self.row = row
        self.layout: dict[str, Any] = {}
        self.task = ""
        self.format = ""
        self.tools: list[Tool] = []
        self.examples: list[Example] = []
        self.query: str | None = None
        self.steps: list[Step] = []
        self.turns: list[Turn] = []
        self.current: list[Step] | None = None
        self.open_step: Step | None = None
        self.humans = 0
        self.example_count = 0

    def fail(self, message: str) -> RowError:
        return RowError(self.document, self.row, message)

    def sample(self, row: dict[str, Any]) -> Sample:
        turns = row.get("conversations")
        if not isinstance(turns, list) or not turns:
            raise self.fail(
                f"field 'conversations' is {kind_of(turns)}; write the conversation as a "
                'non-empty list of {"from": ..., "value": ...} turns'
            )
        count = row.get(EXAMPLES_KEY, 0)
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise self.fail(
                f"field '{EXAMPLES_KEY}' is {short(count)}; write how many human turns are "
                "few-shot examples, as a whole number"
            )
        self.example_count = count
        for position, turn in enumerate(turns, 1):
            self.turn(turn, position)
        if self.query is None:
            raise self.fail(
                f"no human turn after the {self.example_count} few-shot example(s); "
                "add the user's request, or lower few_shot_examples"
            )
        # The style of a conversation is its first turn's.
        calls = [call for step in self.steps for call in step.tool_calls]
        extra: dict[str, Any] = {}
        if self.layout:
            extra["sharegpt_layout"] = self.layout
        fields = {key: value for key, value in row.items() if key not in CORE_KEYS}
        if fields:
            extra["sharegpt_fields"] = fields
        return Sample(
            id=row_id(row.get("id"), self.document, self.row),
            task_instruction=self.task,
            tools=self.tools,
            format_instruction=self.format,
            examples=self.examples,
            query=self.query,
            steps=self.steps,
            turns=self.turns,
            meta=SampleMeta(
                style=infer_style(calls, len(self.tools)),
                source=f"sharegpt:{self.document}",
                extra=extra,
            ),
        )

    def turn(self, turn: Any, position: int) -> None:
        where = f"turn {position}"
        if not isinstance(turn, dict):
            raise self.fail(f"{where} is {kind_of(turn)}; write each turn as an object")
        role = ROLES.get(turn.get("from"))  # type: ignore[arg-type]
        value = turn.get("value")
        if role is None:
            raise self.fail(
                f"{where} is from {short(turn.get('from'))}; use system, human, gpt or tool"
            )
        if not isinstance(value, str):
            raise self.fail(f"{where}: 'value' is {kind_of(value)}; write the text as a string")
        if role == "system":
            if position != 1:
                raise self.fail(f"{where} is a system turn; only the first turn may be one")
            self.system(value, where)
        elif role == "human":
            self.human(value, where)
        elif role == "gpt":
            self.gpt(value, where)
        else:
            self.tool(value, where)

    def system(self, text: str, where: str) -> None:
        block = _TOOLS_BLOCK.search(text)
        if block is None:
            self.task = text
            return
        before, after = text[: block.start()], text[block.end() :]
        outer_before = _TRAILING_SPACE.search(before).group()  # type: ignore[union-attr]
        outer_after = _LEADING_SPACE.match(after).group()  # type: ignore[union-attr]
        spacing = [outer_before, block.group(1), block.group(3), outer_after]
        if spacing != DEFAULT_SPACING:
            self.layout["tools_spacing"] = spacing
        self.task = before[: len(before) - len(outer_before)]
        self.format = after[len(outer_after) :]
        self.tools = self.parse_tools(block.group(2), where)

    def parse_tools(self, text: str, where: str) -> list[Tool]:
        parsed = _loads(text)
        if parsed is not None and isinstance(parsed[0], list):
            entries, syntax = parsed
        else:
            entries, syntax = self.tools_per_line(text, where), "json"
            self.layout["tools_per_line"] = True
        if syntax == "python":
            self.layout["tools_syntax"] = "python"
        tools = []
        wrapped = []
        for index, entry in enumerate(entries, 1):
            is_wrapped = isinstance(entry, dict) and isinstance(entry.get("function"), dict)
            spec = entry["function"] if is_wrapped else entry
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                raise self.fail(
                    f"{where}: tool {index} in <tools> is {short(entry)}; write "
                    '{"type": "function", "function": {"name": ..., "parameters": {...}}}'
                )
            wrapped.append(is_wrapped)
            parameters = spec.get("parameters")
            tools.append(
                Tool(
                    name=spec["name"],
                    description=spec.get("description") or "",
                    **({"parameters": parameters} if parameters is not None else {}),
                )
            )
        if wrapped and not any(wrapped):
            self.layout["tools_unwrapped"] = True
        return tools

    def tools_per_line(self, text: str, where: str) -> list[Any]:
        entries = []
        for line in text.splitlines():
            if not line.strip():
                continue
            parsed = _loads(line.strip())
            if parsed is None or parsed[1] != "json" or not isinstance(parsed[0], dict):
                raise self.fail(
                    f"{where}: the <tools> block is neither a JSON list, a Python list, nor one "
                    f"JSON object a line (at {short(line.strip())}); fix the tools list"
                )
            entries.append(parsed[0])
        return entries

    def human(self, text: str, where: str) -> None:
        self.open_step = None
        self.humans += 1
        if self.humans <= self.example_count:
            self.examples.append(Example(query=text))
            self.current = self.examples[-1].steps
            return
        if self.query is not None:
            self.turns.append(Turn(query=text))
            self.current = self.turns[-1].steps
            return
        self.query = text
        self.current = self.steps

    def gpt(self, text: str, where: str) -> None:
        self.open_step = None
        if self.current is None:
            raise self.fail(f"{where} is a gpt turn before any human turn; start with the request")
        blocks = list(_TOOL_CALL.finditer(text))
        if not blocks:
            self.current.append(Step(answer=text))
            return
        self.check_gaps(text, blocks, "</tool_call>", where)
        calls = [
            self.parse_call(block.group(1), index, where) for index, block in enumerate(blocks, 1)
        ]
        prefix = text[: blocks[0].start()]
        thought = prefix.removesuffix("\n") if prefix else None
        self.open_step = Step(thought=thought, tool_calls=calls)
        self.current.append(self.open_step)

    def check_gaps(self, text: str, blocks: list[re.Match[str]], tag: str, where: str) -> None:
        ends = [block.end() for block in blocks]
        starts = [block.start() for block in blocks[1:]] + [len(text)]
        for end, start in zip(ends, starts, strict=True):
            gap = text[end:start]
            if gap.strip():
                raise self.fail(
                    f"{where}: text {short(gap.strip())} follows {tag}; put any commentary "
                    "before the first block"
                )
        trailer = text[ends[-1] :]
        if trailer != DEFAULT_BLOCK_END and "block_end" not in self.layout:
            self.layout["block_end"] = trailer

    def parse_call(self, payload: str, index: int, where: str) -> ToolCall:
        parsed = _loads(payload.strip())
        if parsed is None:
            raise self.fail(
                f"{where}: tool call {index} is neither JSON nor a Python literal "
                f'({short(payload.strip())}); write {{"name": ..., "arguments": {{...}}}}'
            )
        call, syntax = parsed
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            raise self.fail(
                f"{where}: tool call {index} is {short(call)}, without a string 'name'; "
                'write {"name": ..., "arguments": {...}}'
            )
        if syntax == "python":
            self.layout["calls_syntax"] = "python"
        if list(call)[:2] == ["arguments", "name"]:
            self.layout["call_keys"] = "arguments_first"
        call_id = call.get("id")
        return ToolCall(
            name=call["name"],
            arguments=call.get("arguments") or {},
            id=call_id if isinstance(call_id, str) else None,
        )

    def tool(self, text: str, where: str) -> None:
        step = self.open_step
        if step is None:
            raise self.fail(
                f"{where} is a tool turn with no tool call before it; put it right after "
                "the gpt turn whose calls it answers"
            )
        blocks = list(_TOOL_RESPONSE.finditer(text))
        if blocks:
            self.check_gaps(text, blocks, "</tool_response>", where)
            bodies = [block.group(1).strip() for block in blocks]
        else:
            bodies = [text.strip()]
        for body in bodies:
            if len(step.results) == len(step.tool_calls):
                raise self.fail(
                    f"{where}: more tool responses than the {len(step.tool_calls)} call(s) "
                    "before them; give one response a call"
                )
            step.results.append(self.response_value(body))

    def response_value(self, body: str) -> Any:
        parsed = _loads(body)
        if parsed is not None and isinstance(parsed[0], dict) and "content" in parsed[0]:
            return parsed[0]["content"]
        return result_value(body)


def row_from_sample(sample: Sample) -> dict[str, Any]:
    """One ShareGPT row from a unified sample."""
    layout = sample.meta.extra.get("sharegpt_layout") or {}
    turns: list[dict[str, str]] = []
    system = _system_text(sample, layout)
    if system is not None:
        turns.append({"from": "system", "value": system})
    for example in sample.examples:
        turns.append({"from": "human", "value": example.query})
        turns.extend(_step_turns(example.steps, layout))
    for turn in sample.conversation():
        turns.append({"from": "human", "value": turn.query})
        turns.extend(_step_turns(turn.steps, layout))
    row: dict[str, Any] = {"id": sample.id, "conversations": turns}
    if sample.examples:
        row[EXAMPLES_KEY] = len(sample.examples)
    for key, value in (sample.meta.extra.get("sharegpt_fields") or {}).items():
        row.setdefault(key, value)
    return row


def _system_text(sample: Sample, layout: dict[str, Any]) -> str | None:
    if not sample.tools and not sample.format_instruction:
        return sample.task_instruction or None
    entries = []
    for tool in sample.tools:
        function: dict[str, Any] = {"name": tool.name}
        if tool.description:
            function["description"] = tool.description
        function["parameters"] = tool.parameters
        entries.append(
            function
            if layout.get("tools_unwrapped")
            else {"type": "function", "function": function}
        )
    if layout.get("tools_per_line"):
        tools_text = "\n".join(json_text(entry) for entry in entries)
    elif layout.get("tools_syntax") == "python":
        tools_text = repr(entries)
    else:
        tools_text = json_text(entries)
    before, inner_before, inner_after, after = layout.get("tools_spacing") or DEFAULT_SPACING
    return (
        f"{sample.task_instruction}{before}<tools>{inner_before}{tools_text}{inner_after}"
        f"</tools>{after}{sample.format_instruction}"
    )


def _step_turns(steps: list[Step], layout: dict[str, Any]) -> list[dict[str, str]]:
    end = layout.get("block_end", DEFAULT_BLOCK_END)
    turns = []
    for step in steps:
        if not step.tool_calls:
            text = step.answer if step.answer is not None else (step.thought or "")
            turns.append({"from": "gpt", "value": text})
            continue
        prefix = "" if step.thought is None else step.thought + "\n"
        blocks = "".join(
            f"<tool_call>\n{_call_text(call, layout)}\n</tool_call>{end}"
            for call in step.tool_calls
        )
        turns.append({"from": "gpt", "value": prefix + blocks})
        if step.results:
            responses = "".join(
                f"<tool_response>\n{json_text({'name': call.name, 'content': result})}\n"
                f"</tool_response>{end}"
                for call, result in zip(step.tool_calls, step.results, strict=False)
            )
            turns.append({"from": "tool", "value": responses})
        if step.answer is not None:
            turns.append({"from": "gpt", "value": step.answer})
    return turns


def _call_text(call: ToolCall, layout: dict[str, Any]) -> str:
    if layout.get("call_keys") == "arguments_first":
        payload: dict[str, Any] = {"arguments": call.arguments, "name": call.name}
    else:
        payload = {"name": call.name, "arguments": call.arguments}
    if call.id is not None:
        payload["id"] = call.id
    return repr(payload) if layout.get("calls_syntax") == "python" else json_text(payload)


FORMAT = ShareGPTFormat()
