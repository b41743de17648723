"""Berkeley Function Calling Leaderboard (BFCL) question files, with their possible answers.

Import only. A question row is `{"id", "question": [[{"role", "content"}, ...]], "function":
[...]}`; the optional possible-answer file has rows `{"id", "ground_truth": [{"func_name":
{"arg": [acceptable values...]}}]}` in the same order. Both are read row by row, side by side.

- The one turn's system messages are the task instruction (joined by a blank line), its one user
  message the query.
- Multi-turn entries (`question` holds several turns, as in the `multi_turn_*` categories) are
  conversations: the first turn is the query, each later turn a follow-up turn (`Sample.turns`);
  only the first may hold system messages, each holds at most one user message, and a turn with
  none (where `missed_function` hands the model a held-out function) has an empty query. Their
  ground truth is a list per turn of Python call texts (`cd(folder='document')`); each becomes
  a call of that turn's one step, positional arguments named by the tool's parameters in order.
  Those rows carry no `function` list: give the function documents of the classes they involve
  (`multi_turn_func_doc/*.json`, one function a line) as the `functions` option (without
  them such a row is a `RowError` naming its `involved_classes`); a row's own
  `function` list wins, and functions named in its `excluded_function` are left out. The row's
  other keys (`initial_config`, `involved_classes`, `path`, `excluded_function`,
  `missed_function`, ...) go to `meta.extra["bfcl_fields"]`.
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

import ast
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
from unified.model import QueryStyle, Sample, SampleMeta, Step, Tool, ToolCall, Turn

_CATEGORY = re.compile(
    r"^(?:live_|exec_)?(parallel_multiple|parallel|multiple|simple|irrelevance)_[0-9]"
)

CORE_KEYS = ("id", "question", "function")

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
        functions: RowSource | None = None,
        functions_document: str | None = None,
        on_error: OnError = "raise",
    ) -> SampleReader:
        """The samples of a BFCL question file joined with its possible answers, parsed lazily.
        `functions`: function documents offered to the rows that carry no `function` list
        (multi-turn rows)."""
        shared = (
            _function_doc(functions, functions_document or str(getattr(functions, "name", "")))
            if functions is not None
            else None
        )
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
            return sample_from_question(question, ground_truth, document, row, shared)

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


def _function_doc(stream: RowSource, document: str) -> list[Any]:
    """The function definitions of a function document (JSON Lines or one JSON array)."""
    functions = []
    for number, raw in iter_rows(stream, document):
        value = decode_row(raw, document, number)
        functions.extend(value if isinstance(value, list) else [value])
    return functions


def sample_from_question(
    question: dict[str, Any],
    ground_truth: list[Any] | None,
    document: str,
    row: int,
    functions: list[Any] | None = None,
) -> Sample:
    """A unified sample from a BFCL question and its ground truth (None when unknown);
    `functions` are offered when the question has no `function` list."""
    qid = question.get("id")
    if not isinstance(qid, str) or not qid:
        raise RowError(document, row, f"field 'id' is {short(qid)}; give each question a string id")
    turns = question.get("question")
    multi_turn = (isinstance(turns, list) and len(turns) > 1) or (
        bool(ground_truth) and all(isinstance(entry, list) for entry in ground_truth or [])
    )
    if multi_turn:
        return _conversation(question, ground_truth, document, row, functions)
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
    systems, users = _turn_messages(turns[0], 1, document, row, named="the question")
    if len(users) != 1:
        raise RowError(
            document,
            row,
            f"the question has {len(users)} user messages in one turn; write one user message "
            "a turn (each in its own list: [[...], [...]])",
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


def _conversation(
    question: dict[str, Any],
    ground_truth: list[Any] | None,
    document: str,
    row: int,
    functions: list[Any] | None,
) -> Sample:
    """A multi-turn BFCL entry as a conversation."""
    qid = question["id"]
    turns = question.get("question")
    if not isinstance(turns, list) or not turns:
        raise RowError(
            document,
            row,
            f"field 'question' is {kind_of(turns)}; write a list of turns, each a list of "
            '{"role": "user", "content": ...} messages',
        )
    given = question.get("function")
    if given is None and functions is None:
        raise RowError(
            document,
            row,
            "the row has no 'function' list, as BFCL's multi-turn rows have none; give the "
            "function documents of the classes it involves "
            f"({short(question.get('involved_classes'))}): the `functions` option "
            "(--functions FILE)",
        )
    tools = _tools(given if given is not None else functions or [], document, row)
    excluded = question.get("excluded_function")
    if given is None and isinstance(excluded, list):
        tools = [tool for tool in tools if tool.name not in excluded]
    if ground_truth is not None and len(ground_truth) != len(turns):
        raise RowError(
            document,
            row,
            f"the ground truth has {len(ground_truth)} turns and the question {len(turns)}; "
            "give one list of calls per turn",
        )
    by_name = {tool.name: tool for tool in tools}
    conversation: list[Turn] = []
    task = ""
    for number, messages in enumerate(turns, 1):
        systems, users = _turn_messages(messages, number, document, row)
        if systems and number > 1:
            raise RowError(
                document,
                row,
                f"turn {number} holds a system message; only the first turn may hold them",
            )
        if len(users) > 1:
            raise RowError(
                document,
                row,
                f"turn {number} has {len(users)} user messages; write one user message a turn",
            )
        if number == 1:
            task = "\n\n".join(systems)
        calls = (
            _turn_calls(ground_truth[number - 1], number, by_name, document, row)
            if ground_truth is not None
            else []
        )
        conversation.append(
            Turn(query=users[0] if users else "", steps=[Step(tool_calls=calls)] if calls else [])
        )
    first, *rest = conversation
    fields = {key: value for key, value in question.items() if key not in CORE_KEYS}
    first_calls = [call for step in first.steps for call in step.tool_calls]
    return Sample(
        id=qid,
        task_instruction=task,
        tools=tools,
        query=first.query,
        steps=first.steps,
        turns=rest,
        meta=SampleMeta(
            style=infer_style(first_calls, len(tools)) if ground_truth is not None else None,
            source=f"bfcl:{document}",
            extra={"bfcl_fields": fields} if fields else {},
        ),
    )


def _turn_messages(
    messages: Any, number: int, document: str, row: int, named: str | None = None
) -> tuple[list[str], list[str]]:
    """(system texts, user texts) of turn `number`'s messages; errors name the messages'
    place as `named` ("turn N" by default)."""
    if isinstance(messages, dict):
        messages = [messages]
    if not isinstance(messages, list):
        raise RowError(
            document, row, f"turn {number} is {kind_of(messages)}; write a list of messages"
        )
    systems: list[str] = []
    users: list[str] = []
    for position, message in enumerate(messages, 1):
        role = message.get("role") if isinstance(message, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if role not in ("system", "user") or not isinstance(content, str):
            raise RowError(
                document,
                row,
                f"message {position} of {named or f'turn {number}'} is {short(message)}; "
                'write system and user messages as {"role": ..., "content": "..."}',
            )
        (systems if role == "system" else users).append(content)
    return systems, users


def _turn_calls(
    texts: Any, number: int, tools: dict[str, Tool], document: str, row: int
) -> list[ToolCall]:
    if not isinstance(texts, list):
        raise RowError(
            document,
            row,
            f"ground truth of turn {number} is {kind_of(texts)}; write a list of call texts "
            "such as \"cd(folder='docs')\"",
        )
    return [_call_from_text(text, number, tools, document, row) for text in texts]


def _call_from_text(
    text: Any, number: int, tools: dict[str, Tool], document: str, row: int
) -> ToolCall:
    """A call from its Python text, `name(arg, key=value)`."""

    def fail(problem: str) -> RowError:
        return RowError(document, row, f"ground truth of turn {number}: {short(text)} {problem}")

    try:
        node = ast.parse(text, mode="eval").body if isinstance(text, str) else None
    except SyntaxError:
        node = None
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name | ast.Attribute):
        raise fail('is not a Python call; write calls as "name(argument=value)"')
    name = ast.unparse(node.func)
    tool = tools.get(name)
    parameters = list((tool.parameters.get("properties") or {}) if tool else {})
    if len(node.args) > len(parameters):
        raise fail(
            f"passes {len(node.args)} positional argument(s) and the tool {name!r} has "
            f"{len(parameters)} parameter(s) to name them"
            + ("" if tool else "; give the function documents (the `functions` option)")
        )
    arguments: dict[str, Any] = {}
    try:
        for parameter, value in zip(parameters, node.args, strict=False):
            arguments[parameter] = _json_value(ast.literal_eval(value))
        for keyword in node.keywords:
            if keyword.arg is None:
                raise fail("unpacks arguments (**); write each argument by name")
            arguments[keyword.arg] = _json_value(ast.literal_eval(keyword.value))
    except ValueError:
        raise fail("has an argument that is not a literal value") from None
    return ToolCall(name=name, arguments=arguments)


def _json_value(value: Any) -> Any:
    """A Python literal as JSON data: tuples and sets become lists."""
    if isinstance(value, tuple | list | set | frozenset):
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _json_value(item) for key, item in value.items()}
    return value


FORMAT = BfclFormat()
