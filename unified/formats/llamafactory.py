"""LLaMA-Factory's sharegpt layout with tools (write only), as its `SharegptDatasetConverter`
reads it (LLaMA-Factory `data/README.md`, "Sharegpt Format"; `src/llamafactory/data/converter.py`).

A row is `{"id": ..., "conversations": [{"from": ..., "value": ...}], "system": "...",
"tools": "<JSON text>"}`:

- `conversations` alternates as the converter demands: `human` or `observation` at odd
  positions (1st, 3rd, ...), `function_call` or `gpt` at even ones, and has an even number of
  turns, so the converter keeps every row. No system turn: the task instruction is the `system`
  column.
- `function_call` holds the calls of one step as JSON: `{"name": ..., "arguments": {...}}` for
  one call, a JSON list of them for parallel calls (LLaMA-Factory's `FunctionFormatter` reads
  both and writes them in the template's own tool-call syntax).
- `observation` holds the step's results (a string verbatim, anything else as JSON); the results
  of parallel calls are joined the way LLaMA-Factory's own OpenAI converter joins parallel tool
  messages (`"\\n</tool_response>\\n<tool_response>\\n"`, which the Qwen-style templates wrap in
  `<tool_response>` tags, one block a result).
- `gpt` holds an answer. A step list whose calls have results but no answer after them ends
  with a written `gpt` turn, a plain deterministic summary of the last step's results
  (`search_flights returned: [...]`, one line a call), since LLaMA-Factory learns from every
  assistant turn and a row must not end on an observation. A step list with no turn at all
  (no calls, no answer) gets the `gpt` turn `NO_CALL_ANSWER`.
- Calls without results end the conversation at their `function_call` turn (an even count,
  kept by the converter: the model learns to make the calls); later steps, which would need
  those results, are left out.
- Few-shot examples are earlier human/assistant turns, written the same way (LLaMA-Factory
  trains on their assistant turns too), and so is each follow-up turn of a conversation: a
  `human` turn, then the turns of its steps.
- `tools` is the JSON text of `[{"name", "description", "parameters"}]` (the parameters a JSON
  Schema object), `system` the task instruction, `id` the sample id (the converter drops
  columns it does not know).

`dataset_info_entry(file_name)` is the entry LLaMA-Factory's `dataset_info.json` needs for such a
file, and `write_dataset_info(path)` merges it into the `dataset_info.json` beside `path`.

What the format cannot hold, and so is lost on export: the format instruction (the template's
tool prompt says how to call), thoughts (a `function_call` turn is JSON only), an answer that is
followed by more calls in the same conversation, steps after calls without results, call ids,
tool response schemas and sources, and the metadata. The format is written only: LLaMA-Factory
itself reads it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from unified.errors import ActionForgeError
from unified.formats.base import RowSource, SampleReader, json_text, result_text, write_rows
from unified.model import Sample, Step, ToolCall

NAME = "llamafactory"
DATASET_INFO = "dataset_info.json"
NO_CALL_ANSWER = "None of the available tools can do this."
RESULTS_JOIN = "\n</tool_response>\n<tool_response>\n"
TAGS = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
}
COLUMNS = {"messages": "conversations", "system": "system", "tools": "tools"}
_ASSISTANT = ("gpt", "function_call")


class LlamaFactoryFormat:
    """LLaMA-Factory sharegpt rows with tools; written only."""

    name = NAME

    def read(self, stream: RowSource, document: str, **options: Any) -> SampleReader:
        raise ActionForgeError(
            f"{document}: format 'llamafactory' can be written but not read; LLaMA-Factory "
            "reads it. Convert from the unified, sharegpt or openai export of the same samples"
        )

    def write(self, samples: Iterable[Sample], stream: IO[Any]) -> int:
        """Write each sample as one row; return how many were written."""
        return write_rows(samples, row_from_sample, stream)


def row_from_sample(sample: Sample) -> dict[str, Any]:
    """One LLaMA-Factory sharegpt row from a unified sample."""
    turns: list[dict[str, str]] = []
    for example in sample.examples:
        turns.append({"from": "human", "value": example.query})
        turns.extend(_assistant_turns(example.steps))
    for turn in sample.conversation():
        turns.append({"from": "human", "value": turn.query})
        turns.extend(_assistant_turns(turn.steps))
    tools = [
        {"name": tool.name, "description": tool.description, "parameters": tool.parameters}
        for tool in sample.tools
    ]
    return {
        "id": sample.id,
        "conversations": turns,
        "system": sample.task_instruction,
        "tools": json_text(tools),
    }


def _assistant_turns(steps: list[Step]) -> list[dict[str, str]]:
    """The turns after one human turn: they start with an assistant turn and end with a `gpt`
    turn, or with a `function_call` turn whose calls have no results."""
    turns: list[dict[str, str]] = []
    for step in steps:
        if step.tool_calls:
            if turns and turns[-1]["from"] == "gpt":
                turns.pop()  # text between calls has no place: a function_call turn is JSON
            turns.append({"from": "function_call", "value": _calls_text(step.tool_calls)})
            if not step.results:
                return turns
            texts = [result_text(result) for result in step.results]
            turns.append({"from": "observation", "value": RESULTS_JOIN.join(texts)})
        if step.answer is not None or not step.tool_calls:
            text = step.answer if step.answer is not None else (step.thought or "")
            if turns and turns[-1]["from"] == "gpt":
                turns[-1]["value"] += "\n\n" + text
            else:
                turns.append({"from": "gpt", "value": text})
    if not turns:
        turns.append({"from": "gpt", "value": NO_CALL_ANSWER})
    elif turns[-1]["from"] == "observation":
        last = next(step for step in reversed(steps) if step.tool_calls)
        turns.append({"from": "gpt", "value": results_summary(last)})
    return turns


def _calls_text(calls: list[ToolCall]) -> str:
    payload = [{"name": call.name, "arguments": call.arguments} for call in calls]
    return json_text(payload[0] if len(payload) == 1 else payload)


def results_summary(step: Step) -> str:
    """The `gpt` turn written after a step's results when no answer follows them: one line a
    call with a result, `{name} returned: {result}`."""
    return "\n".join(
        f"{call.name} returned: {result_text(result)}"
        for call, result in zip(step.tool_calls, step.results, strict=False)
    )


def dataset_info_entry(file_name: str) -> dict[str, Any]:
    """The `dataset_info.json` entry of a file of these rows, named by its path relative to
    LLaMA-Factory's `dataset_dir`."""
    return {"file_name": file_name, "formatting": "sharegpt", "columns": COLUMNS, "tags": TAGS}


def write_dataset_info(data_file: str | os.PathLike[str], name: str | None = None) -> Path:
    """Add the entry of `data_file` under `name` (default: the file name without its suffix) to
    the `dataset_info.json` beside it, keeping every other entry; return that file's path.

    The file is written through `dataset_info.json.partial`, renamed when complete."""
    data_path = Path(data_file)
    info_path = data_path.with_name(DATASET_INFO)
    entries: dict[str, Any] = {}
    if info_path.exists():
        try:
            entries = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ActionForgeError(
                f"{info_path}: cannot read it as JSON ({exc}); fix or move it, and export again "
                "to add this dataset's entry"
            ) from None
        if not isinstance(entries, dict):
            raise ActionForgeError(
                f"{info_path}: holds a JSON {type(entries).__name__}, not an object of dataset "
                "entries; fix or move it, and export again"
            )
    entries[name or data_path.stem] = dataset_info_entry(data_path.name)
    partial = info_path.with_name(DATASET_INFO + ".partial")
    partial.write_text(json.dumps(entries, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(partial, info_path)
    return info_path


FORMAT = LlamaFactoryFormat()
