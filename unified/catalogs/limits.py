"""Limits on the shape of a catalog document, checked before any loader walks it.

The byte limit bounds the text; these bound what the text becomes: how deep collections nest
and how many nodes (keys, values and collections) the document holds. YAML aliases count as
the nodes they bring in, with a budget of their own, so a few hundred bytes cannot expand to
gigabytes (a "billion laughs" document). Every walk here is iterative, so no document can
exhaust the stack of the process that checks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from unified.errors import CatalogError

_Path = tuple["_Path | None", str | int] | None
_SHOWN_TOKENS = 10


@dataclass(frozen=True)
class DocumentLimits:
    """How deep a catalog document may nest and how many nodes it may hold; and, for OpenAPI
    documents, how many subschemas one schema and all tools may hold once `$ref`s are
    inlined (inlining multiplies a document as aliases do)."""

    max_depth: int = 100
    max_nodes: int = 1_000_000
    max_alias_nodes: int = 100_000
    max_schema_size: int = 5_000
    max_schemas: int = 100_000


DEFAULT_LIMITS = DocumentLimits()


def too_deep(document: str, place: str | None, limits: DocumentLimits) -> CatalogError:
    return CatalogError(
        document,
        place,
        f"the document nests more than {limits.max_depth} levels deep here; "
        "flatten the structure (a catalog needs far fewer levels)",
    )


def too_many_nodes(document: str, place: str | None, limits: DocumentLimits) -> CatalogError:
    return CatalogError(
        document,
        place,
        f"the document holds more than {limits.max_nodes:,} nodes (keys, values and "
        "collections); split the catalog into smaller documents",
    )


class JsonShape:
    """Counts the nodes of parsed JSON values against the limits, across several values (the
    rows of a JSON Lines document) when asked to."""

    def __init__(self, document: str, limits: DocumentLimits) -> None:
        self.document = document
        self.limits = limits
        self.nodes = 0

    def check(self, value: Any, prefix: str = "") -> None:
        """Raise `CatalogError` if `value` nests too deep or the nodes so far are too many;
        `prefix` starts the place named in the error ("line 4 ", or the pointer of the JSON
        string `value` was decoded from)."""
        self.nodes += 1
        stack: list[tuple[Any, int, _Path]] = [(value, 1, None)]
        while stack:
            node, depth, path = stack.pop()
            if not isinstance(node, dict | list):
                continue
            if depth > self.limits.max_depth:
                raise too_deep(self.document, _place(prefix, path), self.limits)
            children = node.items() if isinstance(node, dict) else enumerate(node)
            self.nodes += 2 * len(node) if isinstance(node, dict) else len(node)
            if self.nodes > self.limits.max_nodes:
                raise too_many_nodes(self.document, _place(prefix, path), self.limits)
            for key, child in children:
                if isinstance(child, dict | list):
                    stack.append((child, depth + 1, (path, key)))


def _place(prefix: str, path: _Path) -> str | None:
    tokens: list[str] = []
    while path is not None:
        path, key = path
        tokens.append(str(key).replace("~", "~0").replace("/", "~1"))
    tokens.reverse()
    if len(tokens) > _SHOWN_TOKENS:
        tokens[_SHOWN_TOKENS:] = [f"... ({len(tokens)} levels down)"]
    pointer = "".join("/" + token for token in tokens)
    return f"{prefix}{pointer}".strip() or None
