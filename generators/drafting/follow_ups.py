"""Drafting a conversation: a first call, then one or two follow-up turns that refer to the turn
before, each made of one call.

A follow-up either
- asks `again` for the call before with one argument given another value ("and the same for
  Oslo"), or
- `chain`s: calls another tool with a value taken out of the result before ("now delete the one
  you just created", "book the cheaper of those two"). The value is read from the answer the
  tool API gave to the earlier call, so it really is in that result, and the sample carries the
  result for grounding to find it there.

The calls of a conversation are answered in one conversation state of the tool API (what an
earlier call created, a later one reads back), as the execution stage will answer them; a call
tried and not kept leaves nothing in that state.

A tool links to another when a field of its results names one of the other's parameters that
identifies something: the same words (`flight_number`, `username`), or `id` for a parameter
named after the thing (`petId` after a call of `addPet`), or the other way round. Which fields a
tool's results have is read from its response schema and from one probe call.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from generators.drafting.phrasing import Ask, Clause, action_text, make_clause
from generators.drafting.sample_tools import PROBE_SEED, CatalogTools, PreparedTool
from generators.tool_api import ToolAnswer, ToolApi
from unified.model import ToolCall
from unified.values.schema_values import Unsatisfiable
from unified.values.value_kinds import name_words, word_set

IDENTIFYING_WORDS = word_set(
    """id ids number no code key uuid slug username handle sku ref reference token isbn
    symbol ticker login"""
)
"""Last words of a parameter name that identifies something: only such a parameter takes a
value out of an earlier result (a `name` or a `city` is for the user to say)."""
CREATING_VERBS = word_set(
    """create add post place register book make schedule reserve upload insert open submit
    order generate start"""
)
"""Verbs of an action whose result is the thing it made: "the one you just created"."""
LABEL_FIELDS = frozenset({"name", "title", "label"})
"""Text fields by which a user can point at one of several results ("the one named Rex")."""
CHAIN_RATE = 0.7
"""How often a follow-up takes a value out of the result before, where it can."""
THIRD_TURN_RATE = 0.5
"""How often a conversation gets a second follow-up turn, where one can be made."""
FIRST_CALL_TRIES = 8
"""Tools tried for the first call before the catalog is taken to give no conversation."""
NEW_VALUE_TRIES = 12
"""Draws of another value for an `again` follow-up before giving up on that argument."""


@dataclass(frozen=True)
class Pick:
    """How the user points at the result that a chained call takes its value from: `it` (the
    only one), `created` (what the call before made), `first` or `last` of a list, the one with
    the `lowest` or `highest` number in `field`, or the one whose `field` reads `value`
    (`named`). `field` is in words; `count` is how many results there were to pick from."""

    how: str
    field: str = ""
    value: str = ""
    count: int = 1


@dataclass
class Call:
    """One call of the conversation and the tool API's answer to it (`answered` False: there
    was no tool API to ask)."""

    tool: PreparedTool
    arguments: dict[str, Any]
    result: Any = None
    answered: bool = False


@dataclass
class FollowUp:
    """A follow-up turn: its call, what kind of reference to the turn before it is, the argument
    that changed (`again`) or that took a value out of the result before (`chain`, with `pick`)."""

    call: Call
    kind: str
    argument: str
    pick: Pick | None = None

    def phrasing(self) -> FollowUpAsk:
        """What the follow-up's message says, for the templates."""
        tool, arguments = self.call.tool, self.call.arguments
        action = action_text(tool.tool.name, tool.tool.description)
        if self.kind == "again":
            value = arguments[self.argument]
            changed = make_clause(self.argument, [value])
            is_text = isinstance(value, str)
            return FollowUpAsk("again", tool.ask(arguments, {}), changed, is_text, action=action)
        rest = {name: value for name, value in arguments.items() if name != self.argument}
        return FollowUpAsk("chain", tool.ask(rest, {}), pick=self.pick, action=action)


@dataclass(frozen=True)
class FollowUpAsk:
    """A follow-up as its template sees it: `kind` (`again` or `chain`), the `ask` of its call
    (for a chain, without the argument the result gives), the `changed` argument's clause and
    whether its value is text (`again`), the `pick` (`chain`), and the tool's `action` phrase
    ("calculate the roots of a quadratic equation")."""

    kind: str
    ask: Ask
    changed: Clause | None = None
    changed_is_text: bool = False
    pick: Pick | None = None
    action: str = ""


