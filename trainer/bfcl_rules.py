"""BFCL's single-turn AST rules: is a model's list of calls right for a question, given BFCL's
possible answers? Pure functions, no model, no I/O.

A possible answer keeps BFCL's shape: `[{function_name: {argument: [acceptable values]}}]`,
one entry per expected call. The rules, as BFCL's AST checker applies them to Python categories:

- strings compare after normalisation (lower case; the characters ` ,./-_*^` removed; `'` read as
  `"`), at top level, as list items and as dict values; deeper values compare with `==`;
- every value is type-checked against the tool's declared type (exact Python types: a bool is
  no int; a schema without a type is BFCL's `any`, which BFCL reads as a string); an int is
  accepted for a float at top level only, a float never for an integer; list items are
  checked against `items.type`; when the possible answer holds another type than the declared
  one (a "variable", such as a string for an integer), a value of that type is accepted and
  compared exactly;
- the schema's required arguments must be given; an argument the possible answer lacks is
  unexpected; an argument left out must have "" among its acceptable values (also: "" accepts
  an empty list for a list argument);
- a dict compares key by key against each acceptable dict; a list of dicts item by item;
- simple and multiple: one call; parallel (and parallel_multiple): as many calls as expected,
  matched order-free the way BFCL does it: each expected call, in order, takes the first
  unmatched call that fits it (first fit, not a maximum matching).

Reasons are BFCL's error types (`type_error:simple`, `value_error:string`,
`simple_function_checker:missing_required`, ...) or `valid`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

VALID = "valid"
OPTIONAL_MARK = ""
CATEGORIES = ("simple", "multiple", "parallel", "parallel_multiple")
LIVE_PREFIX = "live_"

_TYPES: dict[str, type] = {
    "string": str,
    "integer": int,
    "float": float,
    "number": float,  # JSON Schema's name for BFCL's float
    "boolean": bool,
    "array": list,
    "tuple": list,
    "dict": dict,
    "object": dict,  # JSON Schema's name for BFCL's dict
    "any": str,  # BFCL reads `any` as a string
}
_IGNORED_IN_STRINGS = re.compile(r"[ ,./\-_*^]")

PossibleAnswer = Sequence[Mapping[str, Mapping[str, Sequence[Any]]]]
Call = tuple[str, Any]
"""A model's call: the function name and its arguments (a dict, or anything else when the model
wrote arguments that are not an object)."""


class BfclInputError(ValueError):
    """The question itself cannot be scored: unknown category, a tool or type the rules do not
    know, a possible answer of the wrong shape. Never raised for a wrong model answer."""


@dataclass(frozen=True)
class Verdict:
    """Whether the calls are right; `reason` is `valid` or the first rule they break."""

    valid: bool
    reason: str
    detail: str = ""


_OK = Verdict(True, VALID)
_BFCL_ID = re.compile(
    r"^((?:live_)?(?:parallel_multiple|parallel|multiple|simple))_(?:python_)?[0-9]"
)


def category_of(
    row_id: str, reference: Sequence[Any], functions: Sequence[Mapping[str, Any]]
) -> str:
    """A question's category: from its BFCL id when it has one, else from the reference (one
    call: simple with one tool, multiple with more; more calls: parallel)."""
    match = _BFCL_ID.match(row_id)
    if match:
        return match[1]
    if len(reference) > 1:
        return "parallel"
    return "simple" if len(functions) == 1 else "multiple"


def checker_kind(category: str) -> str:
    """The rule set of a category: simple, multiple or parallel (parallel_multiple is checked
    as parallel). A `live_` prefix is allowed."""
    plain = category.removeprefix(LIVE_PREFIX)
    if plain not in CATEGORIES:
        raise BfclInputError(
            f"unknown category {category!r}; use one of {', '.join(CATEGORIES)}"
            f" (optionally with the {LIVE_PREFIX} prefix)"
        )
    return "parallel" if plain.startswith("parallel") else plain


def check(
    category: str,
    tools: Sequence[Mapping[str, Any]],
    calls: Sequence[Call],
    possible_answer: PossibleAnswer,
) -> Verdict:
    """The verdict on `calls` for a question of `category` offering `tools` (function docs:
    `{"name", "parameters": {"properties", "required"}}`, BFCL or JSON Schema types)."""
    kind, expected, by_name = _question(category, tools, possible_answer)
    if kind == "parallel":
        return _check_parallel(by_name, calls, expected)
    if len(calls) != (1 if kind == "simple" else len(expected)):
        return Verdict(False, f"{kind}_function_checker:wrong_count", "wrong number of calls")
    name, acceptable = expected[0]
    return check_call(_tool(by_name, name), calls[0], acceptable)


def check_question(
    category: str, tools: Sequence[Mapping[str, Any]], possible_answer: PossibleAnswer
) -> None:
    """Raise `BfclInputError` unless the question can be scored (whatever the answer)."""
    _question(category, tools, possible_answer)


def _question(
    category: str, tools: Sequence[Mapping[str, Any]], possible_answer: PossibleAnswer
) -> tuple[str, list[tuple[str, Mapping[str, Sequence[Any]]]], dict[str, Mapping[str, Any]]]:
    """(checker kind, expected calls, tools by name) of a question that can be scored."""
    kind = checker_kind(category)
    expected = [_expected_call(entry) for entry in possible_answer]
    if not expected:
        raise BfclInputError("the possible answer lists no call")
    by_name = {str(tool.get("name")): tool for tool in tools}
    for name, _ in expected:
        _check_tool(_tool(by_name, name))
    if kind == "simple" and len(expected) != 1:
        raise BfclInputError("a simple question's possible answer must list exactly one call")
    return kind, expected, by_name


def _check_parallel(
    by_name: Mapping[str, Mapping[str, Any]],
    calls: Sequence[Call],
    expected: Sequence[tuple[str, Mapping[str, Sequence[Any]]]],
) -> Verdict:
    if len(calls) != len(expected):
        return Verdict(
            False, "parallel_function_checker_no_order:wrong_count", "wrong number of calls"
        )
    unmatched = list(range(len(calls)))
    for position, (name, acceptable) in enumerate(expected):
        tool = _tool(by_name, name)
        fit = next((i for i in unmatched if check_call(tool, calls[i], acceptable).valid), None)
        if fit is None:
            return Verdict(
                False,
                "parallel_function_checker_no_order:cannot_find_match",
                f"no call fits expected call {position} ({name})",
            )
        unmatched.remove(fit)
    return _OK


def _expected_call(entry: Any) -> tuple[str, Mapping[str, Sequence[Any]]]:
    if not isinstance(entry, Mapping) or len(entry) != 1:
        raise BfclInputError(
            "each possible-answer entry must be {function_name: {argument: [...]}}"
        )
    ((name, acceptable),) = entry.items()
    if not isinstance(acceptable, Mapping) or not all(
        isinstance(values, list) for values in acceptable.values()
    ):
        raise BfclInputError(
            f"possible answer of {name!r}: each argument must map to a list of acceptable values"
        )
    return str(name), acceptable


def _tool(by_name: Mapping[str, Mapping[str, Any]], name: str) -> Mapping[str, Any]:
    tool = by_name.get(name)
    if tool is None:
        raise BfclInputError(f"the possible answer calls {name!r}, which no offered tool is named")
    return tool


# --- one call --------------------------------------------------------------------------------


def check_call(
    tool: Mapping[str, Any], call: Call, acceptable: Mapping[str, Sequence[Any]]
) -> Verdict:
    """The verdict on one call against one expected call of `tool`."""
    name, arguments = call
    if name != tool.get("name"):
        return Verdict(
            False, "simple_function_checker:wrong_func_name", f"expected {tool.get('name')!r}"
        )
    if not isinstance(arguments, Mapping):
        return Verdict(False, "simple_function_checker:arguments_not_object", repr(arguments))
    parameters = tool.get("parameters") or {}
    properties: Mapping[str, Any] = parameters.get("properties") or {}
    for required in parameters.get("required") or []:
        if required not in arguments:
            return Verdict(False, "simple_function_checker:missing_required", required)
    for argument, value in arguments.items():
        if argument not in properties or argument not in acceptable:
            return Verdict(False, "simple_function_checker:unexpected_param", argument)
        verdict = _check_argument(tool, argument, properties[argument], value, acceptable[argument])
        if not verdict.valid:
            return verdict
    for argument, values in acceptable.items():
        if argument not in arguments and OPTIONAL_MARK not in values:
            return Verdict(False, "simple_function_checker:missing_optional", argument)
    return _OK


def _check_argument(
    tool: Mapping[str, Any],
    argument: str,
    schema: Mapping[str, Any],
    value: Any,
    acceptable: Sequence[Any],
) -> Verdict:
    expected = _declared_type(tool, argument, schema)
    item_type = _item_type(tool, argument, schema) if expected is list else None
    if expected is float and type(value) is int:
        value = float(value)  # Python would widen it; only at top level
    type_error, is_variable = _type_check(value, acceptable, expected, item_type)
    if type_error is not None:
        return Verdict(False, type_error, f"{argument}: {type(value).__name__} {value!r}")
    if not is_variable:
        if expected is dict:
            return _check_dict(argument, value, acceptable)
        if expected is list and item_type is dict:
            return _check_list_of_dicts(argument, value, acceptable)
        if expected is str:
            return _check_string(argument, value, acceptable)
        if expected is list:
            return _check_list(argument, value, acceptable)
    if value not in acceptable:
        return Verdict(False, "value_error:others", f"{argument}: {value!r}")
    return _OK


def _check_tool(tool: Mapping[str, Any]) -> None:
    """The tool's schema has the shape the rules read, and only types they know."""
    parameters = tool.get("parameters") or {}
    properties = parameters.get("properties") or {} if isinstance(parameters, Mapping) else None
    required = parameters.get("required") or [] if isinstance(parameters, Mapping) else None
    if not isinstance(properties, Mapping) or not isinstance(required, list):
        raise BfclInputError(
            f"tool {tool.get('name')!r}: parameters must be an object schema with a"
            " `properties` object and a `required` list"
        )
    for argument, schema in properties.items():
        if not isinstance(schema, Mapping):
            raise BfclInputError(
                f"tool {tool.get('name')!r}, argument {argument!r}: the schema must be an object"
            )
        if _declared_type(tool, argument, schema) is list:
            _item_type(tool, argument, schema)


