"""The grounding stage: every argument value of every call comes from the query.

A value is grounded when the query states it, in any of the forms real data writes it (case,
punctuation and spacing aside; `2,500`, `2.5k` or `two` for a number; `May 3rd 2024` or
`03/05/2024` for `2024-05-03`; `euros` for `EUR`, `the U.S.` for `United States`; `english` for
a query written in English), when a multi-word value shares most of its words with the query,
when a code abbreviates query words (`SD`, `DEN`), when it is the tool's documented default or a
value the parameter's description states, when it is an enum member and the query names it or
names none of them, or when a later step takes it from an earlier step's results. Booleans,
nulls, 0 and 1 are not judged (a query implies them more often than it writes them). A date the
query names only relatively (`tomorrow`, `next Monday`) grounds any date of an argument that
takes dates (by its format, name or description).

In a conversation (a sample with follow-up turns) a call's values may come from the user's
turns so far (the current one and every earlier one) or from any earlier result, of this turn
or an earlier one; the detail of a rejection in a follow-up turn names the turn.

The first value that is not grounded rejects the sample with `value_not_in_query`, naming the
call, the argument and the value. Needs no LLM; never raises on model output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from functools import cache, lru_cache
from typing import Any

import pycountry

from unified.constraints import language_of
from unified.model import Sample, Step, Tool
from verifiers.query_values import QueryText, as_dates, normalise, words
from verifiers.stages import SampleCheckStage, StageContext
from verifiers.verdict import Reason

STAGE = "grounding"
NOT_STATED = "is not stated in the query (nor a default of the tool, nor in an earlier result)"
"""What the detail of a rejection says of the value (after `call NAME: argument PATH = VALUE`)."""
SHARED_WORDS = 0.5
"""A value of several words is grounded when the query has at least this share of them."""


def ungrounded(sample: Sample, tools: Sequence[Tool]) -> str | None:
    """Why the sample's first ungrounded value is not grounded, or None when all are."""
    schemas = {tool.name: tool.parameters for tool in tools}
    evidence = ""
    for number, turn in enumerate(sample.conversation(), 1):
        evidence = f"{evidence} {turn.query}" if number > 1 else turn.query
        why = _ungrounded_turn(turn.steps, schemas, evidence)
        if why is not None:
            return why if number == 1 else f"turn {number}: {why}"
        for step in turn.steps:
            if step.results:
                evidence += " " + " ".join(
                    json.dumps(result, default=str) for result in step.results
                )
    return None


def _ungrounded_turn(
    steps: Sequence[Step], schemas: dict[str, dict[str, Any]], evidence: str
) -> str | None:
    """Why the first ungrounded value of one turn's steps is not grounded by `evidence` (what
    the user said so far and the results before) and the results of its earlier steps."""
    for step in steps:
        known = QueryText(evidence)
        for call in step.tool_calls:
            if not isinstance(call.arguments, dict):
                continue  # the format stage rejects arguments that are not an object
            parameters = schemas.get(call.name, {})
            for path, value, schema in _leaves(call.arguments, parameters, ""):
                if not _grounded(value, schema, known, _holds_a_date(path, schema)):
                    return f"call {call.name}: argument {path} = {_shown(value)} {NOT_STATED}"
        if step.results:
            evidence += " " + " ".join(json.dumps(result, default=str) for result in step.results)
    return None


