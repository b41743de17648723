"""Which characters request text may hold, and the validation problems of text that holds others.

PostgreSQL refuses NUL in text, and Python refuses to encode a lone surrogate for either database,
so such input used to fail inside the database call (a 500). Control characters in ids and
filters are never meant, and in names they (and bidirectional controls) make a name that shows
as something else. The rules:

- `PARAMETER` (path and query parameters): no control character at all (C0 with TAB, CR and LF,
  DEL, C1) and no lone surrogate;
- `VALUE` (strings and keys of JSON bodies, catalog text): TAB, CR and LF allowed, since texts
  and documents carry lines; no other control character, no lone surrogate;
- `NAME` (catalog names): as `PARAMETER`, and no bidirectional control either.

Problems are dicts shaped like pydantic's errors (`type`, `loc`, `msg`, `input`), so the API
describes them as it describes any validation error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from enum import Enum
from typing import Any

UNSAFE_CHARACTER = "unsafe_character"
NOT_A_NUMBER = "not_finite_number"

_CONTROLS = "\x00-\x1f\x7f-\x9f"
_CONTROLS_BUT_LINES = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_SURROGATES = "\ud800-\udfff"
_BIDI_CONTROLS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"


class TextRule(Enum):
    """What a piece of request text may not hold (see the module's docstring)."""

    PARAMETER = re.compile(f"[{_CONTROLS}{_SURROGATES}]")
    VALUE = re.compile(f"[{_CONTROLS_BUT_LINES}{_SURROGATES}]")
    NAME = re.compile(f"[{_CONTROLS}{_SURROGATES}{_BIDI_CONTROLS}]")


def describe_character(character: str) -> str:
    """`U+0000`, with what kind of character it is."""
    code = ord(character)
    if 0xD800 <= code <= 0xDFFF:
        kind = "lone surrogate (half of a character)"
    elif re.fullmatch(f"[{_BIDI_CONTROLS}]", character):
        kind = "bidirectional control"
    else:
        kind = "control character"
    return f"the {kind} U+{code:04X}"


def text_problem(text: str, rule: TextRule, loc: tuple[str | int, ...]) -> dict[str, Any] | None:
    """The problem of `text` at `loc` under `rule`, naming its first bad character; None if
    it has none."""
    found = rule.value.search(text)
    if found is None:
        return None
    return {
        "type": UNSAFE_CHARACTER,
        "loc": loc,
        "msg": f"holds {describe_character(found.group())} at character {found.start()}, "
        "which is not allowed here",
        "input": text,
    }


def json_problems(data: Any, loc: tuple[str | int, ...]) -> Iterator[dict[str, Any]]:
    """The problems of a parsed JSON value at `loc`: keys and strings under the `VALUE` rule,
    and numbers JSON does not have (NaN, Infinity, which Python's parser lets through)."""
    # Iterative, in document order: a body may nest as deep as the JSON parser allows.
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, loc)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            problem = text_problem(value, TextRule.VALUE, where)
            if problem is not None:
                yield problem
        elif isinstance(value, float) and not math.isfinite(value):
            yield {
                "type": NOT_A_NUMBER,
                "loc": where,
                "msg": f"is {value}, which is not a JSON number",
                "input": value,
            }
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                name = printable(key)
                stack.append((item, (*where, name)))
                stack.append((key, (*where, name, "[key]")))  # the key is checked first
        elif isinstance(value, list):
            stack.extend((item, (*where, i)) for i, item in reversed(list(enumerate(value))))


def printable(text: str) -> str:
    """`text` with the characters `VALUE` refuses escaped (`\\u0000`), for naming a key or a
    name in a message."""
    return TextRule.VALUE.value.sub(lambda found: f"\\u{ord(found.group()):04x}", text)
