"""Drafting a sample of each query style from a catalog's tools: which tools it shows and which
calls it makes, with the fallback to a simpler style where a catalog cannot give the one asked."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from generators.drafting.follow_ups import Call, FollowUp, FollowUpIndex
from generators.drafting.sample_tools import CatalogTools, PreparedTool
from unified.model import QueryStyle
from unified.values.schema_values import Unsatisfiable

STYLES = (
    QueryStyle.simple,
    QueryStyle.multiple,
    QueryStyle.parallel,
    QueryStyle.parallel_multiple,
    QueryStyle.irrelevance,
)
"""The single-turn styles a draft is made in, in the order that turns weights into a choice
(`make_draft` also makes `multi_turn` conversations, for the generators that offer them)."""
OFF_TOPIC_RATE = 0.2
"""How often an irrelevance query is off-topic although a left-out tool could be phrased."""


@dataclass
class Draft:
    """A sample in the making: the style made, tools shown, calls, and how the query reads."""

    style: QueryStyle
    shown: list[PreparedTool]
    calls: list[tuple[PreparedTool, dict[str, Any]]] = field(default_factory=list)
    axes: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    """Tool name -> the argument its parallel calls vary and the values they give it."""
    phrased_from: PreparedTool | None = None
    phrased_arguments: dict[str, Any] = field(default_factory=dict)
    results: list[Any] | None = None
    """A conversation's first-turn results, in call order (None: no tool API answered them)."""
    follow_ups: list[FollowUp] = field(default_factory=list)
    """A conversation's follow-up turns (multi_turn)."""


def make_draft(
    style: QueryStyle,
    catalog: CatalogTools,
    rng: random.Random,
    follow_ups: FollowUpIndex | None = None,
) -> Draft:
    """The sample's tools and calls in `style`, or in the style it falls back to; a
    conversation's follow-ups come from `follow_ups` (a catalog's links and tool API; default:
    none, so no follow-up takes a value out of a result)."""
    index = follow_ups or FollowUpIndex(catalog, None)
    makers = {
        QueryStyle.simple: _simple,
        QueryStyle.multiple: _multiple,
        QueryStyle.parallel: _parallel,
        QueryStyle.parallel_multiple: _parallel_multiple,
        QueryStyle.irrelevance: _irrelevance,
        QueryStyle.multi_turn: lambda catalog, rng: _multi_turn(catalog, rng, index),
    }
    current: QueryStyle | None = style
    while current is not None:
        draft = makers[current](catalog, rng)
        if draft is not None:
            return draft
        current = FALLBACK[current]
    raise AssertionError("irrelevance always yields a draft")


FALLBACK: dict[QueryStyle, QueryStyle | None] = {
    QueryStyle.multi_turn: QueryStyle.simple,
    QueryStyle.parallel_multiple: QueryStyle.parallel,
    QueryStyle.parallel: QueryStyle.simple,
    QueryStyle.multiple: QueryStyle.simple,
    QueryStyle.simple: QueryStyle.irrelevance,
    QueryStyle.irrelevance: None,
}
"""The style to make when a catalog cannot give a sample of a style (too few tools, no tool
whose arguments vary, no call whose result or arguments a follow-up can take up).
Irrelevance is always possible."""


def _call_one(
    candidates: Sequence[PreparedTool], rng: random.Random
) -> tuple[PreparedTool, dict[str, Any]] | None:
    """A tool drawn from `candidates` and valid arguments for it; another tool if the first
    cannot be given valid arguments."""
    pool = list(candidates)
    while pool:
        tool = pool.pop(rng.randrange(len(pool)))
        arguments = tool.valid_arguments(rng)
        if arguments is not None:
            return tool, arguments
    return None


def _distractors(
    catalog: CatalogTools, rng: random.Random, exclude: Sequence[PreparedTool], low: int, high: int
) -> list[PreparedTool]:
    others = [tool for tool in catalog.tools if all(tool is not e for e in exclude)]
    count = min(len(others), rng.randint(low, high))
    return rng.sample(others, count)


def _shuffled(tools: list[PreparedTool], rng: random.Random) -> list[PreparedTool]:
    rng.shuffle(tools)
    return tools


def _simple(catalog: CatalogTools, rng: random.Random) -> Draft | None:
    chosen = _call_one(catalog.callable, rng)
    if chosen is None:
        return None
    return Draft(QueryStyle.simple, [chosen[0]], [chosen])


def _multiple(catalog: CatalogTools, rng: random.Random) -> Draft | None:
    if len(catalog.tools) < 2:
        return None
    chosen = _call_one(catalog.callable, rng)
    if chosen is None:
        return None
    shown = [chosen[0], *_distractors(catalog, rng, [chosen[0]], 1, 3)]
    return Draft(QueryStyle.multiple, _shuffled(shown, rng), [chosen])