def _leaves(value: Any, schema: dict[str, Any], path: str) -> Iterator[tuple[str, Any, Any]]:
    """(path, value, its schema) of every scalar in `value`; objects and arrays walked."""
    if isinstance(value, dict):
        properties = schema.get("properties") if isinstance(schema, dict) else None
        properties = properties if isinstance(properties, dict) else {}
        for key, item in value.items():
            yield from _leaves(item, properties.get(key, {}), f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        items = schema.get("items", {}) if isinstance(schema, dict) else {}
        for position, item in enumerate(value):
            yield from _leaves(
                item, items if isinstance(items, dict) else {}, f"{path}[{position}]"
            )
    else:
        yield path, value, schema if isinstance(schema, dict) else {}


def _grounded(value: Any, schema: dict[str, Any], query: QueryText, dated: bool) -> bool:
    if value is None or isinstance(value, bool):
        return True
    if "default" in schema and value == schema["default"]:
        return True
    enum = schema.get("enum")
    if isinstance(enum, list) and value in enum:
        return _named(value, query) or not any(_named(member, query) for member in enum)
    if _documented(value, schema):
        return True
    if isinstance(value, int | float):
        return value in TRIVIAL_NUMBERS or query.states_number(float(value))
    if isinstance(value, str):
        return _text_grounded(value, query, dated)
    return True


_DATE_WORDS = re.compile(
    r"date|day|time|when|period|start|end|from|until|since|deadline|schedule|month|week|year"
    r"|historical|check.?in|check.?out",
    re.IGNORECASE,
)


def _holds_a_date(path: str, schema: dict[str, Any]) -> bool:
    """The argument takes a date by its schema's format, or its name or description speaks of
    one: only then does a date the query names relatively (`this weekend`) ground it."""
    if schema.get("format") in ("date", "date-time", "time"):
        return True
    name = re.split(r"[.\[]", path)[-1]
    description = schema.get("description")
    return bool(
        _DATE_WORDS.search(name + " " + (description if isinstance(description, str) else ""))
    )


TRIVIAL_NUMBERS = (0, 1)
"""Numbers a query implies more often than it writes them (`from rest`, `a bag`)."""


def _named(member: Any, query: QueryText) -> bool:
    if isinstance(member, str):
        return _text_grounded(member, query)
    return isinstance(member, int | float) and query.states_number(float(member))


def _documented(value: Any, schema: dict[str, Any]) -> bool:
    """The parameter's description states the value (`defaults to 'units'`, `e.g. 0.5`)."""
    description = schema.get("description")
    if not isinstance(description, str) or not description:
        return False
    text = _description_text(description)
    if isinstance(value, str):
        return text.states_text(value)
    return isinstance(value, int | float) and text.states_number(float(value))


@lru_cache(maxsize=4096)  # rows may carry tools of their own: bounded
def _description_text(description: str) -> QueryText:
    """A parameter's description read once per process (it is the same for every sample)."""
    return QueryText(description)


def _text_grounded(value: str, query: QueryText, dated: bool = True) -> bool:
    if query.states_text(value):
        return True
    number = _as_number(value)
    if number is not None:
        return query.states_number(number)
    days = as_dates(value)
    if days and ((dated and query.relative_dates) or any(query.states_date(day) for day in days)):
        return True
    if any(query.states_text(alias) for alias in aliases(value)):
        return True
    if normalise(value) in _LANGUAGE_NAMES and _names_the_query_language(value, query):
        return True
    value_words = words(value)
    if len(value_words) == 1:
        word = value_words[0]
        return query.has_word(word) or (value.isupper() and query.abbreviates(word))
    if query.share_of_words(value) >= SHARED_WORDS:
        return True
    first, _, rest = value.partition(",")
    return bool(rest) and _text_grounded(first, query, dated)


_LANGUAGE_NAMES = {
    "english": "English",
    "en": "English",
    "en us": "English",
    "french": "French",
    "fr": "French",
    "german": "German",
    "de": "German",
    "spanish": "Spanish",
    "es": "Spanish",
    "italian": "Italian",
    "it": "Italian",
    "portuguese": "Portuguese",
    "pt": "Portuguese",
}
"""Language names and codes a value may give, by the name `language_of` uses."""


def _names_the_query_language(value: str, query: QueryText) -> bool:
    """The value names the language the query is written in (`english` for an English one)."""
    return language_of(query.query) == _LANGUAGE_NAMES[normalise(value)]


def _as_number(value: str) -> float | None:
    try:
        return float(value.replace(",", ""))
    except ValueError:
        return None


@lru_cache(maxsize=8192)  # keyed by argument values: unbounded over a worker's life
def aliases(value: str) -> tuple[str, ...]:
    """Other names of a country, a subdivision or a currency `value` names (by name or code)."""
    key = normalise(value)
    return _alias_table().get(key, ())


@cache
def _alias_table() -> dict[str, tuple[str, ...]]:
    groups: list[set[str]] = []
    for country in pycountry.countries:
        names = {country.alpha_2, country.alpha_3, country.name}
        names |= {getattr(country, attr, "") for attr in ("common_name", "official_name")}
        groups.append({name for name in names if name})
    for currency in pycountry.currencies:
        groups.append({currency.alpha_3, currency.name, currency.name.split()[-1]})
    for subdivision in pycountry.subdivisions:
        code = subdivision.code.split("-", 1)[1]
        if code.isalpha() and len(code) == 2 and subdivision.country_code in {"US", "CA", "AU"}:
            groups.append({code, subdivision.name})
    groups += [set(names) for names in _EXTRA_NAMES]
    table: dict[str, set[str]] = {}
    for group in groups:
        for name in group:
            table.setdefault(normalise(name), set()).update(group - {name})
    return {key: tuple(sorted(names)) for key, names in table.items()}


_EXTRA_NAMES = (
    ("United States", "US", "USA", "U.S.", "U.S.A.", "America", "United States of America"),
    ("United Kingdom", "UK", "GB", "Britain", "Great Britain", "England"),
    ("USD", "dollar", "dollars", "US dollars"),
    ("EUR", "euro", "euros"),
    ("GBP", "pound", "pounds", "sterling"),
    ("JPY", "yen"),
    ("celsius", "C", "°C", "centigrade"),
    ("fahrenheit", "F", "°F"),
    ("kilometers", "km", "kilometres"),
    ("meters", "m", "metres", "meter", "metre"),
    ("centimeters", "cm", "centimetres"),
    ("miles", "mi"),
    ("kilograms", "kg"),
    ("pounds", "lb", "lbs"),
    *(
        (month, month[:3], *(["Sept"] if month == "September" else []))
        for month in (
            "January",
            "February",
            "March",
            "April",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        )
    ),
)
"""Names real queries use that pycountry does not give: colloquial country names, currency
words, unit words and their symbols, month names and their abbreviations."""


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


class GroundingStage(SampleCheckStage):
    """Rejects a sample with an argument value its query does not state (`value_not_in_query`)."""

    name = STAGE
    judges_conversations = True

    def problem(self, sample: Sample, context: StageContext) -> tuple[str, str] | None:
        why = ungrounded(sample, context.tools_for(sample))
        return None if why is None else (Reason.value_not_in_query, why)
