"""Duplicate keys in JSON catalog documents.

JSON readers keep only the last of two equal keys in one object, so a catalog that names `get`
twice under one path would silently lose an operation. The check parses the text once more with
the standard library (orjson, which parses catalogs, cannot report pairs); only when it finds a
duplicate is the text read again to say where, by the YAML reader, which knows lines and
columns and reads JSON as YAML.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from unified.catalogs.safe_yaml import CatalogYamlLoader, DuplicateKeyError
from unified.errors import CatalogError


class _Duplicate(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _refuse_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Duplicate(key)
            seen.add(key)
    return result


def refuse_duplicate_keys(text: str, document: str, first_line: int = 1) -> None:
    """Raise `CatalogError` when an object of the JSON `text` (valid JSON, within the shape
    limits) names a key twice; `first_line` is the document line `text` starts on (a JSON Lines
    row)."""
    try:
        json.loads(text, object_pairs_hook=_refuse_repeats)
    except _Duplicate as duplicate:
        where, first = _locate(text, first_line)
        seen_first = f" (first at line {first})" if first else ""
        raise CatalogError(
            document,
            where,
            f"duplicate key {duplicate.key!r}{seen_first}; JSON readers keep only the last "
            "one, so remove or rename one of them",
        ) from None


def _locate(text: str, first_line: int) -> tuple[str | None, int | None]:
    """("line L, column C", the first key's line) of the first duplicate, when the YAML reader
    reads the text (JSON that YAML 1.1 cannot read, such as tab indentation, gives no place)."""
    try:
        yaml.load(text, Loader=CatalogYamlLoader)
    except DuplicateKeyError as exc:
        line = first_line + exc.mark.line
        return f"line {line}, column {exc.mark.column + 1}", first_line + exc.first.line
    except yaml.YAMLError:
        pass
    return (f"line {first_line}" if first_line > 1 else None), None
