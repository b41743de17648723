"""The JSON Schemas that constrain what the LLM writes (vLLM structured outputs, xgrammar).

A sample's output schema is `{"query", "calls"}` (plus `"answer"` for irrelevance), where each
call is `{"name": <const tool name>, "arguments": <that tool's parameters>}` and the number of
calls fits the query style. The tools' parameter schemas go in as *grammar copies*: xgrammar
refuses or ignores some JSON Schema keywords, so the copy keeps only what it handles, and where
it must change a rule it prefers a tighter one (a prefix of a long enum, a simple pattern for a
`format`, a cap on string lengths), so that whatever the grammar lets through still passes the
format verifier, which checks the real schema afterwards.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from unified.model import QueryStyle, Tool

_KEPT_KEYS = frozenset(
    {
        "type",
        "enum",
        "const",
        "properties",
        "required",
        "additionalProperties",
        "patternProperties",
        "items",
        "prefixItems",
        "minItems",
        "maxItems",
        "anyOf",
        "oneOf",
        "$ref",
        "$defs",
        "definitions",
        "minLength",
        "maxLength",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
    }
)
"""Keywords a grammar copy keeps; xgrammar rejects or mishandles the rest (`multipleOf`,
`uniqueItems`, `contains`, `propertyNames`, `minProperties`, multi-branch `allOf`, ...), and
annotations (`description`, `default`, `examples`) do not shape the grammar."""

FORMAT_PATTERNS = {
    "date": r"^(19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$",
    "date-time": (
        r"^(19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
        r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z$"
    ),
    "time": r"^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z$",
    "email": r"^[a-z][a-z0-9_]{0,15}@[a-z]{2,12}\.(com|org|net|io)$",
    "uuid": r"^[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
    "ipv4": (
        r"^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
        r"(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$"
    ),
    "ipv6": r"^([0-9a-f]{1,4}:){7}[0-9a-f]{1,4}$",
    "hostname": r"^[a-z][a-z0-9]{0,15}(\.[a-z][a-z0-9]{0,15}){0,3}$",
    "uri": r"^https://[a-z][a-z0-9]{0,15}\.(com|org|net|io)(/[a-z0-9_]{1,16}){0,4}$",
    "uri-reference": r"^https://[a-z][a-z0-9]{0,15}\.(com|org|net|io)(/[a-z0-9_]{1,16}){0,4}$",
    "duration": r"^P[1-9][0-9]?D(T[1-9][0-9]?H)?$",
}
"""Formats replaced by a pattern whose every match is a valid value. xgrammar's own format
grammars are looser than the format checker (they allow 2026-02-31, times without a zone)."""

_UNSAFE_PATTERN = re.compile(
    r"\(\?[=!<>]"  # lookaround, atomic groups (named groups `(?<name>` are caught too, harmless)
    r"|\(\?[a-zA-Z]"  # inline flags such as (?i)
    r"|\\[1-9bBpPkAZzG]"  # backreferences, word boundaries, unicode classes, anchors
    r"|[*+?}]\+"  # possessive quantifiers
)
"""Regex features xgrammar refuses (backreferences, \\b, \\p{...}) or silently ignores
(lookaround, flags): a pattern using one is left out of the grammar copy."""


NUMBER_BOUND = 10**12
"""Numbers with no bound get this one (either side), which keeps exponents out of them."""
MULTIPLES = 64
"""How many multiples stand in for a `multipleOf` rule."""


@dataclass(frozen=True)
class SchemaLimits:
    """Caps the grammar puts on what the model writes, so that a model that rambles (or a random
    test model) stops inside `max_tokens`; each is tighter than any real schema needs."""

    max_query_chars: int = 1000
    max_text_chars: int = 4000
    max_string_chars: int = 500
    max_items: int = 8
    max_enum: int = 256
    max_calls: int = 4


@dataclass(frozen=True)
class CallPlan:
    """What a sample's calls must look like: which tools they may name and how many."""

    tools: tuple[str, ...]
    min_calls: int
    max_calls: int


def call_plan(
    style: QueryStyle, shown: Sequence[str], called: Sequence[str], limits: SchemaLimits
) -> CallPlan:
    """The calls a `style` sample may make, given the tools shown and those the draft calls.

    simple: exactly one call of the called tool; multiple: one call of any shown tool; parallel:
    two or more calls of the called tool; parallel_multiple: two or more calls of the called
    tools; irrelevance: none.
    """
    top = max(2, limits.max_calls)
    if style is QueryStyle.simple:
        return CallPlan(tuple(called[:1]), 1, 1)
    if style is QueryStyle.multiple:
        return CallPlan(tuple(shown), 1, 1)
    if style is QueryStyle.parallel:
        return CallPlan(tuple(called[:1]), 2, top)
    if style is QueryStyle.parallel_multiple:
        names = tuple(dict.fromkeys(called))
        return CallPlan(names, 2, max(top, len(names)))
    return CallPlan((), 0, 0)


