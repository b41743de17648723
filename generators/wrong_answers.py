"""Schema-valid wrong answers made from right samples: what a verifier of meaning, or a judge
being calibrated, must reject although the format check passes them.

Each kind is seeded and made from one right sample with the others as its pool: a value swapped
for another sample's value of the same type or a number changed, the query swapped for another
sample's or for junk, a parallel call dropped, a call repeated with other values, every call
dropped (an irrelevance answer where a tool fits). A kind returns None where it does not apply.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from unified.model import Sample, Step

JUNK_QUERIES = ("{", ",", "[A-Z]{3}$", "hello", "What is the binary sum of 10010 and 11101?")
"""Queries a weak generator writes: punctuation, a regex, a greeting, an unrelated question."""


class WrongAnswers:
    """Wrong answers made from `rows` (right samples), seeded."""

    def __init__(self, rows: Sequence[Sample], seed: int) -> None:
        self.rows = list(rows)
        self.rng = random.Random(seed)
        self.strings = [
            value
            for sample in self.rows
            for call in sample.tool_calls()
            for _, value in leaves(call.arguments)
            if isinstance(value, str) and len(value) > 2
        ]

    def makers(self) -> dict[str, Callable[[Sample], Sample | None]]:
        """Each kind of wrong answer by its name."""
        return {
            "a value swapped or a number changed": self.value_swapped,
            "the query of another row": self.query_of_another_row,
            "a junk query": self.junk_query,
            "a parallel call dropped": self.call_dropped,
            "a call repeated with other values": self.call_repeated,
            "every call dropped (no tool fits, it says)": self.calls_dropped,
        }

    def value_swapped(self, sample: Sample) -> Sample | None:
        calls = list(sample.tool_calls())
        if not calls:
            return None
        position = self.rng.randrange(len(calls))
        call = calls[position]
        scalars = [
            (path, value)
            for path, value in leaves(call.arguments)
            if isinstance(value, str | int | float) and not isinstance(value, bool)
        ]
        if not isinstance(call.arguments, dict) or not scalars:
            return None
        path, value = self.rng.choice(scalars)
        if isinstance(value, str):
            if not self.strings:
                return None
            new: Any = self.rng.choice(self.strings)
        elif isinstance(value, int):
            new = value * 3 + 17
        else:
            new = round(value * 3.7 + 1.3, 3)
        if new == value:
            return None
        calls[position] = call.model_copy(
            update={"arguments": _replaced(call.arguments, path, new)}
        )
        return with_calls(sample, calls)

    def query_of_another_row(self, sample: Sample) -> Sample | None:
        other = self.rng.choice(self.rows)
        if other.query == sample.query:
            return None
        return sample.model_copy(update={"query": other.query})

    def junk_query(self, sample: Sample) -> Sample | None:
        return sample.model_copy(update={"query": self.rng.choice(JUNK_QUERIES)})

    def call_dropped(self, sample: Sample) -> Sample | None:
        calls = list(sample.tool_calls())
        if len(calls) < 2:
            return None
        calls.pop(self.rng.randrange(len(calls)))
        return with_calls(sample, calls)

    def calls_dropped(self, sample: Sample) -> Sample | None:
        return with_calls(sample, []) if sample.tool_calls() else None

    def call_repeated(self, sample: Sample) -> Sample | None:
        if not sample.tool_calls():
            return None
        call = self.rng.choice(sample.tool_calls())
        other = self.value_swapped(with_calls(sample, [call]))
        if other is None:
            return None
        return with_calls(sample, [*sample.tool_calls(), *other.tool_calls()])


def with_calls(sample: Sample, calls: list[Any]) -> Sample:
    """`sample` answered by `calls` in one step (results and final answer dropped)."""
    return sample.model_copy(update={"steps": [Step(tool_calls=calls)]})


def leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """(path, scalar) of every scalar in a JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*path, key))
    elif isinstance(value, list):
        for position, item in enumerate(value):
            yield from leaves(item, (*path, position))
    else:
        yield path, value


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    changed = copy.deepcopy(value)
    place = changed
    for key in path[:-1]:
        place = place[key]
    place[path[-1]] = new
    return changed
