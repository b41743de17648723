"""Deliberately wrong answers made from an accepted sample: the rejected side of preference pairs.

Each perturbation is a pure function of the sample and a seed: it returns a new `Sample` (id
`f"{parent.id}~{name}"`, `meta.parent_id` the parent's id, `meta.transformation` the perturbation's
name) or None when it does not apply to that sample. The steps up to the perturbed one are kept;
the perturbed step loses its results and answer (they belonged to the original calls) and the
steps after it are dropped.

Most perturbations break the tool's schema, so the format verifier rejects them. Some stay within
the schema and only the semantic judge can tell them wrong; those carry
`meta.extra["needs_semantic"] = True`: `invented_value` and `dropped_call` always, `wrong_tool`
when the other tool's schema happens to accept the arguments.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

from jsonschema import Draft202012Validator

from generators.base import derived_seed
from generators.drafting.sample_tools import PreparedTool
from unified.model import QueryStyle, Sample, Step, Tool, ToolCall

NEEDS_SEMANTIC = "needs_semantic"
"""`meta.extra` key of a perturbation that passes the format check by design."""
INVENTED_VALUE_ATTEMPTS = 12

_INVENTED_NAMES = (
    "verbose",
    "include_details",
    "language",
    "sort_order",
    "page_token",
    "max_results",
    "callback_url",
)
_TYPE_CHECKER = Draft202012Validator.TYPE_CHECKER
_KNOWN_TYPES = {"string", "integer", "number", "boolean", "array", "object", "null"}
_ENUM_TYPES: tuple[list[str], ...] = ([], ["string"], ["integer"], ["number"])
_WORD = re.compile(r"[A-Za-z]{4,}")

Perturbation = Callable[[Sample, random.Random], Sample | None]
_Place = tuple[int, int]  # (step index, call index)


def perturbation_seed(seed: int, sample_id: str, name: str) -> int:
    """The seed of one perturbation of one sample: stable across processes and runs."""
    return derived_seed(seed, sample_id, name)


def perturb(sample: Sample, name: str, seed: int = 0) -> Sample | None:
    """Apply the perturbation called `name` to `sample`; None when it does not apply."""
    function = PERTURBATIONS.get(name)
    if function is None:
        raise KeyError(f"no perturbation named {name!r}; known: {', '.join(sorted(PERTURBATIONS))}")
    return function(sample, random.Random(perturbation_seed(seed, sample.id, name)))


def perturbations(sample: Sample, seed: int = 0) -> list[Sample]:
    """Every perturbation that applies to `sample`, in the order of `PERTURBATIONS`."""
    made = (perturb(sample, name, seed) for name in PERTURBATIONS)
    return [child for child in made if child is not None]


def _tools(sample: Sample) -> dict[str, Tool]:
    return {tool.name: tool for tool in sample.tools}


def _properties(tool: Tool) -> dict[str, Any]:
    properties = tool.parameters.get("properties")
    return properties if isinstance(properties, dict) else {}


def _open_ended(tool: Tool) -> bool:
    extra = tool.parameters.get("additionalProperties", False)
    return extra is not False or "patternProperties" in tool.parameters


def _places(sample: Sample) -> list[_Place]:
    """Where the calls are whose tool the sample offers and whose arguments are an object."""
    tools = _tools(sample)
    return [
        (s, c)
        for s, step in enumerate(sample.steps)
        for c, call in enumerate(step.tool_calls)
        if call.name in tools and isinstance(call.arguments, dict)
    ]


def _call(sample: Sample, place: _Place) -> ToolCall:
    return sample.steps[place[0]].tool_calls[place[1]]


def _child(
    parent: Sample, name: str, place: int, calls: list[ToolCall], needs_semantic: bool = False
) -> Sample:
    """The parent with step `place` answered by `calls` instead, and the steps after it dropped."""
    steps = [step.model_copy(deep=True) for step in parent.steps[:place]]
    thought = parent.steps[place].thought if place < len(parent.steps) else None
    steps.append(Step(thought=thought, tool_calls=calls))
    extra = {k: v for k, v in parent.meta.extra.items() if k != NEEDS_SEMANTIC}
    if needs_semantic:
        extra[NEEDS_SEMANTIC] = True
    meta = parent.meta.model_copy(
        update={"parent_id": parent.id, "transformation": name, "extra": extra}
    )
    return parent.model_copy(update={"id": f"{parent.id}~{name}", "steps": steps, "meta": meta})


def _replaced(
    parent: Sample, name: str, place: _Place, call: ToolCall, needs_semantic: bool = False
) -> Sample:
    calls = [c.model_copy(deep=True) for c in parent.steps[place[0]].tool_calls]
    calls[place[1]] = call
    return _child(parent, name, place[0], calls, needs_semantic)


def _with_arguments(call: ToolCall, arguments: dict[str, Any]) -> ToolCall:
    return ToolCall(name=call.name, arguments=arguments, id=call.id)


def wrong_tool(sample: Sample, rng: random.Random) -> Sample | None:
    """A call renamed to another tool of the sample, or to a made-up name if it has one tool."""
    places = _places(sample)
    if not places:
        return None
    place = rng.choice(places)
    call = _call(sample, place)
    tools = _tools(sample)
    others = sorted(name for name in tools if name != call.name)
    if others:
        target = rng.choice(others)
        arguments = dict(call.arguments) if isinstance(call.arguments, dict) else {}
        accepted = PreparedTool(tools[target]).accepts(arguments)
        renamed = ToolCall(name=target, arguments=call.arguments, id=call.id)
        return _replaced(sample, "wrong_tool", place, renamed, needs_semantic=accepted)
    made_up = f"{call.name}_{rng.choice(('v2', 'lookup', 'search', 'info'))}"
    renamed = ToolCall(name=made_up, arguments=call.arguments, id=call.id)
    return _replaced(sample, "wrong_tool", place, renamed)


def missing_argument(sample: Sample, rng: random.Random) -> Sample | None:
    """A call without one of its tool's required arguments."""
    tools = _tools(sample)
    options = []
    for place in _places(sample):
        call = _call(sample, place)
        required = tools[call.name].parameters.get("required")
        if isinstance(required, list) and isinstance(call.arguments, dict):
            options += [(place, name) for name in required if name in call.arguments]
    if not options:
        return None
    place, dropped = rng.choice(options)
    call = _call(sample, place)
    assert isinstance(call.arguments, dict)
    arguments = {k: v for k, v in call.arguments.items() if k != dropped}
    return _replaced(sample, "missing_argument", place, _with_arguments(call, arguments))