def sample_schema(
    style: QueryStyle, tools: Sequence[Tool], plan: CallPlan, limits: SchemaLimits
) -> dict[str, Any]:
    """The output schema of a function-calling sample: `{"query", "calls"}`, plus `"answer"`
    (why no tool fits) for irrelevance. `tools` are the tools the calls may name."""
    properties: dict[str, Any] = {"query": _text(limits.max_query_chars)}
    required = ["query", "calls"]
    defs: dict[str, Any] = {}
    if plan.max_calls == 0:
        properties["calls"] = {"type": "array", "minItems": 0, "maxItems": 0}
        properties["answer"] = _text(limits.max_text_chars)
        required.append("answer")
    else:
        properties["calls"] = _calls(tools, plan, limits, defs)
    return _with_defs(_closed_object(properties, required), defs)


def blueprint_schema(
    tools: Sequence[Tool], turns: tuple[int, int], plan: CallPlan, limits: SchemaLimits
) -> dict[str, Any]:
    """The output schema of a multi_turn task blueprint: the user's `intent`, `turns` (between
    `turns[0]` and `turns[1]` of them, each the user's `request` and the `calls` that fulfil it,
    as many as `plan` allows) and the `outcome`."""
    defs: dict[str, Any] = {}
    turn = _closed_object(
        {"request": _text(limits.max_query_chars), "calls": _calls(tools, plan, limits, defs)},
        ["request", "calls"],
    )
    properties = {
        "intent": _text(limits.max_query_chars),
        "turns": {"type": "array", "items": turn, "minItems": turns[0], "maxItems": turns[1]},
        "outcome": _text(limits.max_text_chars),
    }
    return _with_defs(_closed_object(properties, ["intent", "turns", "outcome"]), defs)


def calls_schema(tools: Sequence[Tool], plan: CallPlan, limits: SchemaLimits) -> dict[str, Any]:
    """The output schema of an assistant's calls in a conversation: `{"calls"}`, as many as
    `plan` allows (none included, when the assistant should ask or refuse)."""
    defs: dict[str, Any] = {}
    schema = _closed_object({"calls": _calls(tools, plan, limits, defs)}, ["calls"])
    return _with_defs(schema, defs)


def message_schema(limits: SchemaLimits) -> dict[str, Any]:
    """The output schema of a simulated user's message."""
    return _closed_object({"message": _text(limits.max_query_chars)}, ["message"])


def answer_schema(limits: SchemaLimits) -> dict[str, Any]:
    """The output schema of an assistant's answer to the user."""
    return _closed_object({"answer": _text(limits.max_text_chars)}, ["answer"])


