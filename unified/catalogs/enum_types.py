"""Enums whose members are not of the type their schema declares.

JSON Schema accepts such a schema, but no value can be both: a member of the wrong type is one
no argument may take, so generated calls would use it and fail. Such a parameter is refused
with its name, the member and the type, since only the author knows which of the two is wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from unified.catalogs.openapi_schema import SINGLE_SUBSCHEMA_KEYWORDS
from unified.json_kinds import kind_of

_SCHEMA_MAPS = ("patternProperties", "dependentSchemas", "$defs", "definitions")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems", "items")


@dataclass(frozen=True)
class EnumMismatch:
    """A member of a parameter's enum that none of its declared types admits."""

    parameter: str
    declared: str
    member: Any

    def message(self) -> str:
        kind = kind_of(self.member)
        text = (
            f"parameter '{self.parameter}' has type {self.declared} but its enum lists "
            f"{self.member!r} ({kind}); make every member of type {self.declared}, or change "
            "the type"
        )
        if "string" in self.declared and kind in ("a boolean", "a number"):
            text += (
                " (YAML reads unquoted yes, no, on, off, true, false and numbers as "
                "booleans and numbers: quote them)"
            )
        return text


def _admits(type_name: str, value: Any) -> bool:
    if type_name == "integer":
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return number and float(value).is_integer()
    if type_name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    checks = {"string": str, "boolean": bool, "array": list, "object": dict}
    if type_name == "null":
        return value is None
    expected = checks.get(type_name)
    return expected is not None and isinstance(value, expected)


def find_enum_mismatch(parameters: Any) -> EnumMismatch | None:
    """The first enum member, anywhere in a tool's parameters schema, of a type the schema
    around it does not declare."""
    for schema, name in _subschemas(parameters):
        enum, declared = schema.get("enum"), schema.get("type")
        if not isinstance(enum, list):
            continue
        types = [declared] if isinstance(declared, str) else declared
        if not isinstance(types, list) or not types:
            continue
        for member in enum:
            if not any(_admits(t, member) for t in types if isinstance(t, str)):
                return EnumMismatch(name or "(the parameters object)", " or ".join(types), member)
    return None


def _subschemas(root: Any) -> Iterator[tuple[dict[str, Any], str]]:
    """Every schema object under `root` with the dotted name of the parameter it describes
    (`filter.kind`, `tags[]`), walked without recursion."""
    stack: list[tuple[Any, str]] = [(root, "")]
    while stack:
        schema, name = stack.pop()
        if not isinstance(schema, dict):
            continue
        yield schema, name
        properties = schema.get("properties")
        if isinstance(properties, dict):
            prefix = f"{name}." if name else ""
            stack.extend((sub, f"{prefix}{prop}") for prop, sub in properties.items())
        for key in _SCHEMA_MAPS:
            mapping = schema.get(key)
            if isinstance(mapping, dict):
                stack.extend((sub, name) for sub in mapping.values())
        for key in _SCHEMA_LISTS:
            listed = schema.get(key)
            if isinstance(listed, list):
                below = f"{name}[]" if key in ("items", "prefixItems") else name
                stack.extend((sub, below) for sub in listed)
        for key in SINGLE_SUBSCHEMA_KEYWORDS:
            below = {"items": f"{name}[]", "additionalProperties": f"{name}.*"}.get(key, name)
            stack.append((schema.get(key), below))
