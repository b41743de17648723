"""Whether an offered tool fits a query: what makes an irrelevance sample (one that calls
nothing) wrong; and whether a call is tied to its query at all.

A tool fits when either
- every distinctive word of its name (`get_weather`: weather) is among the query's, and with
  its description's first sentence it shares two words or more with the query; or
- the query shares three distinctive words or more with its name, description and parameter
  names together, a third of its name's words at least among them (or two words, two thirds of
  its name's), and states something for three quarters or more of its required parameters:
  names the parameter, writes a number for a numeric one, names an enum member, or holds a
  name, a quoted text or a figure for a string; or
- every distinctive word of its name is in the query, and the query states something for every
  one of its two or more required parameters (`a flight from Oslo to Madrid this Friday` for
  `search_flights(origin, destination, date)`).

Words are stemmed and compared without the generic ones (`get`, `the`, `number`...). The
thresholds were set on BFCL's data: its irrelevance questions (close to a tool, answered by
none) against its questions that a tool answers (tests/bench/bench_meaning.py measures both).
Pure; needs no LLM.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

from unified.model import Tool
from verifiers.query_values import UNSPACED_SCRIPT, QueryText, stem, words

SHARED_WORDS = 3
"""Distinctive words the query shares with the tool's name, description and parameter names."""
NAME_SHARE = 1 / 3
"""The share of the tool's name's distinctive words the query must have among those."""
STATED_SHARE = 0.75
"""The share of required parameters the query must state something for."""
GENERIC_WORDS = frozenset(
    [
        "get",
        "find",
        "calculate",
        "compute",
        "list",
        "search",
        "retrieve",
        "given",
        "give",
        "return",
        "returns",
        "the",
        "a",
        "an",
        "of",
        "for",
        "to",
        "in",
        "on",
        "and",
        "or",
        "with",
        "by",
        "from",
        "is",
        "are",
        "be",
        "this",
        "that",
        "it",
        "its",
        "at",
        "as",
        "which",
        "what",
        "how",
        "per",
        "using",
        "use",
        "used",
        "based",
        "specific",
        "provided",
        "certain",
        "number",
        "value",
        "values",
        "data",
        "info",
        "information",
        "details",
        "detail",
        "type",
        "name",
        "new",
        "set",
        "make",
        "create",
        "check",
        "current",
        "total",
    ]
)
"""Words a tool's name or description shares with many queries without fitting them."""
_STRING_SOURCE = re.compile(r"[A-Z][a-z]+|'[^']+'|\"[^\"]+\"|\d")
"""What a string argument can be taken from: a capitalised name, a quoted text, a figure."""
_NUMERIC = frozenset(["integer", "number", "float"])


def fitting_tool(query: str, tools: Sequence[Tool]) -> Tool | None:
    """The first of `tools` that fits `query`, or None when none does."""
    text = QueryText(query)
    asked = distinctive(query)
    return next((tool for tool in tools if _fits(tool, asked, text)), None)


def tied_to_query(
    tool: Tool, arguments: Any, query: str, asked: frozenset[str] | None = None
) -> bool:
    """The call is tied to the query by more than numbers: its tool shares a word (or the first
    six letters of one: `multiply`, `multiplication`) with it, or it takes a string the query
    gives (not its default, nor an enum member the query does not name). A query written
    without spaces between words (Chinese, Thai...) shares no words to compare: always tied.
    `asked`: the query's `distinctive` words, when the caller has them already."""
    if UNSPACED_SCRIPT.search(query):
        return True
    named, described, parameters = _tool_words(tool)
    asked = distinctive(query) if asked is None else asked
    if _prefixes(named | described | parameters) & _prefixes(asked):
        return True
    text = QueryText(query)
    return any(True for _ in _given_strings(arguments, tool.parameters, text))


def _prefixes(stems: frozenset[str]) -> set[str]:
    return {stem[:6] for stem in stems}


def _given_strings(value: Any, schema: Any, text: QueryText) -> Iterator[str]:
    """The string values in `value` the user gave: not the schema's default, not an enum
    member unless the query names it."""
    schema = schema if isinstance(schema, dict) else {}
    if isinstance(value, dict):
        properties = schema.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        for key, item in value.items():
            yield from _given_strings(item, properties.get(key), text)
    elif isinstance(value, list):
        for item in value:
            yield from _given_strings(item, schema.get("items"), text)
    elif (
        isinstance(value, str)
        and len(value) > 1
        and value != schema.get("default")
        and (not schema.get("enum") or text.states_text(value))
    ):
        yield value


def distinctive(text: str) -> frozenset[str]:
    """The stemmed words of `text` without the generic ones."""
    return frozenset(stem(word) for word in words(text)) - GENERIC_WORDS


def _fits(tool: Tool, asked: frozenset[str], text: QueryText) -> bool:
    named, described, parameters = _tool_words(tool)
    if not named:
        return False
    if named <= asked and len((named | described) & asked) >= 2:
        return True
    stated = _stated_share(tool, asked, text)
    if named <= asked and _required_count(tool) >= 2 and stated == 1:
        return True
    shared = len((named | described | parameters) & asked)
    name_share = len(named & asked) / len(named)
    close = (shared >= SHARED_WORDS and name_share >= NAME_SHARE) or (
        shared >= SHARED_WORDS - 1 and name_share >= 2 * NAME_SHARE
    )
    return close and stated >= STATED_SHARE


def _tool_words(tool: Tool) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """The distinctive words of a tool's name, its description's first sentence and its
    parameter names."""
    properties = tool.parameters.get("properties")
    names = tuple(properties) if isinstance(properties, dict) else ()
    return _words_of(tool.name, tool.description or "", names)


@lru_cache(maxsize=4096)  # rows may carry tools of their own: bounded
def _words_of(
    name: str, description: str, parameter_names: tuple[str, ...]
) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    first_sentence = re.split(r"(?<=[.!?])\s", description)[0]
    parameters: frozenset[str] = frozenset()
    for parameter in parameter_names:
        parameters |= distinctive(_split_camel(str(parameter)))
    return distinctive(_split_camel(name)), distinctive(first_sentence), parameters


def _split_camel(name: str) -> str:
    return re.sub(r"([a-z])([A-Z])", r"\1 \2", name)


def _required_count(tool: Tool) -> int:
    required = tool.parameters.get("required")
    return len(required) if isinstance(required, list) else 0


def _stated_share(tool: Tool, asked: frozenset[str], text: QueryText) -> float:
    """The share of the tool's required parameters (all of them when it requires none) that
    the query states something for."""
    properties = tool.parameters.get("properties")
    if not isinstance(properties, dict):
        return 0.0
    required = tool.parameters.get("required")
    names = [name for name in required if name in properties] if isinstance(required, list) else []
    names = names or list(properties)
    if not names:
        return 1.0
    stated = sum(_states_parameter(name, properties[name], asked, text) for name in names)
    return stated / len(names)


def _states_parameter(name: str, schema: Any, asked: frozenset[str], text: QueryText) -> bool:
    if distinctive(_split_camel(str(name))) & asked:
        return True
    if not isinstance(schema, dict):
        return False
    members = schema.get("enum")
    if isinstance(members, list) and members:
        return any(isinstance(member, str) and text.states_text(member) for member in members)
    kind = schema.get("type")
    if kind in _NUMERIC:
        return bool(text.numbers)
    if kind == "string":
        return bool(_STRING_SOURCE.search(text.query[1:]))
    return False