def _item_type(tool: Mapping[str, Any], argument: str, schema: Mapping[str, Any]) -> type | None:
    """The declared type of a list's items; None (no check) when the schema gives none."""
    items = schema.get("items")
    if not isinstance(items, Mapping) or "type" not in items:
        return None
    return _declared_type(tool, f"{argument}[]", items)


def _declared_type(tool: Mapping[str, Any], argument: str, schema: Mapping[str, Any]) -> type:
    declared = schema.get("type", "any")  # the catalog loader writes BFCL's `any` without a type
    if not isinstance(declared, str) or declared not in _TYPES:
        raise BfclInputError(
            f"tool {tool.get('name')!r}, argument {argument!r}: type {declared!r} is not one of"
            f" {', '.join(_TYPES)}"
        )
    return _TYPES[declared]


# --- types -----------------------------------------------------------------------------------


def _answer_type(acceptable: Sequence[Any]) -> type | None:
    """The type of the first acceptable value that is not the optional mark."""
    return next((type(v) for v in acceptable if v != OPTIONAL_MARK), None)


def _type_check(
    value: Any, acceptable: Sequence[Any], expected: type, item_type: type | None
) -> tuple[str | None, bool]:
    """(error type or None, whether the possible answer is a "variable": written in another type
    than the declared one, and so compared exactly)."""
    answer_type = _answer_type(acceptable)
    is_variable = answer_type is not None and answer_type is not expected
    error = "type_error:simple"
    items: Any = value  # a list whenever item_type is set
    if type(value) is expected:
        if item_type is None or _items_fit(items, acceptable, item_type):
            return None, is_variable
        error = "type_error:nested"
    if answer_type is not None and type(value) is answer_type:
        return (error if error == "type_error:nested" else None), True
    return "type_error:simple", is_variable


