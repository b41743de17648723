"""A reference call's acceptable answers (`ToolCall.acceptable`): derived from its one answer
when it lists none, and read from and written as BFCL's possible-answer shape.

BFCL writes a call's possible answer as `{argument: [acceptable values]}`; "" among the values
means the argument may be left out; an acceptable object is `{field: [acceptable values]}`, an
acceptable list of objects a list of those.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from unified.model import Acceptable, ToolCall

OMITTED = ""
"""BFCL's mark, among an argument's acceptable values, for "may be left out"."""

BfclOptions = dict[str, list[Any]]


def acceptable_of(call: ToolCall) -> dict[str, Acceptable]:
    """What `call` accepts: its own `acceptable`, or else exactly its arguments (objects and
    lists of objects field by field, so nested values compare the same way)."""
    if call.acceptable is not None:
        return call.acceptable
    if not isinstance(call.arguments, dict):
        return {}
    return {name: _only(value) for name, value in call.arguments.items()}


def _only(value: Any) -> Acceptable:
    if isinstance(value, dict) and value:
        return Acceptable(objects=[_fields(value)])
    if isinstance(value, list) and value and all(isinstance(v, dict) and v for v in value):
        return Acceptable(object_lists=[[_fields(item) for item in value]])
    return Acceptable(values=[value])


def _fields(value: Mapping[str, Any]) -> dict[str, Acceptable]:
    return {str(key): Acceptable(values=[item]) for key, item in value.items()}


def from_bfcl(options: Mapping[str, list[Any]]) -> dict[str, Acceptable]:
    """The acceptable values of a BFCL possible-answer call, `{argument: [values]}`."""
    return {str(argument): _from_bfcl_values(values) for argument, values in options.items()}


def _from_bfcl_values(values: list[Any]) -> Acceptable:
    acceptable = Acceptable()
    for value in values:
        if value == OMITTED:
            acceptable.omittable = True
        elif is_bfcl_options(value):
            acceptable.objects.append(from_bfcl(value))
        elif isinstance(value, list) and value and all(is_bfcl_options(v) for v in value):
            acceptable.object_lists.append([from_bfcl(item) for item in value])
        else:
            acceptable.values.append(value)
    return acceptable


def to_bfcl(acceptable: Mapping[str, Acceptable]) -> BfclOptions:
    """`acceptable` in BFCL's possible-answer shape, `{argument: [values]}`."""
    return {argument: _to_bfcl_values(values) for argument, values in acceptable.items()}


def _to_bfcl_values(acceptable: Acceptable) -> list[Any]:
    values: list[Any] = list(acceptable.values)
    values += [to_bfcl(fields) for fields in acceptable.objects]
    values += [[to_bfcl(item) for item in items] for items in acceptable.object_lists]
    if acceptable.omittable:
        values.append(OMITTED)
    return values


def is_bfcl_options(value: Any) -> bool:
    """Whether `value` is a BFCL acceptable object: every field maps to a list of values."""
    return isinstance(value, dict) and all(isinstance(item, list) for item in value.values())


def bfcl_possible_answer(calls: Sequence[ToolCall]) -> list[dict[str, BfclOptions]]:
    """The possible answer of a step's reference calls, as BFCL writes it:
    `[{function_name: {argument: [acceptable values]}}]`."""
    return [{call.name: to_bfcl(acceptable_of(call))} for call in calls]
