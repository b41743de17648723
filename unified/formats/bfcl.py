"""Berkeley Function Calling Leaderboard (BFCL) question files, with their possible answers.

Import only. A question row is `{"id", "question": [[{"role", "content"}, ...]], "function":
[...]}`; the optional possible-answer file has rows `{"id", "ground_truth": [{"func_name":
{"arg": [acceptable values...]}}]}` in the same order. Both are read row by row, side by side.

- The one turn's system messages are the task instruction (joined by a blank line), its one user
  message the query. Multi-turn entries (more than one turn) are rejected with a `RowError`.
- BFCL parameter types (`dict`, `float`, `tuple`, `any`, ...) become JSON Schema through the BFCL
  catalog loader (`unified.catalogs.functions.bfcl_loader`).
- Each ground-truth entry becomes a call in one step; an argument takes its first acceptable
  value, and is left out when that value is "" (BFCL's mark for "may be omitted"). Values inside
  nested objects are resolved the same way. Every acceptable value is kept in the call's
  `acceptable` (`unified.acceptable.from_bfcl`; `bfcl_possible_answer` gives BFCL's shape back).
- Answers are paired with questions row by row: an answer whose id differs from its question's
  is a `RowError`; questions after the end of the answer file (or with no answer file) have no
  steps.
- The query style comes from the id's category (`simple_3`, `live_parallel_multiple_0-1-2`);
  for other categories it is inferred from the answer's calls, and left unset without one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import chain, repeat
from typing import Any

from unified.acceptable import OMITTED, from_bfcl, is_bfcl_options
from unified.catalogs.base import CatalogDocument
from unified.catalogs.functions import bfcl_loader
from unified.errors import CatalogError, RowError
from unified.formats.base import (
    OnError,
    RawRow,
    RowSource,
    SampleReader,
    decode_row,
    expect_object,
    infer_style,
    iter_rows,
    short,
)
from unified.json_kinds import kind_of
from unified.model import QueryStyle, Sample, SampleMeta, Step, Tool, ToolCall

_CATEGORY = re.compile(
    r"^(?:live_|exec_)?(parallel_multiple|parallel|multiple|simple|irrelevance)_[0-9]"
)

Pair = tuple[RawRow, tuple[int, RawRow] | None]


class BfclFormat:
    """BFCL question files (import only)."""

    name = "bfcl"

    def read(
        self,
        stream: RowSource,
        document: str,
        *,
        answers: RowSource | None = None,
        answers_document: str | None = None,
        on_error: OnError = "raise",
    ) -> SampleReader:
        """The samples of a BFCL question file joined with its possible answers, parsed lazily."""
        answers_name = answers_document or str(getattr(answers, "name", "possible answers"))
        answer_rows: Iterator[tuple[int, RawRow] | None] = (
            chain(iter_rows(answers, answers_name), repeat(None))
            if answers is not None
            else repeat(None)
        )
        pairs = ((row, (raw, next(answer_rows))) for row, raw in iter_rows(stream, document))

        def parse(pair: Pair, row: int) -> Sample:
            raw, answer = pair
            question = expect_object(decode_row(raw, document, row), document, row)
            ground_truth = None
            if answer is not None:
                answer_row, answer_raw = answer
                ground_truth = _ground_truth(
                    question,
                    decode_row(answer_raw, answers_name, answer_row),
                    answers_name,
                    answer_row,
                )
            return sample_from_question(question, ground_truth, document, row)

        return SampleReader(pairs, parse, document=document, on_error=on_error)


def _ground_truth(question: dict[str, Any], answer: Any, document: str, row: int) -> list[Any]:
    if not isinstance(answer, dict):
        raise RowError(
            document,
            row,
            f"the row is {kind_of(answer)}, not a JSON object; "
            'write {"id": ..., "ground_truth": [...]}',
        )
    if answer.get("id") != question.get("id"):
        raise RowError(
            document,
            row,
            f"answer id {short(answer.get('id'))} does not match question id "
            f"{short(question.get('id'))}; keep the answer file in the question file's order",
        )
    truth = answer.get("ground_truth")
    if not isinstance(truth, list):
        raise RowError(
            document,
            row,
            f"field 'ground_truth' is {kind_of(truth)}; write a list of "
            '{"function_name": {"argument": [acceptable values]}}',
        )
    return truth


def sample_from_question(
    question: dict[str, Any], ground_truth: list[Any] | None, document: str, row: int
) -> Sample:
    """A unified sample from a BFCL question and its ground truth (None when unknown)."""
    qid = question.get("id")
    if not isinstance(qid, str) or not qid:
        raise RowError(document, row, f"field 'id' is {short(qid)}; give each question a string id")
    task, query = _messages(question.get("question"), document, row)
    tools = _tools(question.get("function"), document, row)
    calls = _calls(ground_truth, document, row) if ground_truth is not None else []
    category = _CATEGORY.match(qid)
    style: QueryStyle | None
    if category:
        style = QueryStyle(category.group(1))
    elif ground_truth is not None:
        style = infer_style(calls, len(tools))
    else:
        style = None
    return Sample(
        id=qid,
        task_instruction=task,
        tools=tools,
        query=query,
        steps=[Step(tool_calls=calls)] if calls else [],
        meta=SampleMeta(
            style=style,
            source=f"bfcl:{document}",
        ),
    )


def _messages(turns: Any, document: str, row: int) -> tuple[str, str]:
    if isinstance(turns, str):
        return "", turns
    if not isinstance(turns, list) or not turns:
        raise RowError(
            document,
            row,
            f'field \'question\' is {kind_of(turns)}; write [[{{"role": "user", "content": ...}}]]',
        )
    if len(turns) > 1:
        raise RowError(
            document,
            row,
            f"field 'question' has {len(turns)} turns; multi-turn BFCL entries are not "
            "supported, import the single-turn categories",
        )
    messages = turns[0]
    if isinstance(messages, dict):
        messages = [messages]
    if not isinstance(messages, list):
        raise RowError(document, row, f"turn 1 is {kind_of(messages)}; write a list of messages")
    systems: list[str] = []
    users: list[str] = []
    for position, message in enumerate(messages, 1):
        role = message.get("role") if isinstance(message, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if role not in ("system", "user") or not isinstance(content, str):
            raise RowError(
                document,
                row,
                f"message {position} of the question is {short(message)}; write system and "
                'user messages as {"role": ..., "content": "..."}',
            )
        (systems if role == "system" else users).append(content)
    if len(users) != 1:
        raise RowError(
            document,
            row,
            f"the question has {len(users)} user messages; a sample holds exactly one query",
        )
    return "\n\n".join(systems), users[0]


def _tools(functions: Any, document: str, row: int) -> list[Tool]:
    """The question's functions as tools, BFCL types mapped by the BFCL catalog loader."""
    if isinstance(functions, dict):
        functions = [functions]
    if not isinstance(functions, list):
        raise RowError(
            document,
            row,
            f"field 'function' is {kind_of(functions)}; write a list of function definitions",
        )
    if not functions:
        return []
    try:
        tools = bfcl_loader.load(CatalogDocument(document, "", functions, ""))
    except CatalogError as exc:
        raise RowError(document, row, f"field 'function', at {exc.place}: {exc.message}") from None
    return [tool.model_copy(update={"source": None}) for tool in tools]


