"""What JSON calls a value, for messages that say what was found instead of what was wanted."""

from __future__ import annotations

from typing import Any


def kind_of(value: Any) -> str:
    """`"a string"`, `"a number"`, `"a list"`, `"an object"`, ...: the JSON name of a value's
    type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