@dataclass
class Conversation:
    """The first call and the follow-ups after it, in order."""

    first: Call
    follow_ups: list[FollowUp] = field(default_factory=list)


class _Played:
    """The calls kept so far in the conversation being drafted; a call tried next is answered
    in a new conversation of the tool API after the kept calls are made again (the same answers
    every time), so that a call tried and dropped changes nothing."""

    def __init__(self, api: ToolApi) -> None:
        self.api = api
        self.kept: list[ToolCall] = []

    def answer(self, tool_call: ToolCall) -> ToolAnswer:
        conversation = self.api.conversation()
        for earlier in self.kept:
            conversation.call(earlier)
        return conversation.call(tool_call)

    def keep(self, call: Call) -> None:
        self.kept.append(ToolCall(name=call.tool.tool.name, arguments=call.arguments))


@dataclass(frozen=True)
class _Link:
    target: PreparedTool
    parameter: str


@dataclass(frozen=True)
class _Option:
    """A chain the result before allows: the tool and parameter, the result field that feeds
    it, and the records the user picks from (one, or the items of a list: `listed`)."""

    link: _Link
    key: str
    records: tuple[dict[str, Any], ...]
    listed: bool


class FollowUpIndex:
    """A catalog's links between tools (which tool's results can feed which parameter), found
    once per catalog and tool API (each call on its own); `draft` asks one conversation of the
    tool API per conversation drafted."""

    def __init__(self, catalog: CatalogTools, api: ToolApi | None) -> None:
        self.catalog = catalog
        self.api = api
        self._links: dict[int, dict[str, list[_Link]]] = {}
        if api is not None:
            targets = _Targets(catalog.callable)
            for tool in catalog.callable:
                keys = _result_keys(tool, api)
                by_key = {key: found for key in keys if (found := targets.of(tool, key))}
                if by_key:
                    self._links[id(tool)] = by_key
        self.sources = [tool for tool in catalog.callable if id(tool) in self._links]
        """Callable tools whose results can feed another tool's parameter."""

    def links(self, tool: PreparedTool, key: str) -> list[_Link]:
        """The parameters of other tools that a result field `key` of `tool` can feed."""
        return self._links.get(id(tool), {}).get(key, [])

    def draft(self, rng: random.Random) -> Conversation | None:
        """A conversation of two or three turns, or None when the catalog gives none."""
        for tool in self._first_tools(rng)[:FIRST_CALL_TRIES]:
            arguments = tool.valid_arguments(rng)
            if arguments is None:
                continue
            played = _Played(self.api) if self.api is not None else None
            first = self._call(tool, arguments, played)
            if first is None:
                continue
            conversation = Conversation(first)
            made = {_call_key(first)}
            _keep(played, first)
            follow_up = self._follow_up(first, None, made, rng, played)
            if follow_up is None:
                continue
            conversation.follow_ups.append(follow_up)
            if rng.random() < THIRD_TURN_RATE:
                made.add(_call_key(follow_up.call))
                _keep(played, follow_up.call)
                fixed = follow_up.argument if follow_up.kind == "chain" else None
                another = self._follow_up(follow_up.call, fixed, made, rng, played)
                if another is not None:
                    conversation.follow_ups.append(another)
            return conversation
        return None

    def _first_tools(self, rng: random.Random) -> list[PreparedTool]:
        """The tools to try first: those whose results feed another tool, most of the time."""
        sources = list(self.sources)
        others = [tool for tool in self.catalog.callable if id(tool) not in self._links]
        rng.shuffle(sources)
        rng.shuffle(others)
        if sources and rng.random() < CHAIN_RATE:
            return sources + others
        everything = sources + others
        rng.shuffle(everything)
        return everything

    def _call(
        self, tool: PreparedTool, arguments: dict[str, Any], played: _Played | None
    ) -> Call | None:
        """The call with its answer in the conversation `played` so far; None when the API
        refuses it."""
        if played is None:
            return Call(tool, arguments)
        answer = played.answer(ToolCall(name=tool.tool.name, arguments=arguments))
        return Call(tool, arguments, answer.body, answered=True) if answer.ok else None

    def _follow_up(
        self,
        before: Call,
        fixed: str | None,
        made: set[str],
        rng: random.Random,
        played: _Played | None,
    ) -> FollowUp | None:
        """A follow-up to the call before: a chain where its result allows one (most of the
        time), else the same call again with another value for an argument other than `fixed`
        (a value that came out of a result)."""
        options = list(self._chain_options(before))
        chain_first = bool(options) and rng.random() < CHAIN_RATE
        for kind in ("chain", "again") if chain_first else ("again", "chain"):
            if kind == "chain":
                made_one = self._chain(before, options, made, rng, played) if options else None
            else:
                made_one = self._again(before, fixed, made, rng, played)
            if made_one is not None:
                return made_one
        return None

    def _chain_options(self, before: Call) -> Iterator[_Option]:
        if not before.answered:
            return
        for records, listed in _record_groups(before.result):
            keys = dict.fromkeys(key for record in records for key in record)
            for key in keys:
                holding = tuple(r for r in records if _is_scalar(r.get(key)))
                if not holding:
                    continue
                for link in self.links(before.tool, key):
                    yield _Option(link, key, tuple(records), listed)

    def _chain(
        self,
        before: Call,
        options: list[_Option],
        made: set[str],
        rng: random.Random,
        played: _Played | None,
    ) -> FollowUp | None:
        pool = list(options)
        while pool:
            option = pool.pop(rng.randrange(len(pool)))
            picked = _pick(option, before.tool, rng)
            if picked is None:
                continue
            pick, value = picked
            target = option.link.target
            base = target.valid_arguments(rng)
            if base is None:
                continue
            arguments = {**base, option.link.parameter: value}
            if not target.accepts(arguments):
                continue
            call = self._call(target, arguments, played)
            if call is None or _call_key(call) in made:
                continue
            return FollowUp(call, "chain", option.link.parameter, pick)
        return None

    def _again(
        self,
        before: Call,
        fixed: str | None,
        made: set[str],
        rng: random.Random,
        played: _Played | None,
    ) -> FollowUp | None:
        """The call before with one argument given another value (not `fixed`, which came out
        of a result)."""
        tool, arguments = before.tool, before.arguments
        names = [
            name
            for name, value in arguments.items()
            if name != fixed and tool.can_vary(name, value) and not isinstance(value, bool)
        ]
        rng.shuffle(names)
        for name in names:
            for _ in range(NEW_VALUE_TRIES):
                try:
                    value = tool.property_value(name, rng)
                except Unsatisfiable:
                    break
                if value == arguments[name] or not _is_scalar(value):
                    continue
                if value == tool.properties[name].get("default"):
                    continue  # a message naming only the default would not tie the call to it
                changed = {**arguments, name: value}
                if not tool.accepts(changed):
                    continue
                call = self._call(tool, changed, played)
                if call is None or _call_key(call) in made:
                    continue
                return FollowUp(call, "again", name)
        return None