def _calls(ground_truth: list[Any], document: str, row: int) -> list[ToolCall]:
    calls = []
    for index, entry in enumerate(ground_truth, 1):
        if not isinstance(entry, dict) or len(entry) != 1:
            raise RowError(
                document,
                row,
                f"ground truth {index} is {short(entry)}; write one "
                '{"function_name": {"argument": [acceptable values]}} per call',
            )
        ((name, arguments),) = entry.items()
        if not isinstance(arguments, dict):
            raise RowError(
                document,
                row,
                f"ground truth {index} ('{name}'): the arguments are {kind_of(arguments)}; "
                "map each argument to a list of acceptable values",
            )
        chosen = _chosen(arguments, f"'{name}'", document, row)
        calls.append(ToolCall(name=name, arguments=chosen, acceptable=from_bfcl(arguments)))
    return calls


def _chosen(options: dict[str, Any], place: str, document: str, row: int) -> dict[str, Any]:
    chosen = {}
    for argument, acceptable in options.items():
        if not isinstance(acceptable, list):
            raise RowError(
                document,
                row,
                f"ground truth {place}, argument '{argument}': {short(acceptable)} is not a list "
                "of acceptable values; wrap it in a list",
            )
        if acceptable and acceptable[0] != OMITTED:
            chosen[argument] = _resolved(acceptable[0])
    return chosen


def _resolved(value: Any) -> Any:
    """A ground-truth value whose nested objects of acceptable lists are resolved to the first."""
    if is_bfcl_options(value):
        return {
            key: _resolved(acceptable[0])
            for key, acceptable in value.items()
            if acceptable and acceptable[0] != OMITTED
        }
    if isinstance(value, list) and value and all(is_bfcl_options(item) for item in value):
        return [_resolved(item) for item in value]
    return value


FORMAT = BfclFormat()