class _Found:
    """A found value, so that a found `None` (JSON null) differs from nothing found."""

    def __init__(self, value: Any) -> None:
        self.value = value


def _declared_types(schema: Any) -> list[str]:
    if not isinstance(schema, dict):
        return []
    declared = schema.get("type")
    if isinstance(declared, str):
        return [declared]
    if isinstance(declared, list) and all(isinstance(t, str) for t in declared):
        return list(declared)
    return []


def _mistyped(value: Any, types: list[str]) -> _Found | None:
    """A value of the kind a model confuses with `value`, of none of `types`; None if none is."""
    candidates: list[Any] = []
    if isinstance(value, bool):
        candidates.append("true" if value else "false")
    elif isinstance(value, int | float):
        candidates.append(str(value))
    elif isinstance(value, str):
        candidates += [len(value), [value]]
    elif isinstance(value, list):
        candidates.append(", ".join(str(item) for item in value))
    elif isinstance(value, dict):
        candidates.append(str(value))
    candidates += ["7", 7, 2.5, True, ["7"], {"value": 7}, None]
    for candidate in candidates:
        if not any(_TYPE_CHECKER.is_type(candidate, t) for t in types if t in _KNOWN_TYPES):
            return _Found(candidate)
    return None


def wrong_argument_type(sample: Sample, rng: random.Random) -> Sample | None:
    """A call with one argument given as a value of a JSON type its schema does not allow."""
    tools = _tools(sample)
    options = []
    for place in _places(sample):
        call = _call(sample, place)
        properties = _properties(tools[call.name])
        assert isinstance(call.arguments, dict)
        for name in call.arguments:
            types = _declared_types(properties.get(name))
            if types and set(types) <= _KNOWN_TYPES:
                options.append((place, name, types))
    if not options:
        return None
    place, name, types = rng.choice(options)
    call = _call(sample, place)
    assert isinstance(call.arguments, dict)
    found = _mistyped(call.arguments[name], types)
    if found is None:
        return None
    arguments = {**call.arguments, name: found.value}
    return _replaced(sample, "wrong_argument_type", place, _with_arguments(call, arguments))


def _outside(enum: list[Any], current: Any) -> _Found | None:
    """A near miss of the enum's values that is not one of them, of the same JSON type."""
    strings = [value for value in enum if isinstance(value, str)]
    if strings:
        base = current if isinstance(current, str) and current in strings else strings[0]
        for candidate in (base.upper(), base.capitalize(), f"{base}s", f"{base}_other", "other"):
            if candidate not in enum:
                return _Found(candidate)
        return None
    numbers = [v for v in enum if isinstance(v, int | float) and not isinstance(v, bool)]
    if numbers:
        return _Found(max(numbers) + 1)
    return None