class _Targets:
    """The identifying parameters of a catalog's tools, looked up by a result field's name."""

    def __init__(self, tools: Sequence[PreparedTool]) -> None:
        self._by_words: dict[tuple[str, ...], list[_Link]] = {}
        self._named_ids: list[tuple[_Link, frozenset[str]]] = []
        self._bare_ids: list[_Link] = []
        for tool in tools:
            for parameter in tool.properties:
                words = tuple(name_words(parameter))
                if not words or words[-1] not in IDENTIFYING_WORDS:
                    continue
                link = _Link(tool, parameter)
                self._by_words.setdefault(words, []).append(link)
                if words == ("id",):
                    self._bare_ids.append(link)
                elif words[-1] == "id":
                    self._named_ids.append((link, frozenset(words[:-1])))

    def of(self, source: PreparedTool, key: str) -> list[_Link]:
        """The parameters (of tools other than `source`) that result field `key` can feed."""
        words = tuple(name_words(key))
        found = list(self._by_words.get(words, []))
        if words == ("id",):  # `id` of a pet feeds `petId`
            made_by = _tool_words(source)
            found += [link for link, thing in self._named_ids if thing <= made_by]
        elif len(words) > 1 and words[-1] == "id":  # `petId` feeds `id` of a pet tool
            thing = frozenset(words[:-1])
            found += [link for link in self._bare_ids if thing <= _tool_words(link.target)]
        return [link for link in found if link.target is not source]


