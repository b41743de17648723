"""Sampling strings and numbers for a JSON Schema: strings by `pattern`, `format` or the kind of
value the parameter's name asks for, within their lengths; numbers within bounds and steps."""

from __future__ import annotations

import base64
import math
import random
from decimal import Decimal
from typing import Any

from unified.values.fakes import Fakes
from unified.values.value_kinds import name_words, number_range, string_kind


class Unsatisfiable(Exception):
    """The sampler cannot make a value for this schema (a `false` schema, a reference it cannot
    follow, or nesting with no end)."""


def both_numbers(a: Any, b: Any) -> bool:
    """Whether both are JSON numbers (not booleans)."""
    return all(isinstance(x, int | float) and not isinstance(x, bool) for x in (a, b))


def _lower_bound(schema: dict[str, Any]) -> tuple[float | None, bool]:
    minimum = schema.get("minimum")
    exclusive = schema.get("exclusiveMinimum")
    if exclusive is True:  # OpenAPI 3.0 / draft 4: a flag on `minimum`
        return minimum, True
    if both_numbers(exclusive, 0) and (minimum is None or exclusive >= minimum):
        return exclusive, True
    return (minimum if both_numbers(minimum, 0) else None), False


def _upper_bound(schema: dict[str, Any]) -> tuple[float | None, bool]:
    maximum = schema.get("maximum")
    exclusive = schema.get("exclusiveMaximum")
    if exclusive is True:
        return maximum, True
    if both_numbers(exclusive, 0) and (maximum is None or exclusive <= maximum):
        return exclusive, True
    return (maximum if both_numbers(maximum, 0) else None), False


def sample_string(schema: dict[str, Any], name: str, description: str, fakes: Fakes) -> str:
    """A string for `schema`: by `pattern`, else `format`, else the kind of value the name wants."""
    min_length = schema.get("minLength")
    max_length = schema.get("maxLength")
    min_length = min_length if isinstance(min_length, int) else 0
    max_length = max_length if isinstance(max_length, int) else None
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        made = fakes.matching(pattern, min_length, max_length)
        if made is not None:
            return made
    fmt = schema.get("format")
    if isinstance(fmt, str):
        made = _from_format(fmt, name, fakes)
        if made is not None:
            return made
    kind = string_kind(name, description, max_length)
    text = fakes.text(kind) if kind is not None else fakes.word()
    return _fit_length(text, min_length, max_length, fakes.rng)


def sample_number(schema: dict[str, Any], name: str, fakes: Fakes, integer: bool) -> Any:
    """A number (an int if `integer`) within the schema's bounds, plausible for the name."""
    rng = fakes.rng
    low, low_exclusive = _lower_bound(schema)
    high, high_exclusive = _upper_bound(schema)
    if low is not None and high is not None and low > high:
        raise Unsatisfiable(f"{name!r}: minimum {low} is above maximum {high}")
    fmt = schema.get("format")
    if not integer and fmt in ("int32", "int64"):
        integer = True
    plausible_low, plausible_high, decimals = number_range(name, integer)
    lo = plausible_low if low is None else max(low, plausible_low)
    hi = plausible_high if high is None else min(high, plausible_high)
    if lo > hi:  # the plausible range lies outside the bounds: stay near the bounds
        span = plausible_high - plausible_low
        if low is not None and high is not None:
            lo, hi = low, high
        elif low is not None:
            lo, hi = low, low + span
        elif high is not None:
            lo, hi = high - span, high
    multiple = schema.get("multipleOf")
    if isinstance(multiple, int | float) and not isinstance(multiple, bool) and multiple > 0:
        return _multiple_in(multiple, lo, hi, low_exclusive, high_exclusive, integer, rng)
    if integer:
        first = math.ceil(lo)
        last = math.floor(hi)
        if low_exclusive and low is not None and first <= low:
            first = math.floor(low) + 1
        if high_exclusive and high is not None and last >= high:
            last = math.ceil(high) - 1
        if first > last:
            raise Unsatisfiable(f"{name!r}: no integer between {lo} and {hi}")
        return rng.randint(first, last)
    for _ in range(8):
        value = round(rng.uniform(lo, hi), decimals)
        too_low = value < lo or (low_exclusive and low is not None and value <= low)
        too_high = value > hi or (high_exclusive and high is not None and value >= high)
        if not too_low and not too_high:
            return value
    return (lo + hi) / 2


def _fit_length(text: str, min_length: int, max_length: int | None, rng: random.Random) -> str:
    if max_length is not None and len(text) > max_length:
        text = text[:max_length].rstrip() if max_length else ""
    while len(text) < min_length:
        text += rng.choice("abcdefghijklmnopqrstuvwxyz")
    return text


def _from_format(fmt: str, name: str, fakes: Fakes) -> str | None:
    """A string in the JSON Schema (or OpenAPI) `format`, or None for formats it does not know."""
    words = set(name_words(name))
    rng = fakes.rng
    if fmt == "date":
        return fakes.date(birth=bool(words & {"birth", "birthday", "dob", "birthdate"}))
    if fmt == "date-time":
        return fakes.datetime()
    if fmt == "time":
        return fakes.time()
    if fmt in ("email", "idn-email"):
        return fakes.text("email")
    if fmt in ("uri", "url", "iri", "uri-reference", "iri-reference"):
        return fakes.text("url")
    if fmt == "uri-template":
        return fakes.text("url") + "/{id}"
    if fmt == "uuid":
        return fakes.uuid()
    if fmt == "ipv4":
        return fakes.ipv4()
    if fmt == "ipv6":
        return fakes.ipv6()
    if fmt in ("hostname", "idn-hostname"):
        return fakes.text("hostname")
    if fmt == "byte":
        return base64.b64encode(fakes.text("text").encode()).decode()
    if fmt == "binary":
        return fakes.text("file_name")
    if fmt == "password":
        return fakes.text("password")
    if fmt == "duration":
        return rng.choice(("P1D", "P3D", "PT2H", "PT30M", "P1W"))
    if fmt == "regex":
        return rng.choice(("^[a-z]+$", "^\\d{3}$", "[A-Z][a-z]*"))
    if fmt == "json-pointer":
        return "/" + fakes.word() + "/" + str(rng.randint(0, 9))
    if fmt == "relative-json-pointer":
        return f"{rng.randint(0, 3)}/{fakes.word()}"
    if fmt in ("int32", "int64"):
        return str(rng.randint(1, 99999))
    if fmt == "phone":
        return fakes.text("phone")
    return None


def _multiple_in(
    multiple: float,
    lo: float,
    hi: float,
    low_exclusive: bool,
    high_exclusive: bool,
    integer: bool,
    rng: random.Random,
) -> Any:
    """A multiple of `multiple` in [lo, hi] (open ends where exclusive)."""
    step = Decimal(repr(multiple))
    first = math.ceil(Decimal(repr(lo)) / step)
    last = math.floor(Decimal(repr(hi)) / step)
    if low_exclusive and first * step <= Decimal(repr(lo)):
        first += 1
    if high_exclusive and last * step >= Decimal(repr(hi)):
        last -= 1
    if first > last:
        raise Unsatisfiable(f"no multiple of {multiple} between {lo} and {hi}")
    for _ in range(10):
        value = step * rng.randint(first, last)
        if integer or value == value.to_integral_value():
            if value == value.to_integral_value():
                return int(value)
            continue
        number = float(value)
        quotient = number / multiple
        if int(quotient) == quotient:  # the float check that JSON Schema validators make
            return number
    raise Unsatisfiable(f"no multiple of {multiple} between {lo} and {hi} found")
