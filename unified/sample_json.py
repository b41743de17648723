"""Unified samples to and from JSON text, fast, with the results of the plain pydantic calls.

`SampleParser` reads a row as `Sample.model_validate_json` would, decoding it with orjson and
validating each distinct list of tools once (the rows of one dataset or job offer the same tools
over and over); a row it cannot take that way, or that does not validate, goes the plain way,
so a bad row raises the very error it always did. `orjson_safe` says which JSON texts orjson
decodes to the values pydantic's parser gives.

`is_dumped` says whether a decoded value has the exact layout `Sample.model_dump(mode="json",
by_alias=True)` gives (every field, in field order, at every level): such a value is written as
`Sample.to_json()` would write it by `orjson.dumps` alone (both write floats the shortest way
and strings as UTF-8 with the same escapes). `without_none_fields` is what `exclude_none` leaves
of such a value. `SampleDumper` gives `model_dump(mode="json", by_alias=True)` of many samples
offering the same tools, dumping each tool once. `dump_layout()` names the layout of this
version's model, so that a stored dump marked with it needs no second look.
"""

from __future__ import annotations

import functools
import hashlib
import types
from collections.abc import Callable
from enum import Enum
from typing import Any, Union, get_args, get_origin

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from unified.model import Sample, Tool

MAX_BRACKETS = 200
"""pydantic's JSON parser refuses values nested deeper than about 200 levels, which Python-side
validation would let through: rows with this many brackets (a bound on their depth) go the plain
way."""
TOOL_CACHE_SIZE = 256
_TOOLS = TypeAdapter(list[Tool])
# Digits all read as 0 and "{" as "[": one pass finds long numbers and counts brackets.
_FOLD = bytes.maketrans(b"123456789{", b"000000000[")
_LONG_NUMBER = b"0" * 19
"""orjson reads an integer beyond 64 bits as a float; a run of 19 digits (in a string too) is
taken for one."""


def orjson_safe(text: bytes) -> bool:
    """Whether orjson decodes this JSON text to the values pydantic's JSON parser gives: no
    integer that may not fit in 64 bits, nothing nested deeper than pydantic's parser takes
    (over-counted by the brackets in the text, strings included). Texts orjson refuses at all
    are not caught here."""
    folded = text.translate(_FOLD)
    return folded.count(b"[") < MAX_BRACKETS and folded.find(_LONG_NUMBER) < 0


def as_utf8(text: bytes | str) -> bytes | None:
    """The text as UTF-8; None for a string that cannot be (a lone surrogate)."""
    if isinstance(text, bytes):
        return text
    try:
        return text.encode()
    except UnicodeEncodeError:
        return None


class SampleParser:
    """Rows of unified JSON into samples, equal to `Sample.model_validate_json(row)` (and
    `Sample.model_validate(value)` for values decoded already), raising the same errors.

    Validated tool lists are shared by the samples that offer the same tools: treat a sample's
    tools as read-only (pydantic's `model_copy` keeps sharing them, which is fine)."""

    def __init__(self, cache_size: int = TOOL_CACHE_SIZE) -> None:
        self._tools: dict[bytes, list[Tool]] = {}
        self._cache_size = cache_size

    def parse_json(self, raw: bytes | str) -> Sample:
        """The sample of one JSON text."""
        encoded = as_utf8(raw)
        if encoded is not None and orjson_safe(encoded):
            try:
                value = orjson.loads(encoded)
            except orjson.JSONDecodeError:
                pass
            else:
                sample = self._validated(value)
                if sample is not None:
                    return sample
        return Sample.model_validate_json(raw)

    def parse_value(self, value: Any) -> Sample:
        """The sample of one decoded JSON value."""
        sample = self._validated(value)
        return sample if sample is not None else Sample.model_validate(value)

    def _validated(self, value: Any) -> Sample | None:
        if not isinstance(value, dict):
            return None
        tools = value.get("tools")
        try:
            if isinstance(tools, list) and tools:
                value = {**value, "tools": self._tool_list(tools)}
            return Sample.model_validate(value)
        except (ValidationError, TypeError, ValueError):
            return None

    def _tool_list(self, tools: list[Any]) -> list[Tool]:
        key = orjson.dumps(tools)
        known = self._tools.get(key)
        if known is None:
            known = _TOOLS.validate_python(tools)
            if len(self._tools) >= self._cache_size:
                self._tools.clear()
            self._tools[key] = known
        return known


class SampleDumper:
    """`Sample.model_dump(mode="json", by_alias=True)`, with each `Tool` object dumped once:
    the samples of a batch share their tools, whose schemas are most of a sample, and pydantic
    dumped them anew every time. The dumps share their tools' values: treat them as read-only.
    Keep one dumper for one set of samples (it holds on to their tools)."""

    def __init__(self) -> None:
        self._tools: dict[int, tuple[Tool, dict[str, Any]]] = {}

    def dump(self, sample: Sample) -> dict[str, Any]:
        """The sample's dump, equal to `sample.model_dump(mode="json", by_alias=True)`."""
        rest = sample.model_dump(mode="json", by_alias=True, exclude={"tools"})
        tools = [self._tool(tool) for tool in sample.tools]
        return {
            key: tools if key == "tools" else rest[key]
            for key in _keys(Sample)
            if key == "tools" or key in rest
        }

    def _tool(self, tool: Tool) -> dict[str, Any]:
        known = self._tools.get(id(tool))
        if known is None:
            # The tool is kept with its dump, so that its id is not another object's.
            known = self._tools[id(tool)] = (tool, tool.model_dump(mode="json", by_alias=True))
        return known[1]


