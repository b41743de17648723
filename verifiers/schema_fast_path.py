"""A quick "these arguments are valid" for a tool's JSON Schema, from jsonschema-rs (compiled
Rust, ~10x faster than the `jsonschema` package), that never says so where `jsonschema` would not.

The format stage still decides with `jsonschema`: only arguments the fast validator finds valid
skip it, and every rejection (its reason and detail) comes from `jsonschema` as before. So that
the two agree, a schema gets a fast validator only when it uses nothing but the keywords in
`FAST_KEYWORDS` (plus words that are no JSON Schema keyword, which both ignore), and the keywords
whose meaning the two implementations could read differently (`DELEGATED`: Python's regular
expressions, float division, Python's format checkers) are checked by `jsonschema` itself from
inside the Rust validator. Arguments holding a non-finite number (inf compares differently, and
`jsonschema`'s multipleOf raises on it) take the `jsonschema` path where the schema bounds a
number or asks for a multiple.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from jsonschema import Draft4Validator, Draft6Validator, Draft7Validator, Draft201909Validator
from jsonschema import Draft202012Validator as PythonValidator

FastCheck = Callable[[Any], bool]

DELEGATED = ("pattern", "multipleOf", "format")
SUBSCHEMA = ("items", "not", "additionalProperties")
SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
SUBSCHEMA_MAPS = ("properties",)
FAST_KEYWORDS = frozenset(
    {
        "type",
        "enum",
        "const",
        "required",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "uniqueItems",
        "minProperties",
        "maxProperties",
        *DELEGATED,
        *SUBSCHEMA,
        *SUBSCHEMA_LISTS,
        *SUBSCHEMA_MAPS,
        # annotations: no effect on validity
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$comment",
    }
)
SCHEMA_KEYWORDS = frozenset(
    {
        *(
            keyword
            for draft in (
                Draft4Validator,
                Draft6Validator,
                Draft7Validator,
                Draft201909Validator,
                PythonValidator,
            )
            for keyword in draft.VALIDATORS
        ),
        *("$schema", "$id", "id", "$anchor", "$dynamicAnchor", "$recursiveAnchor", "$defs"),
        *("definitions", "$vocabulary", "contentMediaType", "contentEncoding", "contentSchema"),
    }
)
"""Every word some draft of JSON Schema gives a meaning; a schema using one not in
`FAST_KEYWORDS` is checked by `jsonschema` alone."""
MAX_DEPTH = 64


def fast_check(schema: Any) -> FastCheck | None:
    """A function that says True only for instances `jsonschema`'s Draft 2020-12 validator
    (with its format checker) accepts against `schema`, quickly; None when the schema uses a
    keyword outside `FAST_KEYWORDS`, or jsonschema-rs is not installed or refuses it. The
    schema must have passed `Draft202012Validator.check_schema`."""
    if not _fast_keywords_only(schema, 0):
        return None
    try:
        import jsonschema_rs
    except ImportError:  # pragma: no cover - a declared dependency
        return None
    try:
        validator = jsonschema_rs.Draft202012Validator(
            schema, validate_formats=False, keywords=_DELEGATES, offline=True
        )
    except Exception:
        return None

    bounded = _bounds_numbers(schema)

    def check(instance: Any) -> bool:
        if bounded and not _finite(instance):
            return False
        try:
            return bool(validator.is_valid(instance))
        except Exception:  # what Rust cannot hold (lone surrogates, non-string keys)
            return False

    return check


def _fast_keywords_only(schema: Any, depth: int) -> bool:
    if isinstance(schema, bool):
        return True
    if not isinstance(schema, dict) or depth > MAX_DEPTH:
        return False
    for keyword, value in schema.items():
        if keyword not in FAST_KEYWORDS:
            if keyword in SCHEMA_KEYWORDS:
                return False
            continue
        if keyword in SUBSCHEMA and not _fast_keywords_only(value, depth + 1):
            return False
        if keyword in SUBSCHEMA_LISTS and not all(
            _fast_keywords_only(item, depth + 1) for item in value
        ):
            return False
        if keyword in SUBSCHEMA_MAPS and not all(
            _fast_keywords_only(item, depth + 1) for item in value.values()
        ):
            return False
    return True


BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")


def _bounds_numbers(schema: Any) -> bool:
    # Any schema that names a bound keyword anywhere (its text does): a cheap, safe over-count.
    try:
        text = orjson.dumps(schema)
    except TypeError:  # an integer beyond 64 bits
        return True
    return any(f'"{keyword}"'.encode() in text for keyword in BOUNDS)


def _finite(value: Any) -> bool:
    """No float in `value` is infinite or NaN (jsonschema-rs orders infinities otherwise)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float):
            if item - item != 0.0:  # inf - inf and nan - nan are nan
                return False
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True


class _PythonKeyword:
    """A keyword checked by `jsonschema` from inside the Rust validator."""

    keyword = ""

    def __init__(self, _parent: dict[str, Any], value: Any, _path: list[str | int]) -> None:
        self._validator = PythonValidator(
            {self.keyword: value}, format_checker=PythonValidator.FORMAT_CHECKER
        )

    def validate(self, instance: Any) -> None:
        if not self._validator.is_valid(instance):
            raise ValueError(f"{self.keyword} not satisfied")


_DELEGATES: dict[str, Any] = {
    keyword: type(f"Python_{keyword}", (_PythonKeyword,), {"keyword": keyword})
    for keyword in DELEGATED
}