def _calls(
    tools: Sequence[Tool], plan: CallPlan, limits: SchemaLimits, defs: dict[str, Any]
) -> dict[str, Any]:
    """An array of `plan`'s calls, each `{"name", "arguments"}` of one of its tools; the grammar
    copies of their parameters go to `defs`."""
    by_name = {tool.name: tool for tool in tools}
    branches = []
    for index, name in enumerate(plan.tools):
        arguments, tool_defs = _arguments(by_name[name].parameters, f"tool{index}", limits)
        defs.update(tool_defs)
        branches.append(
            {
                "type": "object",
                "properties": {"name": {"const": name}, "arguments": arguments},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
        )
    items = branches[0] if len(branches) == 1 else {"anyOf": branches}
    return {"type": "array", "items": items, "minItems": plan.min_calls, "maxItems": plan.max_calls}


def _with_defs(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if defs:
        schema["$defs"] = defs
    return schema


def instruction_schema(limits: SchemaLimits) -> dict[str, Any]:
    """The output schema of an instruction-following sample: the instruction and its response."""
    return _closed_object(
        {"instruction": _text(limits.max_query_chars), "response": _text(limits.max_text_chars)},
        ["instruction", "response"],
    )


def rephrase_schema(limits: SchemaLimits) -> dict[str, Any]:
    """The output schema of a rephrased query or instruction."""
    return _closed_object({"query": _text(limits.max_query_chars)}, ["query"])


def response_schema(limits: SchemaLimits) -> dict[str, Any]:
    """The output schema of a new response to an instruction."""
    return _closed_object({"response": _text(limits.max_text_chars)}, ["response"])


def _text(max_chars: int) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max(1, max_chars)}


def _closed_object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def grammar_schema(schema: Any, limits: SchemaLimits) -> Any:
    """A copy of a JSON Schema that xgrammar compiles and whose matches the original accepts
    (as far as can be: see the module docstring). `$ref`s are kept as they are."""
    if isinstance(schema, bool):
        return schema
    if not isinstance(schema, dict):
        return {}
    source = _merge_all_of(schema)
    copy: dict[str, Any] = {}
    for key, value in source.items():
        if key not in _KEPT_KEYS:
            continue
        if key in ("properties", "$defs", "definitions"):
            if isinstance(value, dict):
                copy[key] = {name: grammar_schema(sub, limits) for name, sub in value.items()}
        elif key in ("additionalProperties", "items"):
            if isinstance(value, list):  # draft 4 tuple form
                copy["prefixItems"] = [grammar_schema(sub, limits) for sub in value]
            else:
                copy[key] = grammar_schema(value, limits)
        elif key in ("prefixItems", "anyOf", "oneOf"):
            if isinstance(value, list):
                # xgrammar reads oneOf as anyOf anyway (and warns about it)
                target = "anyOf" if key == "oneOf" and "anyOf" not in source else key
                copy[target] = [grammar_schema(sub, limits) for sub in value]
        elif key == "patternProperties":
            if isinstance(value, dict) and value and "properties" not in source:
                name, sub = next(iter(value.items()))  # xgrammar takes one pattern
                if _safe_pattern(name):
                    copy[key] = {name: grammar_schema(sub, limits)}
        else:
            copy[key] = value
    _shape_string(copy, limits)
    _shape_number(copy, source, limits)
    _shape_array(copy, limits)
    enum = copy.get("enum")
    if isinstance(enum, list) and len(enum) > limits.max_enum:
        copy["enum"] = enum[: limits.max_enum]
    return copy


def _merge_all_of(schema: dict[str, Any]) -> dict[str, Any]:
    """`allOf` folded into its schema (xgrammar ignores every branch but one): properties and
    required are joined, other keywords taken from the first place that sets them."""
    branches = schema.get("allOf")
    if not isinstance(branches, list):
        return schema
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    for branch in branches:
        if not isinstance(branch, dict):
            continue
        branch = _merge_all_of(branch)
        for key, value in branch.items():
            if key == "properties" and isinstance(value, dict):
                merged["properties"] = {**value, **merged.get("properties", {})}
            elif key == "required" and isinstance(value, list):
                merged["required"] = list(dict.fromkeys([*merged.get("required", []), *value]))
            else:
                merged.setdefault(key, value)
    return merged


def _types(schema: dict[str, Any]) -> set[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return {k for k in kind if isinstance(k, str)}
    return set()


def _shape_string(schema: dict[str, Any], limits: SchemaLimits) -> None:
    types = _types(schema)
    if types and "string" not in types:
        schema.pop("pattern", None)
        schema.pop("format", None)
        return
    pattern = schema.get("pattern")
    if pattern is not None and not (isinstance(pattern, str) and _safe_pattern(pattern)):
        schema.pop("pattern")
    fmt = schema.pop("format", None)
    if isinstance(fmt, str) and "pattern" not in schema and fmt in FORMAT_PATTERNS:
        schema["pattern"] = FORMAT_PATTERNS[fmt]
    if "pattern" in schema:
        # xgrammar cannot combine a pattern with length bounds
        schema.pop("minLength", None)
        schema.pop("maxLength", None)
        return
    if "string" not in types or "enum" in schema or "const" in schema:
        return
    cap = limits.max_string_chars
    low = schema.get("minLength")
    high = schema.get("maxLength")
    if isinstance(high, int) and high <= cap:
        return
    schema["maxLength"] = max(cap, low) if isinstance(low, int) else cap


def _shape_number(schema: dict[str, Any], source: dict[str, Any], limits: SchemaLimits) -> None:
    """Bounds on numbers (xgrammar lets an unbounded number's exponent run to infinity), and
    `multipleOf` (which it ignores) as an enum of multiples that the format checker accepts."""
    types = _types(schema)
    if not types & {"number", "integer"} or "enum" in schema or "const" in schema:
        return
    for key in ("exclusiveMinimum", "exclusiveMaximum"):
        if isinstance(schema.get(key), bool):  # draft 4's flag form, which xgrammar refuses
            del schema[key]
    low = _bound(schema, "minimum", "exclusiveMinimum", -NUMBER_BOUND)
    high = _bound(schema, "maximum", "exclusiveMaximum", NUMBER_BOUND)
    step = source.get("multipleOf")
    if types <= {"number", "integer"} and isinstance(step, int | float) and step > 0:
        values = _multiples(schema, step, "number" not in types, min(limits.max_enum, MULTIPLES))
        if values:
            for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                schema.pop(key, None)
            schema["enum"] = values
            return
    if not any(key in schema for key in ("minimum", "exclusiveMinimum")):
        schema["minimum"] = min(-NUMBER_BOUND, high)
    if not any(key in schema for key in ("maximum", "exclusiveMaximum")):
        schema["maximum"] = max(NUMBER_BOUND, low)


def _bound(schema: dict[str, Any], inclusive: str, exclusive: str, default: float) -> float:
    for key in (inclusive, exclusive):
        value = schema.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return default


def _multiples(schema: dict[str, Any], step: float, integral: bool, count: int) -> list[Any]:
    """Up to `count` multiples of `step` inside the schema's bounds, kept only where
    `value / step` is a whole number in floating point, as the format checker tests it."""
    low = _bound(schema, "minimum", "exclusiveMinimum", -NUMBER_BOUND)
    high = _bound(schema, "maximum", "exclusiveMaximum", NUMBER_BOUND)
    factor = math.ceil(low / step) if low > -NUMBER_BOUND else 1
    values: list[Any] = []
    while len(values) < count and factor * step <= high:
        value = factor * step
        factor += 1
        if not _within(schema, value) or (integral and not float(value).is_integer()):
            continue
        if isinstance(value, float) and not (value / step).is_integer():
            continue
        values.append(int(value) if integral else value)
    return values


def _within(schema: dict[str, Any], value: float) -> bool:
    checks = {
        "minimum": lambda bound: value >= bound,
        "maximum": lambda bound: value <= bound,
        "exclusiveMinimum": lambda bound: value > bound,
        "exclusiveMaximum": lambda bound: value < bound,
    }
    return all(
        check(schema[key])
        for key, check in checks.items()
        if isinstance(schema.get(key), int | float) and not isinstance(schema[key], bool)
    )


def _shape_array(schema: dict[str, Any], limits: SchemaLimits) -> None:
    if "array" not in _types(schema):
        return
    low = schema.get("minItems")
    high = schema.get("maxItems")
    prefix = schema.get("prefixItems")
    floor = max(low if isinstance(low, int) else 0, len(prefix) if isinstance(prefix, list) else 0)
    cap = max(limits.max_items, floor)
    if not isinstance(high, int) or high > cap:
        schema["maxItems"] = cap


def _safe_pattern(pattern: str) -> bool:
    if _UNSAFE_PATTERN.search(pattern):
        return False
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


def _has_ref(schema: Any) -> bool:
    if isinstance(schema, dict):
        return "$ref" in schema or any(_has_ref(v) for v in schema.values())
    if isinstance(schema, list):
        return any(_has_ref(v) for v in schema)
    return False


def _arguments(
    parameters: dict[str, Any], key: str, limits: SchemaLimits
) -> tuple[Any, dict[str, Any]]:
    """A tool's arguments schema for the output schema, and the `$defs` it needs at the root.

    A tool schema with `$ref`s moves whole under the root's `$defs/<key>` and its local refs are
    rewritten to point there (`#/$defs/X` becomes `#/$defs/<key>/$defs/X`), so that tools'
    definitions never collide and recursive schemas keep working; other refs become `{}`."""
    copy = grammar_schema(parameters, limits)
    open_keys = ("additionalProperties", "patternProperties")
    if isinstance(copy, dict) and not any(key in copy for key in open_keys):
        # the format verifier treats a schema without them as closed; say so to the grammar too
        copy["additionalProperties"] = False
    if not _has_ref(copy):
        return copy, {}
    return {"$ref": f"#/$defs/{key}"}, {key: _rebase_refs(copy, f"#/$defs/{key}")}


def _rebase_refs(schema: Any, base: str) -> Any:
    if isinstance(schema, list):
        return [_rebase_refs(item, base) for item in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str):
        if ref == "#" or ref.startswith("#/"):
            return {"$ref": base + ref[1:]}
        return {}
    return {key: _rebase_refs(value, base) for key, value in schema.items()}
