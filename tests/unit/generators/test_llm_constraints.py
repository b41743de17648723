"""Verifiable constraints of instruction-following samples, and the tool descriptions that
prompt-format augmentation writes (JSON Schema, Python signatures, plain text)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from generators.llm.tool_text import TOOL_FORMATS, python_type, tools_python, tools_text
from unified.constraints import (
    KINDS,
    Constraint,
    check_constraint,
    compatible_kinds,
    sample_constraint,
    sample_constraints,
)
from unified.model import Tool


def test_constraints_of_a_sample_are_of_different_compatible_kinds() -> None:
    for seed in range(200):
        chosen = sample_constraints(3, random.Random(seed), ["flight", "paris"])
        kinds = [c.kind for c in chosen]
        assert len(set(kinds)) == len(kinds) == 3
        for index, kind in enumerate(kinds):
            assert kind in compatible_kinds(kinds[:index])


def test_the_same_seed_draws_the_same_constraints() -> None:
    first = sample_constraints(2, random.Random(9), ["hotel"])
    assert first == sample_constraints(2, random.Random(9), ["hotel"])
    assert all(isinstance(c, Constraint) and c.text for c in first)


def test_every_kind_can_be_drawn_and_stated() -> None:
    for kind in KINDS:
        constraint = sample_constraint(kind, random.Random(1), ["weather", "forecast"])
        assert constraint.kind == kind and constraint.text.endswith(".")
        assert constraint.as_dict()["kind"] == kind and constraint.as_dict()["text"]


@pytest.mark.parametrize(
    ("constraint", "obeys", "breaks"),
    [
        ({"kind": "length", "max_words": 5}, "one two three", "one two three four five six"),
        ({"kind": "length", "min_words": 3}, "one two three", "one two"),
        ({"kind": "keywords", "include": ["Paris"]}, "I love paris.", "I love Parisians."),
        ({"kind": "forbidden_words", "exclude": ["very"]}, "It is fine.", "It is Very fine."),
        ({"kind": "bullets", "count": 2}, "- a\n- b", "- a\n- b\n* c"),
        ({"kind": "paragraphs", "count": 2}, "One.\n\nTwo.", "One.\nStill one."),
        ({"kind": "json", "text": ""}, '```json\n{"a": 1}\n```', "{a: 1}"),
        ({"kind": "lowercase"}, "all small here", "Not small"),
        ({"kind": "title"}, "<<Trip plan>>\nDay one...", "Trip plan"),
        ({"kind": "end_phrase", "phrase": "Hope this helps!"}, "Done. Hope this helps!", "Done."),
        (
            {"kind": "language", "language": "French"},
            "Le chat est sur la table.",
            "The cat is here.",
        ),
    ],
)
def test_a_check_tells_an_obeying_response_from_a_breaking_one(
    constraint: dict[str, Any], obeys: str, breaks: str
) -> None:
    assert check_constraint(constraint, obeys) is None
    assert check_constraint(constraint, breaks)


def test_an_unknown_kind_is_named() -> None:
    assert check_constraint({"kind": "rhymes"}, "x") == (
        f"unknown constraint kind 'rhymes'; known: {', '.join(KINDS)}"
    )


BOOK = Tool(
    name="book_room",
    description="Book a hotel room.",
    parameters={
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "Where."},
            "nights": {"type": "integer", "default": 1},
            "view": {"type": "string", "enum": ["sea", "garden"]},
            "guests": {"type": "array", "items": {"type": "string"}},
            "note": {"type": ["string", "null"]},
        },
        "required": ["city", "view"],
    },
)


def test_python_signatures_put_required_arguments_first_with_types_and_defaults() -> None:
    text = tools_python([BOOK])
    assert text.splitlines()[0] == (
        'def book_room(city: str, view: Literal["sea", "garden"], nights: int = 1, '
        "guests: list[str] = None, note: str | None = None) -> Any:"
    )
    assert "    Book a hotel room." in text and "        city: Where." in text
    assert python_type({"anyOf": [{"type": "integer"}, {"type": "null"}]}) == "int | None"
    assert python_type({"const": "x"}) == 'Literal["x"]'


def test_plain_text_lists_each_argument_with_what_it_takes() -> None:
    lines = tools_text([BOOK]).splitlines()
    assert lines[0] == "book_room: Book a hotel room."
    assert "  - city (string; required): Where." in lines
    assert '  - view (string; required; one of "sea", "garden")' in lines
    assert "  - nights (integer; optional; default 1)" in lines
    assert "  - guests (array of string; optional)" in lines
    assert tools_text([Tool(name="ping")]) == "ping\n  (no arguments)"


def test_json_schema_lists_the_tools_as_given() -> None:
    assert json.loads(TOOL_FORMATS["json_schema"]([BOOK])) == [
        {"name": BOOK.name, "description": BOOK.description, "parameters": BOOK.parameters}
    ]
