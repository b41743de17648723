"""What a query says about a tool call: the action (from the tool's description, or its name)
and one clause per argument, ready for the query templates to put into sentences.

The templates own the words around them (`in Lisbon`, `for 2 passengers`, `with weight 72.5`);
this module decides which kind of phrase fits each argument and turns values into text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from unified.model import Tool
from unified.values.value_kinds import identifier_words, name_words, word_set

MAX_ACTION_CHARS = 140
"""A description's first sentence longer than this reads badly in a query: use the name."""

VERBS = word_set(
    """get fetch retrieve find search list create add update delete remove calculate compute
    convert send post check validate verify generate return provide look query set upload
    download place log book cancel make show display play stop start run execute translate
    analyze analyse estimate predict determine solve count sum compare measure track lookup
    register subscribe unsubscribe order buy sell pay transfer schedule reserve modify edit
    change rename replace import export sort filter parse format encode decode summarize
    recommend suggest identify detect extract merge split draw plot read write open close save
    load share invite join leave approve reject assign archive restore reset notify receive
    monitor scan test evaluate rate review publish deploy build install configure enable disable
    connect sync map route locate navigate forecast record fill submit apply give tell describe
    explain simulate multiply divide subtract round integrate differentiate factor resolve
    discover browse view access obtain collect gather assess inspect reverse shorten lookup
    """
)
"""Words that start an imperative action phrase ("Find pet by ID")."""

VERB_FOR = {"return": "get", "provide": "get", "give": "get", "obtain": "get", "access": "get"}
"""Verbs that read better as another in a request ("Returns the list" -> "get the list")."""

_ARTICLE = r"\b(?:a|an|the|some|any)\s+"
_QUALIFIER = r"(?:(?:given|specified|specific|particular|certain|provided|single|input|target)\s+)?"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'])|\n|\s{2,}|\s+-\s+")
_PREAMBLE = re.compile(
    r"^(?:(?:this|the)\s+(?:function|tool|api|endpoint|operation|method|service)\s+"
    r"(?:will\s+|can\s+|is used to\s+|allows you to\s+|lets you\s+|helps you\s+)?"
    r"|(?:a\s+)?(?:function|tool|method)\s+(?:to|that|which)\s+"
    r"|(?:used|allows you|lets you|helps you|is used)\s+to\s+)",
    re.IGNORECASE,
)
_MARKUP = re.compile(r"[*`#_]{1,3}(?=\w)|(?<=\w)[*`#_]{1,3}|<[^>]+>")

ORIGIN_WORDS = frozenset({"origin", "source", "departure", "pickup", "from"})
DESTINATION_WORDS = frozenset({"destination", "dest", "arrival", "dropoff", "target", "to"})
PLACE_WORDS = frozenset({"city", "town", "location", "place", "region", "country", "venue"})
PLACE_WORDS |= {"address", "locality", "province", "state", "where", "area"}
START_WORDS = frozenset({"start", "begin", "since", "after", "checkin"})
END_WORDS = frozenset({"end", "finish", "until", "before", "checkout"})
UNIT_WORDS = frozenset({"unit", "units", "scale"})
LANGUAGE_WORDS = frozenset({"language", "lang", "locale"})
TOPIC_WORDS = frozenset({"query", "keyword", "keywords", "q", "search", "term", "topic"})
LIMIT_WORDS = frozenset({"limit", "max", "top"})
SETTING_KINDS = frozenset({"named", "flag"})
PLACE_ROLE_NOUNS = frozenset({"location", "city", "airport", "station", "place", "address"})
PLACE_ROLE_NOUNS |= {"code", "country", "port", "point", "currency", "language"}
"""Words that may follow origin/destination in a name ("from_city", "destination_airport")."""
TIME_ROLE_NOUNS = frozenset({"date", "time", "day", "year", "value", "index", "datetime"})
"""Words that may follow start/end in a name ("start_date", "end_index")."""
DATE_WORDS = frozenset({"date", "day", "when", "deadline"})
TIME_WORDS = frozenset({"time", "datetime", "timestamp"})


@dataclass(frozen=True)
class Clause:
    """One argument as a query says it: the name's words, the kind of phrase that fits
    (`place`, `origin`, `destination`, `date`, `time`, `start`, `end`, `unit`, `language`,
    `topic`, `count`, `limit`, `flag` or `named`), the value as text (several texts for a
    parallel ask's varying argument, or a list's items), and a flag's state."""

    name: str
    words: str
    kind: str
    texts: tuple[str, ...]
    on: bool = False


@dataclass(frozen=True)
class Ask:
    """One request in a query: the action phrase as parts (text, and clauses for arguments that
    took the place of a noun phrase such as "a given city"), the clauses of the other arguments
    that read as phrases of their own ("in Lisbon", `phrases`) and those that read as settings
    ("with weight 72.5", `settings`: kinds `named` and `flag`). `tool` names the tool asked."""

    tool: str
    parts: tuple[str | Clause, ...]
    phrases: tuple[Clause, ...]
    settings: tuple[Clause, ...]


