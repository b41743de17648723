"""How JSON columns are written and read: with orjson (several times faster than the standard
library on the large sample documents every batch stores and reads back), falling back to the
standard library for what orjson refuses (integers beyond 64 bits, strings with lone
surrogates), so those store and read as before. NaN and infinities, which JSON does not have,
are stored as null (the standard library wrote `NaN`, which PostgreSQL refuses)."""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> str:
    """`value` as JSON text."""
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value)


def loads(text: str | bytes) -> Any:
    """The value of JSON text."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
