"""The coverage stage: the calls do all the query asks, once.

- `duplicate_call`: the same call (name and arguments) is made twice in one step.
- `missing_call`: a sample that calls nothing (irrelevance) while an offered tool fits the
  query (`verifiers.tool_fit` says when one does).
- `extra_call`: a call tied to the query by numbers alone: its tool shares no word with the
  query and it takes no string the query gives (`math.factorial(5)` for "the next five matches
  of Manchester United").
- `query_value_unused`: a value the query lists for the calls — a number, a quoted string, or
  a capitalised name joined to a used one by `and`, `or` or a list's commas (`Berlin and
  Madrid`) — appears in no argument of any call while the value before or after it in the query
  does (a parallel request with one call missing, or a call that dropped an argument the user
  gave). A value that stands alone (`I am 30`, `5 friends`) is taken for context, and a count
  equal to the number of calls (`2 cities`) is spared. The digits of an id joined by hyphens
  (`6e114422-e815-4868-9c26-887615406378`) are no numbers, nor is anything that reads as
  infinite (`6e114422` as an exponent).

In a conversation each turn is judged on its own: its calls against its user message (a
follow-up turn without user text is passed over); the detail names the turn.

Needs no LLM; never raises on model output.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

from unified.model import Sample, Tool
from verifiers.grounding import aliases
from verifiers.query_values import (
    DATE_CANDIDATES,
    QueryText,
    normalise,
    words,
    written_numbers,
)
from verifiers.stages import SampleCheckStage, StageContext
from verifiers.tool_fit import distinctive, fitting_tool, tied_to_query
from verifiers.verdict import Reason

STAGE = "coverage"
_QUOTED = re.compile(
    r"(?<!\w)(?:\"([^\"]{2,80})\"|'([^']{2,80})'|\u201c([^\u201d]{2,80})\u201d"
    r"|\u2018([^\u2019]{2,80})\u2019)(?!\w)(?!\s*:)"
)
"""A quoted value; a quoted key (`'name': ...`) is left out."""
_NOT_A_VALUE = re.compile(
    r"\d+(?:st|nd|rd|th)\b|\^\s?\d+|\b\d{1,2}:\d{2}\b|\b(?:19|20)\d{6}\b"
    r"|\b\d+\s?(?:ft|feet|foot|')\s?\d+\s?(?:in|inches|\")?"
    r"|\b\d+(?:\.\d+){2,}\b|\b\d+\s?x\s?\d+\b"
    r"|\b(?:type|version|phase|chapter|class|generation|world war)\s?\d+\b",
    re.IGNORECASE,
)
"""Numbers that are not values a call takes as written: ordinals, exponents, clock times,
compact dates, heights in feet and inches, versions and addresses (`6.3.1`), sizes (`2x2`),
numbers that name a kind (`type 2 diabetes`, `version 3`)."""
_HYPHENATED_ID = re.compile(r"(?<![\w-])[^\W_]+(?:-[^\W_]+)+(?![\w-])")
"""Letters and digits joined by hyphens: a UUID, `A1-B2`, also `COVID-19` and `5-10`."""
_LETTER_THEN_DIGIT = re.compile(r"[^\W\d_][^\W_]*\d")
TRIVIAL_NUMBERS = (0, 1)
"""Numbers a query writes without asking a call to take them (`= 0` in an equation)."""


def uncovered(sample: Sample, tools: Sequence[Tool] = ()) -> tuple[Reason, str] | None:
    """Why the calls do not cover the query (reason and detail), or None when they do; `tools`
    are those offered (default: the sample's own)."""
    for step in sample.steps:
        seen: set[str] = set()
        for call in step.tool_calls:
            key = f"{call.name}:{json.dumps(call.arguments, sort_keys=True, default=str)}"
            if key in seen:
                return (
                    Reason.duplicate_call,
                    f"call {call.name} is made twice with the same arguments",
                )
            seen.add(key)
    calls = sample.tool_calls()
    if not calls:
        fitting = fitting_tool(sample.query, tools or sample.tools)
        if fitting is None:
            return None
        return (
            Reason.missing_call,
            f"tool {fitting.name} fits the query, which no call makes; a sample calls nothing only "
            "when no offered tool fits",
        )
    offered = {tool.name: tool for tool in tools or sample.tools}
    asked = distinctive(sample.query)
    for call in calls:
        tool = offered.get(call.name)
        if tool is not None and not tied_to_query(tool, call.arguments, sample.query, asked):
            return (
                Reason.extra_call,
                f"call {call.name} is not asked for: its tool shares no word with the query, "
                "and it takes no value the query gives but numbers",
            )
    used = _Used([call.arguments for call in calls])
    names = {tool.name for tool in sample.tools} | {call.name for call in calls}
    names |= {
        parameter
        for tool in tools or sample.tools
        if isinstance(properties := tool.parameters.get("properties"), dict)
        for parameter in properties
    }
    numbers = [
        forms
        for forms in _value_numbers(_without_names(sample.query, tools or sample.tools))
        if not forms & set(TRIVIAL_NUMBERS) and len(calls) not in forms
    ]
    number_used = [any(used.has_number(form) for form in forms) for forms in numbers]
    for position, forms in enumerate(numbers):
        if not number_used[position] and _beside_a_used_one(number_used, position):
            shown = _shown_number(min(forms, key=abs))
            return Reason.query_value_unused, f"the query states {shown}, which no call uses"
    quoted = [
        text
        for groups in _QUOTED.findall(sample.query)
        if (text := next(group for group in groups if group)) not in names
    ]
    quoted_used = [used.has_text(text) for text in quoted]
    for position, text in enumerate(quoted):
        if not quoted_used[position] and _beside_a_used_one(quoted_used, position):
            return Reason.query_value_unused, f"the query states '{text}', which no call uses"
    for value in used.strings:
        for runs in listed_beside(sample.query, value):
            if not any(used.has_text(run) for run in runs):
                return (
                    Reason.query_value_unused,
                    f"the query lists '{runs[-1]}' beside '{value}', which no call uses",
                )
    return None


_WORD_JOINT = r"\s*,?\s+(?:and|or|&|as well as)\s+"
_COMMA = r"\s*,\s*"
_ITEM = r"[^\W\d_][\w'.-]*(?:\s+[^\W\d_][\w'.-]*){0,3}"
_AFTER = re.compile(
    rf"^(?:(?P<word>{_WORD_JOINT})|{_COMMA})(?P<item>{_ITEM})(?P<more>{_COMMA}|{_WORD_JOINT})?"
)
_BEFORE = re.compile(rf"(?P<item>{_ITEM})(?:(?P<word>{_WORD_JOINT})|{_COMMA})$")
_ITEM_REACH = 120
"""Characters before a value an item and its joint can take (four words and `, and`)."""
_LIST_GOES_ON = re.compile(rf"^(?:{_COMMA}|{_WORD_JOINT})")
NOT_AN_ITEM = frozenset(
    [
        "a", "an", "the", "then", "also", "get", "find", "tell", "give", "show", "what", "how",
        "which", "who", "where", "when", "why", "i", "i'm", "i'd", "i'll", "i've", "me", "my",
        "you", "your", "it", "its", "their", "his", "her", "our", "we", "they", "to", "in",
        "for", "with", "on", "at", "of", "from", "by", "is", "are", "can", "could", "would",
        "please", "so", "but", "if", "as", "all", "any", "each", "both", "next", "last",
        "this", "that", "these", "those", "there", "here", "and", "or", "lastly", "finally",
        "additionally", "furthermore", "secondly", "thirdly", "first", "second", "third",
    ]
)  # fmt: skip
"""Capitalised words that start a clause, not another item of a list."""


def listed_beside(query: str, value: str) -> list[list[str]]:
    """The capitalised items the query lists right before and after a capitalised `value`
    (`Berlin and Madrid`: Madrid beside Berlin), each as its word runs nearest the value first
    (`Personal Info` gives `Info`, then `Personal Info`): a list item is used when one of them
    is. A comma joins list items only where the list goes on past them (`Paris, Rome and
    Oslo`), and a region after a comma (`Austin, Texas`, `Paris, France`) is the place's own."""
    found = []
    for match in _whole(value).finditer(query):
        if not match.group(0)[:1].isupper():
            continue
        rest = query[match.end() :]
        after = _AFTER.match(rest)
        if after is not None and (after["word"] or after["more"]):
            found.append(_capitalised_runs(after["item"].split(), backwards=False))
        before = _BEFORE.search(query[max(0, match.start() - _ITEM_REACH) : match.start()])
        if before is not None and (before["word"] or _LIST_GOES_ON.match(rest)):
            found.append(_capitalised_runs(before["item"].split(), backwards=True))
    return [runs for runs in found if runs and not _a_region_after_a_comma(query, runs[-1])]


def _capitalised_runs(words_of_item: list[str], backwards: bool) -> list[str]:
    """The runs of capitalised words next to the value (at the item's end when it comes
    `backwards`, before the value), none of them a clause word, without a possessive or a full
    stop, shortest first: `Personal Info` before a value gives `Info`, then `Personal Info`."""
    taken: list[str] = []
    for word in reversed(words_of_item) if backwards else words_of_item:
        if not word[:1].isupper() or word.casefold() in NOT_AN_ITEM:
            break
        taken.append(word.removesuffix("'s").removesuffix("'").rstrip("."))
    runs = [taken[:size] for size in range(1, len(taken) + 1)]
    return [" ".join(reversed(run) if backwards else run) for run in runs]


def _a_region_after_a_comma(query: str, item: str) -> bool:
    return bool(aliases(item)) and bool(
        re.search(rf"[A-Z][\w.]*,\s*{re.escape(item)}(?!\w)", query)
    )


@lru_cache(maxsize=4096)  # values are unbounded over a worker's life; keep the recent ones
def _whole(value: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(value)}(?!\w)", re.IGNORECASE)


def _beside_a_used_one(used: list[bool], position: int) -> bool:
    """The value before or after this one in the query is used: the query lists values for the
    calls, and this one was left out (a number the query only mentions stands alone)."""
    return any(0 <= other < len(used) and used[other] for other in (position - 1, position + 1))


def _without_names(query: str, tools: Sequence[Tool]) -> str:
    """The query without the parameter names it writes out whose digits are not values
    (`side 1` for `side1`, `year 2` for `year2`)."""
    for tool in tools:
        properties = tool.parameters.get("properties", {})
        for name in properties if isinstance(properties, dict) else ():
            pattern = _name_pattern(name)
            if pattern is not None:
                query = pattern.sub(" ", query)
    return query


@lru_cache(maxsize=4096)
def _name_pattern(name: str) -> re.Pattern[str] | None:
    """A parameter name with digits as a query may write it (`side1`: `side 1`), else None."""
    if not any(ch.isdigit() for ch in name):
        return None
    spelled = r"\W*".join(re.escape(word) for word in words(name))
    return re.compile(rf"\b{spelled}\b", re.IGNORECASE)


def _value_numbers(query: str) -> list[set[float]]:
    """The numbers the query writes as values (its dates, ordinals, exponents and clock times
    left out), each with the forms a value may take it in."""
    text = DATE_CANDIDATES.sub(" ", _NOT_A_VALUE.sub(" ", query))
    text = _HYPHENATED_ID.sub(_without_id, text)
    return [forms for forms in written_numbers(text) if all(map(math.isfinite, forms))]


def _without_id(match: re.Match[str]) -> str:
    """A hyphen-joined token with a part that has a digit after a letter (`4a5b`, `6e114422`)
    is an id, not numbers; one without (`COVID-19`, `5-10`, `3-day`) keeps its numbers."""
    token = match.group(0)
    return " " if any(_LETTER_THEN_DIGIT.search(part) for part in token.split("-")) else token


def _shown_number(number: float) -> str:
    return str(int(number)) if number.is_integer() else str(number)


class _Used:
    """The values the calls' arguments hold, in the forms the query may state them."""

    def __init__(self, arguments: Sequence[Any]) -> None:
        scalars = list(_scalars(arguments))
        self.text = QueryText(" ".join(str(value) for value in scalars))
        self.numbers = {abs(float(v)) for v in scalars if isinstance(v, int | float)}
        self.numbers |= {abs(n) for n in self.text.numbers if math.isfinite(n)}
        self.strings = sorted(
            {value for value in scalars if isinstance(value, str) and len(value) > 1}
        )

    def has_number(self, number: float) -> bool:
        size = abs(number)
        return any(abs(size - used) <= 1e-9 * max(1.0, used) for used in self.numbers) or any(
            abs(size * factor - used) <= 1e-9 * max(1.0, used)
            for used in self.numbers
            for factor in (0.01, 100, 60, 1000, 0.001)
        )

    def has_text(self, text: str) -> bool:
        return self.text.states_text(text) or normalise(text) in self.text.normalised


def _scalars(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _scalars(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _scalars(item)
    elif value is not None and not isinstance(value, bool):
        yield value


class CoverageStage(SampleCheckStage):
    """Rejects a sample whose calls leave out what the query asks or repeat a call."""

    name = STAGE
    judges_conversations = True

    def problem(self, sample: Sample, context: StageContext) -> tuple[str, str] | None:
        tools = context.tools_for(sample)
        if not sample.is_multi_turn():
            return uncovered(sample, tools)
        for number, turn in enumerate(sample.conversation(), 1):
            if number > 1 and not turn.query.strip():
                continue  # a follow-up turn without user text asks nothing
            view = sample.model_copy(update={"query": turn.query, "steps": turn.steps, "turns": []})
            found = uncovered(view, tools)
            if found is not None:
                return found[0], f"turn {number}: {found[1]}"
        return None
