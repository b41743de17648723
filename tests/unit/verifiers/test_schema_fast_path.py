"""The fast validity check never lets through arguments `jsonschema` refuses, and the format
verifier gives the verdicts it gave without it."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from real_unified_rows import bfcl_samples, dataset_samples, template_job_samples, wrong_answers

import verifiers.format
from verifiers.format import FormatVerifier
from verifiers.schema_fast_path import fast_check

TYPES = ["string", "integer", "number", "boolean", "object", "array", "null"]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**66), max_value=2**66)
    | st.floats()
    | st.text(max_size=6)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)
NUMBERS = (
    st.integers(-5, 5) | st.floats(-5, 5, allow_nan=False) | st.sampled_from([0.1, 0.3, 1e308])
)
KEYWORDS: dict[str, st.SearchStrategy[Any]] = {
    "type": st.sampled_from(TYPES)
    | st.lists(st.sampled_from(TYPES), min_size=1, max_size=3, unique=True),
    "enum": st.lists(SCALARS, min_size=1, max_size=3),
    "const": SCALARS,
    "minimum": NUMBERS,
    "maximum": NUMBERS,
    "exclusiveMinimum": NUMBERS,
    "exclusiveMaximum": NUMBERS,
    "multipleOf": st.sampled_from([1, 2, 0.1, 0.5, 3]),
    "minLength": st.integers(0, 3),
    "maxLength": st.integers(0, 3),
    "pattern": st.sampled_from(["^[A-Z]{3}$", "a", "^\\d+$", "\\s", "^.$", "(?i)^ab"]),
    "format": st.sampled_from(["date", "date-time", "email", "ipv4", "uuid", "regex", "time"]),
    "minItems": st.integers(0, 2),
    "maxItems": st.integers(0, 2),
    "uniqueItems": st.booleans(),
    "required": st.lists(st.sampled_from(["a", "b", "c"]), max_size=2, unique=True),
    "minProperties": st.integers(0, 2),
    "maxProperties": st.integers(0, 2),
    "description": st.text(max_size=5),
    "default": VALUES,
    "nullable": st.booleans(),
}


def schemas() -> st.SearchStrategy[Any]:
    leaf = st.fixed_dictionaries({}, optional=KEYWORDS)
    return st.recursive(
        leaf | st.booleans(),
        lambda inner: st.fixed_dictionaries(
            {},
            optional={
                **KEYWORDS,
                "properties": st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3),
                "items": inner,
                "additionalProperties": inner,
                "not": inner,
                "allOf": st.lists(inner, min_size=1, max_size=2),
                "anyOf": st.lists(inner, min_size=1, max_size=2),
                "oneOf": st.lists(inner, min_size=1, max_size=2),
            },
        ),
        max_leaves=6,
    )


def python_valid(schema: Any, instance: Any) -> bool:
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return bool(validator.is_valid(instance))


INSTANCES = st.one_of(
    VALUES,
    st.sampled_from(
        [
            "ABC\n",
            "2026-02-30",
            "2026-02-28",
            "12:00:00Z",
            "a@b",
            "1.2.3.4",
            "(?<name>x)",
            float("inf"),
            0.30000000000000004,
            0.3,
            "\uff11\uff12",  # fullwidth digits: Python's \\d takes them
            "\ufeff",
            "Ab",
        ]
    ),
    st.dictionaries(st.sampled_from(["a", "b", "c"]), VALUES, max_size=3),
)


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(schema=schemas(), instances=st.lists(INSTANCES, min_size=1, max_size=6))
def test_the_fast_check_accepts_only_what_jsonschema_accepts(
    schema: Any, instances: list[Any]
) -> None:
    try:
        Draft202012Validator.check_schema(schema)
    except Exception:
        return
    check = fast_check(schema)
    if check is None:
        return
    for instance in instances:
        if check(instance):
            assert python_valid(schema, instance), (schema, instance)


@pytest.mark.parametrize(
    ("schema", "instance"),
    [
        ({"type": "string", "pattern": "^[A-Z]{3}$"}, "ABC\n"),  # Python's $ takes a newline
        ({"type": "number", "multipleOf": 0.1}, 0.5),
        ({"type": "string", "format": "date"}, "2026-02-28"),
        ({"type": "integer", "maximum": 10}, 10.0),
        ({"properties": {"a": {"enum": ["x", 1]}}, "required": ["a"]}, {"a": 1.0}),
    ],
)
def test_valid_instances_pass_fast(schema: dict[str, Any], instance: Any) -> None:
    check = fast_check(schema)
    assert check is not None
    assert check(instance) and python_valid(schema, instance)


@pytest.mark.parametrize(
    ("schema", "instance"),
    [
        ({"type": "number", "multipleOf": 0.1}, 0.3),  # 0.3 / 0.1 is not a whole number
        ({"type": "string", "format": "date"}, "2026-02-30"),
        ({"maximum": 1e308}, float("inf")),
        ({"not": {"multipleOf": 0.1}}, float("inf")),  # jsonschema's multipleOf raises on inf
        ({"type": "number"}, float("nan")),
        ({"type": "string", "pattern": "^\\d+$"}, "x"),
        ({"properties": {"a": {"enum": [1]}}}, {"a": True}),
        ({"properties": {"a": {"maxLength": 1, "pattern": "^.$"}}}, {"a": "\ud800\ud800"}),
    ],
)
def test_invalid_or_doubtful_instances_are_left_to_jsonschema(
    schema: dict[str, Any], instance: Any
) -> None:
    check = fast_check(schema)
    assert check is not None
    assert not check(instance)


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#/$defs/a", "$defs": {"a": {"type": "string"}}},
        {"patternProperties": {"^x": {"type": "string"}}},
        {"properties": {"a": {"dependentRequired": {"a": ["b"]}}}},
        {"$schema": "http://json-schema.org/draft-07/schema#", "items": [{"type": "string"}]},
        {"dependencies": {"a": ["b"]}},
        {"unevaluatedProperties": False},
        {"prefixItems": [{"type": "string"}]},
        {"contains": {"type": "string"}},
    ],
)
def test_schemas_with_other_keywords_get_no_fast_check(schema: dict[str, Any]) -> None:
    assert fast_check(schema) is None


def test_format_verdicts_are_those_of_jsonschema_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    samples = dataset_samples() + template_job_samples() + bfcl_samples()
    samples += wrong_answers(samples)
    fast = [FormatVerifier().verify(sample) for sample in samples]
    monkeypatch.setattr(verifiers.format, "fast_check", lambda _schema: None)
    plain = [FormatVerifier().verify(sample) for sample in samples]
    assert fast == plain
    assert sum(not verdict.accepted for verdict in plain) > 300