def _parallel(catalog: CatalogTools, rng: random.Random) -> Draft | None:
    pool = [tool for tool in catalog.callable if tool.has_parameters]
    while pool:
        tool = pool.pop(rng.randrange(len(pool)))
        made = _parallel_calls(tool, rng.randint(2, 3), rng)
        if made is not None:
            calls, axis = made
            shown = [tool]
            if rng.random() < 0.5:
                shown += _distractors(catalog, rng, [tool], 1, 2)
            axes = {tool.tool.name: axis} if axis else {}
            return Draft(QueryStyle.parallel, _shuffled(shown, rng), calls, axes)
    return None


def _parallel_calls(
    tool: PreparedTool, count: int, rng: random.Random
) -> tuple[list[tuple[PreparedTool, dict[str, Any]]], dict[str, list[Any]]] | None:
    """`count` (or at least two) calls of `tool` with different arguments: one argument varies
    where possible (so the query reads "for Paris, Oslo and Rome"), else whole argument sets."""
    base = tool.valid_arguments(rng)
    if base is None:
        return None
    axes = [name for name in base if tool.can_vary(name, base[name])]
    rng.shuffle(axes)
    for name in axes[:3]:
        values = [base[name]]
        for _ in range(count * 4):
            if len(values) >= count:
                break
            try:
                value = tool.property_value(name, rng)
            except Unsatisfiable:
                continue
            if value in values or isinstance(value, bool) or not _is_scalar(value):
                continue
            if tool.accepts({**base, name: value}):
                values.append(value)
        if len(values) >= 2:
            calls = [(tool, {**base, name: value}) for value in values]
            return calls, {name: values}
    sets = [base]
    for _ in range(count * 3):
        if len(sets) >= count:
            break
        arguments = tool.valid_arguments(rng)
        if arguments is not None and arguments not in sets:
            sets.append(arguments)
    if len(sets) < 2:
        return None
    return [(tool, arguments) for arguments in sets], {}


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _parallel_multiple(catalog: CatalogTools, rng: random.Random) -> Draft | None:
    if len(catalog.callable) < 2:
        return None
    wanted = rng.randint(2, min(3, len(catalog.callable)))
    pool = list(catalog.callable)
    calls: list[tuple[PreparedTool, dict[str, Any]]] = []
    called: list[PreparedTool] = []
    axes: dict[str, dict[str, list[Any]]] = {}
    while pool and len(called) < wanted:
        tool = pool.pop(rng.randrange(len(pool)))
        made = None
        if tool.has_parameters and rng.random() < 0.3:
            made = _parallel_calls(tool, 2, rng)
        if made is not None and made[1]:
            calls += made[0]
            axes[tool.tool.name] = made[1]
        else:
            arguments = tool.valid_arguments(rng)
            if arguments is None:
                continue
            calls.append((tool, arguments))
        called.append(tool)
    if len(called) < 2:
        return None
    shown = called + _distractors(catalog, rng, called, 0, 1)
    return Draft(QueryStyle.parallel_multiple, _shuffled(shown, rng), calls, axes)


def _irrelevance(catalog: CatalogTools, rng: random.Random) -> Draft:
    if len(catalog.tools) >= 2 and rng.random() >= OFF_TOPIC_RATE:
        source = rng.choice(catalog.tools)
        unrelated = catalog.unrelated_to(source)
        if unrelated:
            shown = rng.sample(unrelated, min(len(unrelated), rng.randint(1, 3)))
            try:
                arguments = source.sample_arguments(rng)
            except Unsatisfiable:
                arguments = {}
            return Draft(
                QueryStyle.irrelevance, shown, phrased_from=source, phrased_arguments=arguments
            )
    shown = rng.sample(catalog.tools, min(len(catalog.tools), rng.randint(1, 3)))
    return Draft(QueryStyle.irrelevance, shown)


def _multi_turn(catalog: CatalogTools, rng: random.Random, index: FollowUpIndex) -> Draft | None:
    conversation = index.draft(rng)
    if conversation is None:
        return None
    first = conversation.first
    called: list[PreparedTool] = []
    for call in [first, *(follow_up.call for follow_up in conversation.follow_ups)]:
        if all(call.tool is not tool for tool in called):
            called.append(call.tool)
    shown = called + _distractors(catalog, rng, called, 0, 2)
    return Draft(
        QueryStyle.multi_turn,
        _shuffled(shown, rng),
        [(first.tool, first.arguments)],
        results=_results(first),
        follow_ups=conversation.follow_ups,
    )


def _results(call: Call) -> list[Any] | None:
    return [call.result] if call.answered else None