def value_text(value: Any) -> str:
    """An argument value as a query writes it: strings as they are, numbers as JSON would."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, list) and all(_scalar(item) for item in value):
        return ", ".join(value_text(item) for item in value)
    return json.dumps(value, ensure_ascii=False)


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _base_verb(word: str) -> str:
    if word in VERBS:
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes", "zes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    if word.endswith("ed") and (word[:-1] in VERBS or word[:-2] in VERBS):
        return word[:-1] if word[:-1] in VERBS else word[:-2]
    return word


def first_sentence(description: str) -> str:
    """The first sentence of a description, without markup or a final full stop."""
    text = _MARKUP.sub("", description.strip())
    text = _SENTENCE_END.split(text, maxsplit=1)[0] if text else ""
    text = " ".join(text.split())
    return text.rstrip(" .:;,")


def _lower_first(word: str) -> str:
    if len(word) > 1 and (word[1].isupper() or word.isupper()):
        return word  # an acronym or a name in CamelCase
    return word[:1].lower() + word[1:]


def _title_cased(sentence: str) -> bool:
    """Whether every word is capitalized, as in many OpenAPI summaries ("Get Product Types")."""
    words = [word for word in sentence.split(" ") if word[:1].isalpha()]
    return len(words) >= 2 and all(word[0].isupper() for word in words)


@cache
def action_text(name: str, description: str) -> str:
    """The tool's action as an imperative phrase: "Calculates the area of a circle." ->
    "calculate the area of a circle"; a noun phrase gets "get"; no description: the name."""
    sentence = _PREAMBLE.sub("", first_sentence(description))
    if not sentence or len(sentence) > MAX_ACTION_CHARS:
        words = identifier_words(name.rsplit(".", 1)[-1]) or [name]
        sentence = " ".join(_lower_first(word) for word in words)
    if _title_cased(sentence):
        sentence = " ".join(_lower_first(word) for word in sentence.split(" "))
    first, _, rest = sentence.partition(" ")
    verb = _base_verb(first.lower())
    if verb in VERBS:
        verb = VERB_FOR.get(verb, verb)
        return f"{verb} {rest}".strip()
    return f"get {_lower_first(first)} {rest}".strip()


def clause_kind(name: str, value: Any) -> str:
    """The kind of phrase that fits an argument, from its name and value."""
    if isinstance(value, bool):
        return "flag"
    return _clause_kind(name, isinstance(value, int | float), isinstance(value, str))


# Checked in this order for string values: the first kind whose words the name uses wins.
_TEXT_KINDS = (
    ("place", PLACE_WORDS),
    ("date", DATE_WORDS),
    ("time", TIME_WORDS),
    ("unit", UNIT_WORDS),
    ("language", LANGUAGE_WORDS),
    ("topic", TOPIC_WORDS),
)


@cache
def _clause_kind(name: str, number: bool, text: bool) -> str:
    words = name_words(name)
    joined = "".join(words)
    tokens = set(words) | {joined}
    for kind, triggers, nouns in (
        ("origin", ORIGIN_WORDS, PLACE_ROLE_NOUNS),
        ("destination", DESTINATION_WORDS, PLACE_ROLE_NOUNS),
        ("start", START_WORDS, TIME_ROLE_NOUNS),
        ("end", END_WORDS, TIME_ROLE_NOUNS),
    ):
        if tokens & triggers and (joined in triggers or set(words) <= triggers | nouns):
            return kind
    for kind, words_of_kind in _TEXT_KINDS if text else ():
        if tokens & words_of_kind:
            return kind
    if number and tokens & LIMIT_WORDS:
        return "limit"
    plural = len(words) == 1 and words[0].endswith("s") and not words[0].endswith(("ss", "us"))
    if number and plural:
        return "count"
    return "named"


def _clause_texts(value: Any) -> tuple[str, ...]:
    if isinstance(value, list) and value and all(_scalar(item) for item in value):
        return tuple(value_text(item) for item in value)
    return (value_text(value),)


@cache
def _noun_pattern(name: str) -> re.Pattern[str] | None:
    """Finds "a given city" / "the specified country" for a parameter called city/country."""
    words = name_words(name)
    if not words or len("".join(words)) < 3:
        return None
    body = r"\s+".join(re.escape(word) for word in words)
    return re.compile(_ARTICLE + _QUALIFIER + body + r"s?\b", re.IGNORECASE)


def make_clause(name: str, values: Sequence[Any]) -> Clause:
    """The clause for argument `name` with one value, or several (a parallel ask's axis)."""
    first = values[0]
    texts = _clause_texts(first) if len(values) == 1 else tuple(value_text(v) for v in values)
    return Clause(
        name=name,
        words=" ".join(name_words(name)) or name,
        kind=clause_kind(name, first),
        texts=texts,
        on=first is True,
    )


def make_ask(tool: Tool, arguments: Mapping[str, Any], axis: Mapping[str, list[Any]]) -> Ask:
    """The ask for a call of `tool`; `axis` maps an argument to the several values that the
    parallel calls give it (empty for a single call)."""
    action = action_text(tool.name, tool.description)
    clauses = [make_clause(name, axis.get(name, [value])) for name, value in arguments.items()]
    spans: list[tuple[int, int, Clause]] = []
    for clause in clauses:
        # Only names read well in place of a noun phrase ("the capital of France"); a bare
        # number there loses its meaning ("the area of a circle given 41").
        values = axis.get(clause.name, [arguments[clause.name]])
        if not all(isinstance(value, str) for value in values):
            continue
        pattern = _noun_pattern(clause.name)
        found = pattern.search(action) if pattern is not None else None
        if found and all(found.end() <= s or found.start() >= e for s, e, _ in spans):
            spans.append((found.start(), found.end(), clause))
    parts: list[str | Clause] = []
    cursor = 0
    for start, end, clause in sorted(spans, key=lambda span: span[0]):
        parts += [action[cursor:start], clause]
        cursor = end
    parts.append(action[cursor:])
    placed = {id(clause) for _, _, clause in spans}
    rest = [clause for clause in clauses if id(clause) not in placed]
    return Ask(
        tool=tool.name,
        parts=tuple(p for p in parts if p != ""),
        phrases=tuple(c for c in rest if c.kind not in SETTING_KINDS),
        settings=tuple(c for c in rest if c.kind in SETTING_KINDS),
    )