def _tool_words(tool: PreparedTool) -> frozenset[str]:
    return frozenset(name_words(tool.tool.name)) | tool.words


def _keep(played: _Played | None, call: Call) -> None:
    if played is not None:
        played.keep(call)


def _result_keys(tool: PreparedTool, api: ToolApi) -> list[str]:
    """The fields the tool's results have: those its response schema names and those of the
    answer to a probe call."""
    keys = dict.fromkeys(_schema_keys(tool.tool.response or {}, 0))
    arguments = tool.valid_arguments(random.Random(PROBE_SEED))
    if arguments is not None:
        answer = api.call(ToolCall(name=tool.tool.name, arguments=arguments))
        if answer.ok:
            for records, _ in _record_groups(answer.body):
                keys.update(dict.fromkeys(key for record in records for key in record))
    return list(keys)


def _schema_keys(schema: Any, depth: int) -> Iterator[str]:
    """Property names of an object, of a list's items, one level of nesting down."""
    if not isinstance(schema, dict) or depth > 2:
        return
    properties = schema.get("properties")
    if isinstance(properties, dict):
        for key, sub in properties.items():
            yield key
            if depth == 0:
                yield from _schema_keys(sub, depth + 1)
    items = schema.get("items")
    if isinstance(items, dict):
        yield from _schema_keys(items, depth + 1)


def _record_groups(result: Any) -> Iterator[tuple[list[dict[str, Any]], bool]]:
    """The objects of a result a user can point at: the result itself, the objects it holds one
    level down, or a list's items (`True`: the items of a list, to pick one of)."""
    if isinstance(result, list):
        items = [item for item in result if isinstance(item, dict)]
        if items and len(items) == len(result):
            yield items, True
    elif isinstance(result, dict):
        yield [result], False
        for value in result.values():
            if isinstance(value, dict):
                yield [value], False
            elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                yield list(value), True


def _pick(option: _Option, source: PreparedTool, rng: random.Random) -> tuple[Pick, Any] | None:
    """How the user points at one record holding the option's field, and the field's value."""
    records, key = option.records, option.key
    if not option.listed or len(records) == 1:
        value = records[0].get(key)
        if not _is_scalar(value):
            return None
        verb = action_text(source.tool.name, source.tool.description).split(" ", 1)[0]
        return Pick("created" if not option.listed and verb in CREATING_VERBS else "it"), value
    choices: list[tuple[Pick, dict[str, Any]]] = [
        (Pick("first", count=len(records)), records[0]),
        (Pick("last", count=len(records)), records[-1]),
    ]
    for name in dict.fromkeys(name for record in records for name in record):
        if name == key:
            continue
        values = [record.get(name) for record in records]
        words = " ".join(name_words(name)) or name
        numbers = [number for v in values if (number := _number(v)) is not None]
        if len(numbers) == len(values) and len(set(numbers)) == len(numbers):
            low = min(range(len(numbers)), key=numbers.__getitem__)
            high = max(range(len(numbers)), key=numbers.__getitem__)
            choices.append((Pick("lowest", words, count=len(records)), records[low]))
            choices.append((Pick("highest", words, count=len(records)), records[high]))
        elif name in LABEL_FIELDS and _distinct_texts(values):
            choices += [
                (Pick("named", words, str(value), len(records)), record)
                for value, record in zip(values, records, strict=True)
            ]
    choices = [(pick, record) for pick, record in choices if _is_scalar(record.get(key))]
    if not choices:
        return None
    pick, record = rng.choice(choices)
    return pick, record[key]


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool) and value != ""


def _distinct_texts(values: list[Any]) -> bool:
    texts = [value for value in values if isinstance(value, str) and value]
    return len(texts) == len(values) and len(set(texts)) == len(texts)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _call_key(call: Call) -> str:
    return f"{call.tool.tool.name}:{sorted(call.arguments.items(), key=lambda item: item[0])!r}"