# What `model_dump(mode="json", by_alias=True)` gives for a type, as two functions made once per
# model: a check that a value has that layout, and what `exclude_none` leaves of such a value.
# Fields typed Any (arguments, schemas, results) are JSON values of any kind: nothing to check.
Check = Callable[[Any], bool]
Strip = Callable[[Any], Any]
_CHECKS: dict[type[BaseModel], Check] = {}
_STRIPS: dict[type[BaseModel], Strip] = {}


@functools.cache
def _keys(model: type[BaseModel]) -> tuple[str, ...]:
    return tuple(field.alias or name for name, field in model.model_fields.items())


def _model_check(model: type[BaseModel]) -> Check:
    if model in _CHECKS:
        return _CHECKS[model]
    made: list[Check] = []
    _CHECKS[model] = lambda value: made[0](value)  # for a model nested in itself (Acceptable)
    keys = _keys(model)
    # A field with `exclude_if` (a sample's `turns`) is left out of a dump when its value is
    # the excluded one: the layout with it and the one without are both a dump's.
    excludable = {
        key
        for key, field in zip(keys, model.model_fields.values(), strict=True)
        if field.exclude_if is not None
    }
    layouts = {keys, tuple(key for key in keys if key not in excludable)}
    children = []  # (key, check, whether None is allowed), optional fields checked inline
    for key, field in zip(keys, model.model_fields.values(), strict=True):
        inner = _optional_inner(field.annotation)
        check = _check(field.annotation if inner is None else inner)
        if check is not None:
            children.append((key, check, inner is not None))

    def check_model(value: Any) -> bool:
        if not isinstance(value, dict) or tuple(value) not in layouts:
            return False
        for key, check, optional in children:
            if key not in value:  # an excludable field left out
                continue
            item = value[key]
            if not (optional and item is None) and not check(item):
                return False
        return True

    made.append(check_model)
    _CHECKS[model] = check_model
    return check_model


def _check(annotation: Any) -> Check | None:
    origin = get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _model_check(annotation)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return _enum_check(frozenset(member.value for member in annotation))
    if origin is list:
        return _list_check(_check(get_args(annotation)[0]))
    if origin is dict:
        return _dict_check(_check(get_args(annotation)[1]))
    inner = _optional_inner(annotation)
    if inner is not None and (check := _check(inner)) is not None:
        return _optional_check(check)
    return None


def _optional_inner(annotation: Any) -> Any:
    """T of `T | None`; None for any other annotation."""
    if get_origin(annotation) not in (Union, types.UnionType):
        return None
    options = [arg for arg in get_args(annotation) if arg is not type(None)]
    return options[0] if len(options) == 1 else None


def _enum_check(values: frozenset[Any]) -> Check:
    return lambda value: isinstance(value, str) and value in values


def _list_check(item: Check | None) -> Check:
    if item is None:
        return lambda value: isinstance(value, list)
    return lambda value: isinstance(value, list) and all(map(item, value))


def _dict_check(item: Check | None) -> Check:
    if item is None:
        return lambda value: isinstance(value, dict)
    return lambda value: isinstance(value, dict) and all(map(item, value.values()))


def _optional_check(inner: Check) -> Check:
    return lambda value: value is None or inner(value)


def _model_strip(model: type[BaseModel]) -> Strip:
    if model in _STRIPS:
        return _STRIPS[model]
    made: list[Strip] = []
    _STRIPS[model] = lambda value: made[0](value)
    keys = _keys(model)
    children = {
        key: strip
        for key, field in zip(keys, model.model_fields.values(), strict=True)
        if (strip := _strip(field.annotation)) is not None
    }

    def strip_model(value: Any) -> Any:
        kept = {key: item for key, item in value.items() if item is not None}
        for key, strip in children.items():
            if key in kept:
                kept[key] = strip(kept[key])
        return kept

    made.append(strip_model)
    _STRIPS[model] = strip_model
    return strip_model


def _strip(annotation: Any) -> Strip | None:
    origin = get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _model_strip(annotation)
    if origin is list and (item := _strip(get_args(annotation)[0])) is not None:
        return _list_strip(item)
    if origin is dict and (item := _strip(get_args(annotation)[1])) is not None:
        return _dict_strip(item)
    inner = _optional_inner(annotation)
    if inner is not None and (strip := _strip(inner)) is not None:
        return _optional_strip(strip)
    return None


def _list_strip(item: Strip) -> Strip:
    return lambda value: [item(each) for each in value]


def _dict_strip(item: Strip) -> Strip:
    return lambda value: {key: item(each) for key, each in value.items()}


def _optional_strip(inner: Strip) -> Strip:
    return lambda value: None if value is None else inner(value)


@functools.cache
def dump_layout(model: type[BaseModel] = Sample) -> str:
    """A name for the layout `model.model_dump(mode="json", by_alias=True)` gives: a digest of
    the model's serialization JSON schema (its fields, their order, types, enum values and
    descriptions), so it changes whenever the layout can. Values dumped by one version of the
    model and marked with its name have that layout as long as the name is the current one."""
    schema = model.model_json_schema(by_alias=True, mode="serialization")
    return hashlib.sha256(orjson.dumps(schema)).hexdigest()[:16]


def is_dumped(value: Any, model: type[BaseModel] = Sample) -> bool:
    """Whether `value` has the layout `model.model_dump(mode="json", by_alias=True)` gives (a
    `Sample`'s by default): every field of every model, in order, each nested value of its kind,
    enum values among the enum's."""
    return _model_check(model)(value)


def without_none_fields(value: Any, model: type[BaseModel]) -> Any:
    """What `exclude_none=True` leaves of a dump of `model` that `is_dumped`: the model fields
    whose value is None are dropped, at every level (dict entries and list items are kept)."""
    return _model_strip(model)(value)
