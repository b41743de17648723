"""Output schemas of the LLM generator: each style's schema takes the calls of that style and
refuses others, and the grammar copies of tool schemas are ones xgrammar compiles whose matches
the format verifier accepts."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rstr
import xgrammar
from jsonschema import Draft202012Validator
from tiny_model import cached_tiny_model
from vllm.v1.structured_output.backend_xgrammar import has_xgrammar_unsupported_json_features

from generators.llm.output_schema import (
    FORMAT_PATTERNS,
    SchemaLimits,
    call_plan,
    grammar_schema,
    instruction_schema,
    rephrase_schema,
    response_schema,
    sample_schema,
)
from unified.catalogs import load_catalog
from unified.model import QueryStyle, Sample, Step, Tool, ToolCall
from verifiers import FormatVerifier

ROOT = Path(__file__).resolve().parents[3]
LIMITS = SchemaLimits(max_calls=3)
WEATHER = Tool(
    name="get_weather",
    parameters={
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name."},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 14},
        },
        "required": ["city"],
    },
)
HOTELS = Tool(
    name="search_hotels",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}, "nights": {"type": "integer", "minimum": 1}},
        "required": ["city", "nights"],
    },
)
PING = Tool(name="ping", description="Check that the service answers.")
OSLO = {"name": "get_weather", "arguments": {"city": "Oslo"}}
ROME = {"name": "get_weather", "arguments": {"city": "Rome", "unit": "celsius", "days": 3}}
HOTEL = {"name": "search_hotels", "arguments": {"city": "Rome", "nights": 2}}


def schema_for(style: QueryStyle, shown: list[Tool], called: list[str]) -> dict[str, Any]:
    plan = call_plan(style, [tool.name for tool in shown], called, LIMITS)
    return sample_schema(style, shown, plan, LIMITS)


def accepts(schema: dict[str, Any], value: Any) -> bool:
    return bool(Draft202012Validator(schema).is_valid(value))


def answer(*calls: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"query": "What is the weather?", "calls": list(calls), **more}


def test_simple_takes_exactly_one_call_of_its_tool() -> None:
    schema = schema_for(QueryStyle.simple, [WEATHER], ["get_weather"])
    assert accepts(schema, answer(OSLO))
    assert accepts(schema, answer(ROME))
    assert not accepts(schema, answer())
    assert not accepts(schema, answer(OSLO, ROME))
    assert not accepts(schema, answer(HOTEL))
    assert not accepts(schema, answer({"name": "get_weather", "arguments": {"city": 3}}))
    assert not accepts(schema, answer({"name": "get_weather", "arguments": {"town": "Oslo"}}))
    assert not accepts(schema, answer({"name": "get_weather", "arguments": {"unit": "celsius"}}))
    assert not accepts(
        schema, answer({"name": "get_weather", "arguments": {"city": "x", "days": 99}})
    )
    assert not accepts(schema, {"calls": [OSLO]})
    assert not accepts(schema, answer(OSLO, extra="field"))


def test_multiple_takes_one_call_of_any_tool_shown() -> None:
    schema = schema_for(QueryStyle.multiple, [HOTELS, WEATHER, PING], ["get_weather"])
    assert accepts(schema, answer(OSLO))
    assert accepts(schema, answer(HOTEL))
    assert accepts(schema, answer({"name": "ping", "arguments": {}}))
    assert not accepts(schema, answer({"name": "ping", "arguments": {"x": 1}}))
    assert not accepts(schema, answer(OSLO, HOTEL))
    assert not accepts(schema, answer({"name": "search_hotels", "arguments": {"city": "Rome"}}))


def test_parallel_takes_two_or_more_calls_of_its_one_tool() -> None:
    schema = schema_for(QueryStyle.parallel, [HOTELS, WEATHER], ["get_weather", "get_weather"])
    assert accepts(schema, answer(OSLO, ROME))
    assert accepts(schema, answer(OSLO, ROME, OSLO))
    assert not accepts(schema, answer(OSLO))
    assert not accepts(schema, answer(OSLO, ROME, OSLO, ROME))  # max_calls is 3
    assert not accepts(schema, answer(OSLO, HOTEL))


def test_parallel_multiple_takes_two_or_more_calls_of_the_tools_it_calls() -> None:
    schema = schema_for(
        QueryStyle.parallel_multiple, [HOTELS, WEATHER, PING], ["get_weather", "search_hotels"]
    )
    assert accepts(schema, answer(OSLO, HOTEL))
    assert accepts(schema, answer(HOTEL, OSLO, ROME))
    assert not accepts(schema, answer(OSLO))
    assert not accepts(schema, answer(OSLO, {"name": "ping", "arguments": {}}))


def test_irrelevance_allows_no_call_and_asks_why() -> None:
    schema = schema_for(QueryStyle.irrelevance, [WEATHER], [])
    assert accepts(schema, answer(answer="No tool translates text."))
    assert not accepts(schema, answer(OSLO, answer="Here you go."))
    assert not accepts(schema, answer())


def test_texts_are_capped_and_never_empty() -> None:
    limits = SchemaLimits(max_query_chars=20, max_text_chars=30)
    for schema, field in [
        (instruction_schema(limits), "instruction"),
        (rephrase_schema(limits), "query"),
        (response_schema(limits), "response"),
    ]:
        texts = {"instruction": "i", "response": "r", "query": "q"}
        valid = {key: texts[key] for key in schema["required"]}
        assert accepts(schema, valid)
        assert not accepts(schema, {**valid, field: ""})
        assert not accepts(schema, {**valid, field: "x" * 31})


def test_a_format_becomes_a_pattern_whose_matches_the_format_checker_accepts() -> None:
    rng = random.Random(4)
    for fmt, pattern in FORMAT_PATTERNS.items():
        copy = grammar_schema({"type": "string", "format": fmt}, LIMITS)
        assert copy == {"type": "string", "pattern": pattern}
        checker = Draft202012Validator(
            {"type": "string", "format": fmt}, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        for _ in range(40):
            value = rstr.Rstr(rng).xeger(pattern)
            assert checker.is_valid(value), (fmt, value)


def test_patterns_xgrammar_cannot_follow_are_left_out() -> None:
    for pattern in [
        r"^(?=.*\d)\w+$",
        r"^(a)\1$",
        r"\bword\b",
        r"^\p{L}+$",
        r"(?i)abc",
        "(unclosed",
    ]:
        assert "pattern" not in grammar_schema({"type": "string", "pattern": pattern}, LIMITS)
    kept = grammar_schema({"type": "string", "pattern": r"^[A-Z]{2}-\d{4}$"}, LIMITS)
    assert kept == {"type": "string", "pattern": r"^[A-Z]{2}-\d{4}$"}


def test_free_strings_are_capped_but_patterns_keep_no_length_bounds() -> None:
    limits = SchemaLimits(max_string_chars=20)
    assert grammar_schema({"type": "string"}, limits) == {"type": "string", "maxLength": 20}
    assert grammar_schema({"type": "string", "maxLength": 5}, limits)["maxLength"] == 5
    assert grammar_schema({"type": "string", "minLength": 50}, limits)["maxLength"] == 50
    patterned = grammar_schema({"type": "string", "pattern": "^a+$", "maxLength": 5}, limits)
    assert patterned == {"type": "string", "pattern": "^a+$"}
    assert "maxLength" not in grammar_schema({"type": "string", "enum": ["a", "b"]}, limits)


def test_numbers_get_bounds_and_multiples_become_an_enum_of_valid_values() -> None:
    bounded = grammar_schema({"type": "number"}, LIMITS)
    assert bounded["minimum"] < 0 < bounded["maximum"]
    original = {"type": "number", "multipleOf": 0.1, "minimum": 0.2, "exclusiveMaximum": 3}
    copy = grammar_schema(original, LIMITS)
    assert copy["enum"] and "multipleOf" not in copy
    assert all(Draft202012Validator(original).is_valid(value) for value in copy["enum"])
    whole = grammar_schema({"type": "integer", "multipleOf": 5, "minimum": 7}, LIMITS)
    assert whole["enum"][:3] == [10, 15, 20]
    legacy = grammar_schema({"type": "integer", "minimum": 0, "exclusiveMinimum": True}, LIMITS)
    assert "exclusiveMinimum" not in legacy and legacy["minimum"] == 0


def test_long_enums_keep_a_prefix_and_arrays_are_capped() -> None:
    values = [f"v{i}" for i in range(1000)]
    assert grammar_schema({"enum": values}, SchemaLimits(max_enum=10))["enum"] == values[:10]
    limits = SchemaLimits(max_items=4)
    assert grammar_schema({"type": "array"}, limits)["maxItems"] == 4
    assert grammar_schema({"type": "array", "minItems": 6}, limits)["maxItems"] == 6
    assert grammar_schema({"type": "array", "maxItems": 2}, limits)["maxItems"] == 2
    dropped = grammar_schema({"type": "array", "uniqueItems": True, "contains": {}}, limits)
    assert "uniqueItems" not in dropped and "contains" not in dropped


def test_all_of_is_merged_annotations_dropped_and_one_of_read_as_any_of() -> None:
    schema = {
        "description": "dropped",
        "default": {},
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "string", "maxLength": 3}}},
            {"properties": {"b": {"type": "integer", "examples": [1]}}, "required": ["b"]},
        ],
        "required": ["a"],
    }
    copy = grammar_schema(schema, LIMITS)
    assert copy["properties"]["a"] == {"type": "string", "maxLength": 3}
    assert copy["properties"]["b"]["type"] == "integer"
    assert set(copy["required"]) == {"a", "b"}
    assert "description" not in copy and "default" not in copy and "allOf" not in copy
    either = grammar_schema({"oneOf": [{"type": "integer"}, {"type": "boolean"}]}, LIMITS)
    assert either == {
        "anyOf": [{"type": "integer", "minimum": -(10**12), "maximum": 10**12}, {"type": "boolean"}]
    }


def test_tools_with_refs_move_under_the_root_without_colliding() -> None:
    def node_tool(name: str, leaf: str) -> Tool:
        return Tool(
            name=name,
            parameters={
                "type": "object",
                "$defs": {"Node": {"type": "object", "properties": {"v": {"type": leaf}}}},
                "properties": {"root": {"$ref": "#/$defs/Node"}, "self": {"$ref": "#"}},
                "required": ["root"],
            },
        )

    first, second = node_tool("tree_a", "integer"), node_tool("tree_b", "boolean")
    schema = schema_for(QueryStyle.multiple, [first, second], ["tree_a"])
    assert set(schema["$defs"]) == {"tool0", "tool1"}
    ok_a = {"name": "tree_a", "arguments": {"root": {"v": 1}, "self": {"root": {"v": 2}}}}
    ok_b = {"name": "tree_b", "arguments": {"root": {"v": True}}}
    assert accepts(schema, answer(ok_a)) and accepts(schema, answer(ok_b))
    assert not accepts(schema, answer({"name": "tree_b", "arguments": {"root": {"v": 1}}}))
    assert not accepts(schema, answer({"name": "tree_a", "arguments": {"root": {"v": "x"}}}))


def catalog_tools() -> list[Tool]:
    paths = sorted((ROOT / "tests" / "data" / "functions").glob("*.json"))
    paths += sorted((ROOT / "tests" / "data" / "python").glob("*.py"))
    paths += [ROOT / "examples" / "travel_api.yaml"]
    paths += [
        path
        for path in sorted((ROOT / "tests" / "data" / "openapi").glob("*"))
        if path.suffix in (".json", ".yaml")
        and not any(bad in path.name for bad in ("missing-reference", "petstore-separate"))
    ]
    return [tool for path in paths for tool in load_catalog(path).tools]


TOOLS = catalog_tools()


def test_every_catalog_tool_gives_a_schema_vllm_and_xgrammar_take() -> None:
    assert len(TOOLS) > 150
    for tool in TOOLS:
        for style in (QueryStyle.simple, QueryStyle.parallel):
            schema = schema_for(style, [tool], [tool.name])
            assert not has_xgrammar_unsupported_json_features(schema), tool.name
            xgrammar.Grammar.from_json_schema(json.dumps(schema))


class RandomDecoder:
    """Picks random tokens among those xgrammar allows, as a random model under structured
    outputs does, with the tiny test model's tokenizer."""

    def __init__(self) -> None:
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(cached_tiny_model())
        self.vocab = len(self.tokenizer)
        info = xgrammar.TokenizerInfo.from_huggingface(
            self.tokenizer, vocab_size=self.vocab, stop_token_ids=[self.tokenizer.eos_token_id]
        )
        self.compiler = xgrammar.GrammarCompiler(info)

    def decode(self, schema: dict[str, Any], rng: random.Random, limit: int = 800) -> str | None:
        grammar = self.compiler.compile_json_schema(json.dumps(schema), any_whitespace=False)
        matcher = xgrammar.GrammarMatcher(grammar)
        bitmask = xgrammar.allocate_token_bitmask(1, self.vocab)
        tokens: list[int] = []
        for _ in range(limit):
            matcher.fill_next_token_bitmask(bitmask)
            bits = np.unpackbits(bitmask.numpy().view(np.uint8), bitorder="little")[: self.vocab]
            token = int(rng.choice(list(np.flatnonzero(bits))))
            assert matcher.accept_token(token)
            if matcher.is_terminated():
                return str(self.tokenizer.decode(tokens))
            tokens.append(token)
        return None


# Rules the grammar copy must loosen (they cannot be expressed to xgrammar): outputs may break them.
LOOSENED = re.compile(r"rule: (contains|not|if|dependent\w+|pattern) at")


@pytest.mark.slow
def test_what_the_grammar_lets_through_passes_the_format_verifier() -> None:
    decoder = RandomDecoder()
    verifier = FormatVerifier()
    rng = random.Random(11)
    checked = 0
    for tool in TOOLS:
        schema = schema_for(QueryStyle.simple, [tool], [tool.name])
        for _ in range(2):
            text = decoder.decode(schema, rng)
            if text is None:
                continue
            data = json.loads(text, strict=False)
            calls = [ToolCall(name=c["name"], arguments=c["arguments"]) for c in data["calls"]]
            sample = Sample(
                id="s", tools=[tool], query=data["query"], steps=[Step(tool_calls=calls)]
            )
            verdict = verifier.verify(sample)
            assert verdict.accepted or LOOSENED.search(verdict.detail or ""), (
                tool.name,
                verdict,
                text,
            )
            checked += 1
    assert checked > 300
