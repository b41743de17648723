"""Score a file of model predictions on BFCL-style questions with `trainer.bfcl_rules`; no model.

Each input line is a JSON object:
`{"id", "category" (optional), "question": [chat messages], "tools": [OpenAI tools or function
docs], "reference": [{function_name: {argument: [acceptable values]}}], "prediction": [{"name",
"arguments"}] or the model's text}`. A text prediction is read as JSON calls
(`trainer.evaluate.parse_calls`) or else as Python calls (`trainer.python_calls`); text with
neither is no call, unless it looks like a call that could not be read (`decoder_failed`).
Without a category, it is taken from a BFCL id (`live_parallel_3-1-0`) or else from the
reference: one call is `simple` (one tool) or `multiple`, more are `parallel`.

Bad input raises `RowError` naming the row and what to change.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from trainer.bfcl_rules import (
    BfclInputError,
    Call,
    Verdict,
    category_of,
    check,
    check_question,
)
from trainer.evaluate import parse_calls
from trainer.python_calls import read_python_calls
from unified.errors import RowError

DECODER_FAILED = "ast_decoder:decoder_failed"


@dataclass(frozen=True)
class ScoredRow:
    """One prediction's verdict."""

    id: str
    category: str
    verdict: Verdict

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "valid": self.verdict.valid, "reason": self.verdict.reason}


@dataclass
class CategoryTally:
    """Rows and valid rows of one category, and how often each reason came up."""

    rows: int = 0
    valid: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def accuracy(self) -> float:
        return self.valid / self.rows if self.rows else 0.0


def tally(rows: list[ScoredRow]) -> dict[str, CategoryTally]:
    """Tallies per category (in first-seen order) and under "overall"."""
    tallies: dict[str, CategoryTally] = {}
    for row in rows:
        for key in (row.category, "overall"):
            counts = tallies.setdefault(key, CategoryTally())
            counts.rows += 1
            counts.valid += row.verdict.valid
            counts.reasons[row.verdict.reason] += 1
    if "overall" in tallies:
        tallies["overall"] = tallies.pop("overall")
    return tallies


def score_file(path: Path) -> Iterator[ScoredRow]:
    """The verdict of every line of `path`, in order."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield score_line(line, str(path), number)


def score_line(line: bytes | str, document: str, number: int) -> ScoredRow:
    """The verdict of one input line (`document`, `number`: where it is, for errors)."""
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise RowError(
            document, number, f"not JSON ({exc}); write one JSON object per line"
        ) from None
    if not isinstance(row, dict):
        raise RowError(document, number, "not a JSON object; write one object per line")
    return score_row(row, document, number)


def score_row(row: Mapping[str, Any], document: str, number: int) -> ScoredRow:
    """The verdict of one parsed input row."""

    def bad(message: str) -> RowError:
        return RowError(document, number, message)

    row_id = row.get("id")
    if not isinstance(row_id, str | int) or isinstance(row_id, bool):
        raise bad('"id" is missing or not a string; give each row an id')
    tools = row.get("tools")
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise bad(f'row {row_id!r}: "tools" must be a list of OpenAI tools')
    reference = row.get("reference")
    if not isinstance(reference, list) or not reference:
        raise bad(
            f'row {row_id!r}: "reference" must be a non-empty list of '
            "{function_name: {argument: [acceptable values]}}"
        )
    if "prediction" not in row:
        raise bad(f'row {row_id!r}: "prediction" is missing; give the calls or the model text')
    functions = [_function_doc(tool) for tool in tools]
    category = row.get("category") or category_of(str(row_id), reference, functions)
    if not isinstance(category, str):
        raise bad(f'row {row_id!r}: "category" must be a string such as "simple"')
    calls = _calls(row["prediction"])
    try:
        check_question(category, functions, reference)
        verdict = (
            check(category, functions, calls, reference)
            if isinstance(calls, list)
            else Verdict(False, DECODER_FAILED, calls)
        )
    except BfclInputError as exc:
        raise bad(f"row {row_id!r}: {exc}") from None
    return ScoredRow(str(row_id), category, verdict)


def _function_doc(tool: Mapping[str, Any]) -> Mapping[str, Any]:
    """The function doc of an OpenAI tool (`{"type": "function", "function": {...}}`), or the
    doc itself."""
    function = tool.get("function")
    return function if isinstance(function, Mapping) else tool


def _calls(prediction: Any) -> list[Call] | str:
    """The predicted calls, or why none could be read."""
    if isinstance(prediction, str):
        parsed = parse_calls(prediction)
        if parsed.calls:
            return [_call(c.name, c.arguments) for c in parsed.calls]
        python_calls = read_python_calls(prediction)
        if python_calls is not None:
            return list(python_calls)
        return parsed.error if parsed.error is not None else []
    if not isinstance(prediction, list):
        return 'prediction is neither a list of {"name", "arguments"} nor text'
    calls: list[Call] = []
    for item in prediction:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            return f"predicted call {item!r} has no name"
        calls.append(_call(item["name"], item.get("arguments", {})))
    return calls


def _call(name: str, arguments: Any) -> Call:
    if isinstance(arguments, str):  # OpenAI writes arguments as JSON text
        # text that is not JSON stays text: the rules reject it as arguments_not_object
        with suppress(orjson.JSONDecodeError):
            arguments = orjson.loads(arguments)
    return name, arguments


def write_verdicts(rows: list[ScoredRow], out: Path) -> None:
    """One `{"id", "valid", "reason"}` line per row, through `OUT.partial`."""
    partial = out.with_name(out.name + ".partial")
    with partial.open("wb") as handle:
        for row in rows:
            handle.write(orjson.dumps(row.to_json()) + b"\n")
    partial.replace(out)
