"""Sampling values from JSON Schemas: every keyword the sampler models yields values that the
schema accepts, realistic by format and name, deterministic for an RNG."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from unified.values.fakes import Fakes
from unified.values.schema_values import SchemaSampler, Unsatisfiable
from unified.values.value_kinds import number_range, string_kind

SEEDS = range(150)


def draws(schema: dict[str, Any], name: str = "value") -> list[Any]:
    """One value per seed for a property `name` with this schema."""
    sampler = SchemaSampler({"type": "object", "properties": {name: schema}, "required": [name]})
    return [sampler.arguments(Fakes(random.Random(seed)))[name] for seed in SEEDS]


def assert_valid(schema: dict[str, Any], values: list[Any]) -> None:
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    for value in values:
        errors = [error.message for error in validator.iter_errors(value)]
        assert not errors, f"{value!r}: {errors}"


UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
FORMATS: dict[str, Callable[[str], bool]] = {
    "date": lambda v: date.fromisoformat(v).year in range(2024, 2028),
    "date-time": lambda v: re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:00Z", v) is not None,
    "time": lambda v: re.fullmatch(r"\d\d:\d\d:00Z", v) is not None,
    "email": lambda v: re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]+", v) is not None,
    "uri": lambda v: re.match(r"https?://[^/\s]+\.[a-z]+/", v) is not None,
    "url": lambda v: v.startswith(("http://", "https://")),
    "uuid": lambda v: re.fullmatch(UUID4, v) is not None,
    "ipv4": lambda v: all(0 < int(part) < 255 for part in v.split(".")) and v.count(".") == 3,
    "ipv6": lambda v: v.count(":") >= 2,
    "hostname": lambda v: re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", v) is not None,
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_strings_follow_their_format(fmt: str) -> None:
    schema = {"type": "string", "format": fmt}
    values = draws(schema)
    assert_valid(schema, values)
    assert all(FORMATS[fmt](value) for value in values), values[:5]
    assert len(set(values)) > 30, "values vary from seed to seed"


@pytest.mark.parametrize(
    ("name", "check"),
    [
        ("city", lambda v: v[:1].isupper() and "@" not in v),
        ("email", lambda v: "@" in v),
        ("firstName", lambda v: v.isalpha() and v[0].isupper()),
        ("last_name", lambda v: v[0].isupper()),
        ("phone", lambda v: sum(c.isdigit() for c in v) >= 7),
        ("website_url", lambda v: v.startswith("http")),
        ("user_id", lambda v: any(c.isdigit() for c in v)),
        ("currency", lambda v: re.fullmatch(r"[A-Z]{3}", v) is not None),
        ("zip_code", lambda v: re.fullmatch(r"\d{5}(-\d{4})?", v) is not None),
        ("departure_date", lambda v: date.fromisoformat(v) is not None),
        ("search_query", lambda v: 0 < len(v.split()) <= 3),
        ("company", lambda v: len(v) > 3),
        ("country", lambda v: "(" not in v and v[0].isupper()),
        ("language", lambda v: v[0].isupper()),
        ("address", lambda v: "\n" not in v and any(c.isdigit() for c in v)),
        ("name", lambda v: v.isalpha() and v[0].isupper()),
        ("title", lambda v: v[0].isupper() and " " in v),
        ("description", lambda v: v.endswith(".") and len(v.split()) >= 3),
    ],
)
def test_strings_are_realistic_for_their_name(name: str, check: Callable[[str], bool]) -> None:
    values = draws({"type": "string"}, name)
    assert all(check(value) for value in values), values[:5]


def test_a_code_system_in_the_description_beats_the_name() -> None:
    assert string_kind("from", "ISO 4217 code.", None) == "currency_code"
    assert string_kind("origin", "IATA code of the departure airport.", None) == "airport"
    assert string_kind("origin", "", None) == "city"
    assert string_kind("country", "", 2) == "country_code"
    assert string_kind("xyzzy", "", None) is None


def test_patterns_are_matched() -> None:
    schema = {"type": "string", "pattern": "^[A-Z]{3}-\\d{2,4}$"}
    values = draws(schema)
    assert_valid(schema, values)
    assert len(set(values)) > 100


def test_pattern_repeats_stay_short_and_unknown_regexes_give_none() -> None:
    values = draws({"type": "string", "pattern": "^[a-z]+$"})
    assert max(len(value) for value in values) <= 9
    fakes = Fakes(random.Random(0))
    assert fakes.matching("\\p{L}+", 0, None) is None


def test_patterns_respect_length_bounds() -> None:
    schema = {"type": "string", "pattern": "^[a-z]+$", "minLength": 4, "maxLength": 6}
    values = draws(schema)
    assert_valid(schema, values)


def test_string_lengths_are_met_by_trimming_and_padding() -> None:
    schema = {"type": "string", "minLength": 3, "maxLength": 3}
    assert_valid(schema, draws(schema, "city"))
    long_schema = {"type": "string", "minLength": 40}
    assert_valid(long_schema, draws(long_schema, "name"))


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "integer", "minimum": 1, "maximum": 5},
        {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 3},
        {"type": "integer", "minimum": 1000, "multipleOf": 25},
        {"type": "integer", "minimum": -10, "maximum": -5},
        {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        {"type": "number", "minimum": 0.5, "maximum": 0.75},
        {"type": "number", "multipleOf": 0.01, "minimum": 0, "maximum": 10},
        {"type": "number", "multipleOf": 0.5, "exclusiveMaximum": 100},
        {"type": "number", "minimum": 100000},
        {"type": "integer", "format": "int64", "minimum": 9007199254740993},
    ],
)
def test_numbers_stay_within_bounds(schema: dict[str, Any]) -> None:
    values = draws(schema)
    assert_valid(schema, values)
    if schema["type"] == "integer":
        assert all(isinstance(value, int) for value in values)


def test_number_ranges_follow_the_name() -> None:
    assert number_range("latitude", False) == (-90, 90, 4)
    assert number_range("passengers", True)[:2] == (1, 8)
    for value in draws({"type": "integer"}, "month"):
        assert 1 <= value <= 12
    for value in draws({"type": "number"}, "longitude"):
        assert -180 <= value <= 180


def test_enums_consts_and_booleans() -> None:
    assert set(draws({"type": "string", "enum": ["a", "b", None]})) == {"a", "b"}
    assert set(draws({"const": {"k": 1}}, "c").__iter__().__next__()) == {"k"}
    assert set(draws({"type": "boolean"})) == {True, False}


def test_type_unions_prefer_a_value_to_null() -> None:
    values = draws({"type": ["string", "null"]})
    assert all(isinstance(value, str) for value in values)
    assert draws({"type": "null"})[0] is None
    mixed = draws({"type": ["integer", "string"]})
    assert {type(value) for value in mixed} == {int, str}


def test_arrays_respect_item_counts_and_uniqueness() -> None:
    schema = {
        "type": "array",
        "items": {"type": "integer", "minimum": 1, "maximum": 4},
        "minItems": 2,
        "maxItems": 4,
        "uniqueItems": True,
    }
    values = draws(schema)
    assert_valid(schema, values)
    assert {len(value) for value in values} == {2, 3, 4}
    tuple_schema = {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]}
    assert_valid(tuple_schema, draws(tuple_schema))


def test_arrays_without_items_hold_numbers_or_a_matrix() -> None:
    assert all(len(v) >= 2 and all(isinstance(x, int) for x in v) for v in draws({"type": "array"}))
    matrices = draws({"type": "array"}, "matA")
    assert all(all(isinstance(row, list) for row in m) for m in matrices)
    points = draws({"type": "array", "items": {"type": "number"}}, "coordinates")
    assert {len(point) for point in points} == {2}


def test_nested_objects_have_required_always_and_optional_sometimes() -> None:
    schema = {
        "type": "object",
        "properties": {
            "street": {"type": "string"},
            "city": {"type": "string"},
            "geo": {
                "type": "object",
                "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}},
                "required": ["lat", "lon"],
            },
        },
        "required": ["city"],
        "additionalProperties": False,
    }
    values = draws(schema, "address")
    assert_valid(schema, values)
    assert all("city" in value for value in values)
    optional = [value for value in values if "geo" in value]
    assert 0 < len(optional) < len(values)


def test_maps_get_entries_from_additional_properties() -> None:
    schema = {"type": "object", "additionalProperties": {"type": "integer"}, "minProperties": 1}
    values = draws(schema, "gradeDict")
    assert_valid(schema, values)


def test_any_of_and_one_of_pick_a_branch() -> None:
    any_of = {"anyOf": [{"type": "string", "format": "date"}, {"type": "integer"}]}
    values = draws(any_of)
    assert_valid(any_of, values)
    assert {type(value) for value in values} == {str, int}
    one_of = {
        "oneOf": [
            {"type": "object", "properties": {"kind": {"const": "cat"}}, "required": ["kind"]},
            {"type": "object", "properties": {"kind": {"const": "dog"}}, "required": ["kind"]},
        ]
    }
    assert {value["kind"] for value in draws(one_of)} == {"cat", "dog"}
    optional = {"anyOf": [{"type": "null"}, {"type": "integer", "minimum": 3, "maximum": 3}]}
    assert set(draws(optional)) == {3}


def test_all_of_is_merged() -> None:
    schema = {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
            {"properties": {"b": {"type": "string"}}, "required": ["b"]},
        ]
    }
    values = draws(schema)
    assert_valid(schema, values)
    assert all(set(value) >= {"a", "b"} for value in values)


def test_refs_into_defs_and_circular_refs_end() -> None:
    parameters = {
        "type": "object",
        "properties": {"root": {"$ref": "#/$defs/node"}},
        "required": ["root"],
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "label": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                    "parent": {"$ref": "#/$defs/node"},
                },
                "required": ["label", "children"],
            }
        },
    }
    sampler = SchemaSampler(parameters)
    values = [sampler.arguments(Fakes(random.Random(seed))) for seed in SEEDS]
    assert_valid(parameters, values)

    def depth(node: dict[str, Any]) -> int:
        inner = [*node["children"], *([node["parent"]] if "parent" in node else [])]
        return 1 + max((depth(child) for child in inner), default=0)

    assert max(depth(value["root"]) for value in values) >= 3


def test_defaults_and_examples_are_used_sometimes() -> None:
    values = draws({"type": "integer", "default": 7, "minimum": 100, "maximum": 200})
    assert 7 in values and any(value >= 100 for value in values)
    examples = draws({"type": "string", "examples": ["apis.guru"]}, "provider")
    assert "apis.guru" in examples and len(set(examples)) > 2


def test_an_empty_schema_gets_a_plausible_value() -> None:
    assert all(isinstance(value, str) for value in draws({}, "city"))
    assert all(isinstance(value, int) and 1 <= value <= 12 for value in draws({}, "month"))
    assert all(isinstance(value, str) and value for value in draws({}, "xyzzy"))


def test_required_always_optional_sometimes_and_one_argument_at_least() -> None:
    parameters = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
    }
    sampler = SchemaSampler(parameters)
    values = [sampler.arguments(Fakes(random.Random(seed))) for seed in SEEDS]
    assert all(value for value in values)
    assert {frozenset(value) for value in values} >= {frozenset("a"), frozenset("b")}


def test_the_same_rng_gives_the_same_value() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "n": {"type": "number"}}}
    sampler = SchemaSampler(schema)
    first = [sampler.arguments(Fakes(random.Random(seed))) for seed in SEEDS]
    assert first == [sampler.arguments(Fakes(random.Random(seed))) for seed in SEEDS]


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (False, "has the schema false"),
        ({"type": "integer", "minimum": 5, "maximum": 1}, "minimum 5 is above maximum 1"),
        ({"type": "array", "minItems": 4, "maxItems": 2}, "minItems is above maxItems"),
        ({"$ref": "other.json#/x"}, "is not a reference inside the tool's schema"),
        ({"$ref": "#/$defs/missing"}, "points at nothing"),
        ({"enum": []}, "has an empty enum"),
        ({"allOf": [{"type": "string"}, {"type": "integer"}]}, "no type is both"),
    ],
)
def test_schemas_that_cannot_be_met_raise_unsatisfiable(schema: Any, message: str) -> None:
    sampler = SchemaSampler({"type": "object", "properties": {"x": schema}, "required": ["x"]})
    with pytest.raises(Unsatisfiable, match=re.escape(message)):
        sampler.arguments(Fakes(random.Random(0)))
