"""Task blueprints of the multi_turn style (APIGen-MT): what the simulated user wants and the
ground-truth calls, turn by turn, checked by running them on the catalog's mock API.

A blueprint is `{"intent", "turns": [{"request", "calls": [{"name", "arguments"}]}],
"outcome"}`: the user's whole goal, what the user asks for in each turn with the calls that
fulfil it, and what the user has at the end. It is validated before any dialogue: its calls run
in order on one mock of the sample's tools (`generators.tool_api`), so a call that names an
unknown tool or whose arguments break the tool's schema (or that a stateful mock refuses)
rejects it, with the mock's reason code. The sample keeps it, with each call's mock result, in
`meta.extra["blueprint"]`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from generators.llm.answer_calls import read_call
from generators.tool_api import ToolCaller
from llm.output import Unparseable, parse_object
from unified.model import ToolCall


@dataclass
class BlueprintTurn:
    """One turn of a blueprint: the user's request and the calls that fulfil it, with their
    mock results once validated."""

    request: str
    calls: list[ToolCall]
    results: list[Any] = field(default_factory=list)


@dataclass
class Blueprint:
    """A task blueprint: the user's intent, its turns, and the expected outcome."""

    intent: str
    turns: list[BlueprintTurn]
    outcome: str

    def calls(self) -> list[ToolCall]:
        """Every call of every turn, in order."""
        return [call for turn in self.turns for call in turn.calls]

    def as_dict(self) -> dict[str, Any]:
        """The blueprint as `meta.extra["blueprint"]` keeps it (results once validated)."""
        return {
            "intent": self.intent,
            "turns": [
                {
                    "request": turn.request,
                    "calls": [{"name": c.name, "arguments": c.arguments} for c in turn.calls],
                    "results": list(turn.results),
                }
                for turn in self.turns
            ],
            "outcome": self.outcome,
        }


def parse_blueprint(text: str) -> Blueprint:
    """The blueprint in an LLM answer; `Unparseable` says what is missing or malformed."""
    return read_blueprint(parse_object(text, {"intent": str, "turns": list, "outcome": str}))


def read_blueprint(data: dict[str, Any]) -> Blueprint:
    """A blueprint from its JSON object (an LLM's answer, or `Blueprint.as_dict()`);
    `Unparseable` says what is missing or malformed."""
    intent, turns, outcome = data.get("intent"), data.get("turns"), data.get("outcome")
    if not isinstance(intent, str) or not isinstance(outcome, str) or not isinstance(turns, list):
        raise Unparseable("the blueprint lacks a string 'intent' or 'outcome' or a list 'turns'")
    if not turns:
        raise Unparseable("the blueprint has no turns")
    read = []
    for number, item in enumerate(turns, 1):
        if not isinstance(item, dict):
            raise Unparseable(f"blueprint turn {number} is not an object")
        request, calls = item.get("request"), item.get("calls")
        if not isinstance(request, str) or not isinstance(calls, list):
            raise Unparseable(f"blueprint turn {number} lacks a string 'request' or list 'calls'")
        if not calls:
            raise Unparseable(f"blueprint turn {number} makes no call")
        made = [read_call(c, f"call {n} of blueprint turn {number}") for n, c in enumerate(calls)]
        results = item.get("results")
        read.append(BlueprintTurn(request.strip(), made, list(results or [])))
    return Blueprint(intent.strip(), read, outcome.strip())


def validate_blueprint(blueprint: Blueprint, mock: ToolCaller) -> str | None:
    """Run the blueprint's calls in order on `mock`, recording each result in its turn; the
    first refused call's problem (`turn T, call C ('name'): reason: detail`), or None."""
    index = 0
    for number, turn in enumerate(blueprint.turns, 1):
        turn.results = []
        for position, call in enumerate(turn.calls, 1):
            result = mock.call(call, index)
            index += 1
            if not result.ok:
                return (
                    f"blueprint turn {number}, call {position} ('{call.name}') fails on the "
                    f"mock API: {result.reason}: {result.detail}"
                )
            turn.results.append(result.body)
    return None


def call_key(call: ToolCall) -> str:
    """A call as comparable text: its name and its arguments with sorted keys, whole-number
    floats written as integers (2.0 and 2 are the same argument)."""
    arguments = _whole_numbers(call.arguments)
    return f"{call.name}({orjson.dumps(arguments, option=orjson.OPT_SORT_KEYS).decode()})"


def _whole_numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(item) for item in value]
    return value


def unmatched(
    expected: Iterable[ToolCall], made: Iterable[ToolCall]
) -> tuple[list[str], list[str]]:
    """The calls of `expected` that `made` lacks, and the calls of `made` that `expected` lacks
    (as `call_key`s, each as often as it is missing), in their order."""
    wanted = Counter(call_key(call) for call in expected)
    extra: list[str] = []
    for call in made:
        key = call_key(call)
        if wanted[key] > 0:
            wanted[key] -= 1
        else:
            extra.append(key)
    order = dict.fromkeys(call_key(call) for call in expected)
    return [key for key in order for _ in range(wanted[key])], extra


def stated_details(calls: Sequence[ToolCall]) -> list[str]:
    """The argument values a user must state for `calls`, as `name: value` lines (strings as
    they are, other values as JSON), each once."""
    details: dict[str, None] = {}
    for call in calls:
        if not isinstance(call.arguments, dict):
            continue
        for name, value in call.arguments.items():
            shown = value if isinstance(value, str) else orjson.dumps(value).decode()
            details[f"{name}: {shown}"] = None
    return list(details)