def _items_fit(value: list[Any], acceptable: Sequence[Any], item_type: type) -> bool:
    """Every item has the item type (or that of the acceptable list's items), for some
    acceptable value. An acceptable value that is not a list (the optional mark, a variable)
    asks nothing of the items."""
    for candidate in acceptable:
        if not isinstance(candidate, list):
            return True
        candidate_type = _answer_type(candidate)
        if all(type(item) is item_type or type(item) is candidate_type for item in value):
            return True
    return False


# --- values ----------------------------------------------------------------------------------


def normalise_string(text: str) -> str:
    """BFCL's string form for comparison: lower case, ` ,./-_*^` removed, `'` as `"`."""
    return _IGNORED_IN_STRINGS.sub("", text).lower().replace("'", '"')


def _normalised(value: Any) -> Any:
    return normalise_string(value) if isinstance(value, str) else value


def _check_string(argument: str, value: str, acceptable: Sequence[Any]) -> Verdict:
    allowed = {normalise_string(v) for v in acceptable if isinstance(v, str)}
    if normalise_string(value) not in allowed:
        return Verdict(False, "value_error:string", f"{argument}: {value!r}")
    return _OK


def _check_list(argument: str, value: list[Any], acceptable: Sequence[Any]) -> Verdict:
    given = [_normalised(item) for item in value]
    for candidate in acceptable:
        items = [] if candidate == OPTIONAL_MARK else candidate
        if isinstance(items, list) and given == [_normalised(item) for item in items]:
            return _OK
    return Verdict(False, "value_error:list/tuple", f"{argument}: {value!r}")