def enum_violation(sample: Sample, rng: random.Random) -> Sample | None:
    """A call with an argument of an enumerated parameter set to a value outside the enum."""
    tools = _tools(sample)
    options = []
    for place in _places(sample):
        call = _call(sample, place)
        for name, schema in sorted(_properties(tools[call.name]).items()):
            enum = schema.get("enum") if isinstance(schema, dict) else None
            if isinstance(enum, list) and enum and _declared_types(schema) in _ENUM_TYPES:
                options.append((place, name, enum))
    if not options:
        return None
    place, name, enum = rng.choice(options)
    call = _call(sample, place)
    assert isinstance(call.arguments, dict)
    found = _outside(enum, call.arguments.get(name))
    if found is None:
        return None
    arguments = {**call.arguments, name: found.value}
    return _replaced(sample, "enum_violation", place, _with_arguments(call, arguments))


def invented_argument(sample: Sample, rng: random.Random) -> Sample | None:
    """A call with an extra argument that its tool's schema does not declare."""
    tools = _tools(sample)
    places = [p for p in _places(sample) if not _open_ended(tools[_call(sample, p).name])]
    if not places:
        return None
    place = rng.choice(places)
    call = _call(sample, place)
    assert isinstance(call.arguments, dict)
    declared = set(_properties(tools[call.name])) | set(call.arguments)
    names = [name for name in _INVENTED_NAMES if name not in declared]
    if not names:
        return None
    name = rng.choice(names)
    value: Any = {"verbose": True, "include_details": True, "max_results": 10}.get(name, "en")
    arguments = {**call.arguments, name: value}
    return _replaced(sample, "invented_argument", place, _with_arguments(call, arguments))


def invented_value(sample: Sample, rng: random.Random) -> Sample | None:
    """A required string argument replaced by a valid value that the query does not mention.

    The call still fits the schema, so the sample is marked `needs_semantic`."""
    tools = _tools(sample)
    options = []
    for place in _places(sample):
        call = _call(sample, place)
        required = tools[call.name].parameters.get("required")
        assert isinstance(call.arguments, dict)
        if isinstance(required, list):
            options += [
                (place, name)
                for name in required
                if isinstance(call.arguments.get(name), str) and call.arguments[name]
            ]
    if not options:
        return None
    place, name = rng.choice(options)
    call = _call(sample, place)
    assert isinstance(call.arguments, dict)
    prepared = PreparedTool(tools[call.name])
    query = sample.query.casefold()
    for _ in range(INVENTED_VALUE_ATTEMPTS):
        value = prepared.property_value(name, rng)
        if not isinstance(value, str) or not value.strip() or value.casefold() in query:
            continue
        arguments = {**call.arguments, name: value}
        if prepared.accepts(arguments):
            child = _with_arguments(call, arguments)
            return _replaced(sample, "invented_value", place, child, needs_semantic=True)
    return None


def _made_up_tool(sample: Sample) -> str:
    """A tool name a model might invent for the query: `find_` and its first long words."""
    words = [w.lower() for w in _WORD.findall(sample.query)][:3]
    return "find_" + "_".join(words or ["answer"])


def hallucinated_call(sample: Sample, rng: random.Random) -> Sample | None:
    """An irrelevance sample (no calls) given a call of a tool that it was not offered.

    The tool is the one the query was phrased from (`meta.extra["phrased_from"]`) when the
    generator recorded it, else a name made from the query's words."""
    if sample.tool_calls() or (sample.meta.style not in (None, QueryStyle.irrelevance)):
        return None
    offered = _tools(sample)
    phrased = sample.meta.extra.get("phrased_from")
    name = phrased if isinstance(phrased, str) and phrased not in offered else None
    name = name or _made_up_tool(sample)
    if name in offered:
        name = f"{name}_{rng.randrange(2, 10)}"
    call = ToolCall(name=name, arguments={"query": sample.query})
    return _child(sample, "hallucinated_call", 0, [call])


def dropped_call(sample: Sample, rng: random.Random) -> Sample | None:
    """A step of several calls (a parallel sample) with one of its calls left out.

    The remaining calls still fit their schemas, so the sample is marked `needs_semantic`."""
    steps = [index for index, step in enumerate(sample.steps) if len(step.tool_calls) >= 2]
    if not steps:
        return None
    index = rng.choice(steps)
    calls = [call.model_copy(deep=True) for call in sample.steps[index].tool_calls]
    del calls[rng.randrange(len(calls))]
    return _child(sample, "dropped_call", index, calls, needs_semantic=True)


PERTURBATIONS: dict[str, Perturbation] = {
    "wrong_tool": wrong_tool,
    "missing_argument": missing_argument,
    "wrong_argument_type": wrong_argument_type,
    "enum_violation": enum_violation,
    "invented_argument": invented_argument,
    "invented_value": invented_value,
    "hallucinated_call": hallucinated_call,
    "dropped_call": dropped_call,
}
"""Every perturbation by name, in the order `perturbations` tries them."""
