"""YAML catalog documents, parsed safely.

Before anything is built, the parser's event stream is read once to check the document's shape
against `DocumentLimits`: nesting depth, node count, and the nodes aliases bring in (an alias
counts as every node of what it names, computed per anchor, never expanded). Only a document
within the limits is composed and constructed, by a safe loader that refuses a key repeated in
one mapping (YAML would silently keep only the last) and keeps timestamps as text.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    NodeEvent,
    ScalarEvent,
)
from yaml.nodes import MappingNode, ScalarNode

from unified.catalogs.limits import DocumentLimits, too_deep, too_many_nodes
from unified.errors import CatalogError

_MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(yaml.YAMLError):
    """A mapping that names the same key twice."""

    def __init__(self, key: str, mark: yaml.Mark, first: yaml.Mark) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key = key
        self.mark = mark
        self.first = first


class CatalogYamlLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML that refuses duplicate keys and keeps timestamps as the text they were
    written as, as a JSON document would: a catalog's examples and defaults come back
    unchanged, whether or not some imported library re-registered PyYAML's timestamp
    constructor."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            self._refuse_duplicate_keys(node)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping

    def _refuse_duplicate_keys(self, node: MappingNode) -> None:
        seen: dict[str, yaml.Mark] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            # As text: JSON keys are text, so `1` and "1" would collide there too.
            key = str(self.construct_object(key_node))
            first = seen.get(key)
            if first is not None:
                raise DuplicateKeyError(key, key_node.start_mark, first)
            seen[key] = key_node.start_mark


CatalogYamlLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


def load_yaml(text: str, document: str, limits: DocumentLimits) -> Any:
    """The YAML document `text` as Python data; raises `CatalogError` for a syntax error, a
    duplicate key, or a shape over `limits`."""
    try:
        _check_shape(text, document, limits)
        return yaml.load(text, Loader=CatalogYamlLoader)
    except DuplicateKeyError as exc:
        raise CatalogError(
            document,
            _where(exc.mark),
            f"duplicate key {exc.key!r} (first at line {exc.first.line + 1}); YAML would keep "
            "only the last one, so remove or rename one of them",
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise CatalogError(
            document,
            _where(mark) if mark else None,
            f"neither JSON nor YAML ({problem}); fix the syntax there",
        ) from None


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def _check_shape(text: str, document: str, limits: DocumentLimits) -> None:
    """Walk the parser's events (no nodes are built) and raise `CatalogError` at the first
    place where the document goes over `limits`."""
    open_: list[_Open] = []
    anchors: dict[str, tuple[int, int]] = {}  # anchor -> (nodes, levels) of what it names
    nodes = alias_nodes = 0
    for event in yaml.parse(text, Loader=CatalogYamlLoader):
        if isinstance(event, CollectionEndEvent):
            done = open_.pop()
            if done.anchor is not None:
                anchors[done.anchor] = (done.nodes, done.levels)
            if open_:
                open_[-1].add(done.nodes, done.levels)
            continue
        if not isinstance(event, NodeEvent):
            continue
        if isinstance(event, AliasEvent):
            size = anchors.get(event.anchor or "")
            if size is None:
                if any(entry.anchor == event.anchor for entry in open_):
                    raise _recursive_alias(document, event)
                continue  # an undefined alias: composing reports it
            count, levels = size
            alias_nodes += count
            if alias_nodes > limits.max_alias_nodes:
                raise _too_many_alias_nodes(document, event, count, limits)
        else:
            count, levels = 1, int(isinstance(event, CollectionStartEvent))
        nodes += count
        if nodes > limits.max_nodes:
            raise too_many_nodes(document, _where(event.start_mark), limits)
        if len(open_) + levels > limits.max_depth:
            raise too_deep(document, _where(event.start_mark), limits)
        if isinstance(event, CollectionStartEvent):
            open_.append(_Open(event.anchor))
            continue
        if isinstance(event, ScalarEvent) and event.anchor is not None:
            anchors[event.anchor] = (1, 0)
        if open_:
            open_[-1].add(count, levels)


class _Open:
    """A collection whose end has not been read: its anchor, its nodes so far (itself
    included) and how many collection levels it spans (itself included)."""

    __slots__ = ("anchor", "levels", "nodes")

    def __init__(self, anchor: str | None) -> None:
        self.anchor = anchor
        self.nodes = 1
        self.levels = 1

    def add(self, nodes: int, levels: int) -> None:
        self.nodes += nodes
        if levels >= self.levels:
            self.levels = levels + 1


def _recursive_alias(document: str, event: AliasEvent) -> CatalogError:
    return CatalogError(
        document,
        _where(event.start_mark),
        f"the alias *{event.anchor} refers to a collection that contains it, so the document "
        "never ends; write the structure out (or use a $ref in an OpenAPI schema)",
    )


def _too_many_alias_nodes(
    document: str, event: AliasEvent, count: int, limits: DocumentLimits
) -> CatalogError:
    return CatalogError(
        document,
        _where(event.start_mark),
        f"the alias *{event.anchor} brings in {count:,} nodes, and aliases may bring in "
        f"{limits.max_alias_nodes:,} in all; write the repeated parts out, or use fewer "
        "aliases",
    )