def _check_dict(argument: str, value: Mapping[str, Any], acceptable: Sequence[Any]) -> Verdict:
    """The dict fits one acceptable dict ({key: [acceptable values]}); else the error of the
    last one tried."""
    verdict = Verdict(False, "dict_checker:unclear", argument)
    for candidate in acceptable:
        if candidate == OPTIONAL_MARK:
            continue
        verdict = _dict_fits(argument, value, candidate)
        if verdict.valid:
            return verdict
    return verdict


def _dict_fits(argument: str, value: Any, candidate: Any) -> Verdict:
    if not isinstance(value, Mapping) or not isinstance(candidate, Mapping):
        return Verdict(False, "value_error:dict_value", f"{argument}: {value!r}")
    for key, item in value.items():
        if key not in candidate:
            return Verdict(False, "value_error:dict_key", f"{argument}: unexpected key {key!r}")
        if _normalised(item) not in [_normalised(v) for v in _as_list(candidate[key])]:
            return Verdict(False, "value_error:dict_value", f"{argument}.{key}: {item!r}")
    for key, values in candidate.items():
        if key not in value and OPTIONAL_MARK not in _as_list(values):
            return Verdict(False, "value_error:dict_key", f"{argument}: missing key {key!r}")
    return _OK


def _as_list(values: Any) -> list[Any]:
    """A dict key's acceptable values; a bare value (BFCL writes a list) stands for itself."""
    return values if isinstance(values, list) else [values]


def _check_list_of_dicts(argument: str, value: list[Any], acceptable: Sequence[Any]) -> Verdict:
    """The list fits one acceptable list of dicts, item by item in order."""
    verdict = Verdict(False, "list_dict_checker:unclear", argument)
    for candidate in acceptable:
        dicts = [] if candidate == OPTIONAL_MARK else candidate
        if not isinstance(dicts, list) or len(dicts) != len(value):
            verdict = Verdict(False, "value_error:list_dict_count", argument)
            continue
        for item, expected in zip(value, dicts, strict=True):
            verdict = _check_dict(argument, item, [expected])
            if not verdict.valid:
                break
        else:
            return _OK
    return verdict
