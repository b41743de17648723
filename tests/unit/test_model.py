import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from unified import (
    FORMAT_VERSION,
    MULTI_TURN_VERSION,
    SINGLE_TURN_VERSION,
    Example,
    HttpBinding,
    QueryStyle,
    Sample,
    SampleMeta,
    Step,
    Tool,
    ToolCall,
    ToolSource,
    Turn,
    unified_json_schema,
    unified_json_schema_text,
)

DOCS_SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "unified-sample.schema.json"


def full_sample() -> Sample:
    tool = Tool(
        name="get_weather",
        description="Weather for a city.",
        parameters={
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            "required": ["city"],
        },
        response={"type": "object", "properties": {"temp": {"type": "number"}}},
        source=ToolSource(
            kind="openapi",
            document="weather.yaml",
            place="/paths/~1weather/get",
            http=HttpBinding(method="get", path="/weather", **{"in": {"city": "query"}}),
        ),
    )
    return Sample(
        id="sample-1",
        task_instruction="You are a helpful assistant with tools.",
        tools=[tool],
        format_instruction="Answer with a JSON list of calls.",
        examples=[
            Example(
                query="Weather in Oslo?",
                steps=[Step(tool_calls=[ToolCall(name="get_weather", arguments={"city": "Oslo"})])],
            )
        ],
        query="Weather in Paris and Rome, in f?",
        steps=[
            Step(
                thought="Two cities: two calls.",
                tool_calls=[
                    ToolCall(id="c1", name="get_weather", arguments={"city": "Paris", "unit": "f"}),
                    ToolCall(id="c2", name="get_weather", arguments={"city": "Rome", "unit": "f"}),
                ],
                results=[{"temp": 51.8}, {"temp": 60.1}],
            ),
            Step(answer="Paris 51.8°F, Rome 60.1°F."),
        ],
        meta=SampleMeta(
            style=QueryStyle.parallel,
            source="import:xlam:rows.jsonl#4",
            parent_id="sample-0",
            transformation="tool_order",
            generator="template",
            seed=7,
            created=datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
            extra={"nested": {"unicode": "ü", "big": 2**60, "none": None}},
        ),
    )


def test_json_round_trip_is_lossless() -> None:
    sample = full_sample()
    text = sample.to_json()
    assert Sample.from_json(text) == sample
    assert Sample.from_json(text).to_json() == text


def test_format_version_is_written() -> None:
    assert json.loads(full_sample().to_json())["format_version"] == SINGLE_TURN_VERSION == "1.0"
    assert json.loads(multi_turn_sample().to_json())["format_version"] == MULTI_TURN_VERSION
    assert FORMAT_VERSION == MULTI_TURN_VERSION == "1.1"


def multi_turn_sample() -> Sample:
    return full_sample().model_copy(
        update={
            "turns": [
                Turn(
                    query="And in Oslo, in c?",
                    steps=[
                        Step(
                            tool_calls=[
                                ToolCall(id="c3", name="get_weather", arguments={"city": "Oslo"})
                            ],
                            results=[{"temp": 3.5}],
                        ),
                        Step(answer="Oslo 3.5°C."),
                    ],
                ),
                Turn(query="Thanks!", steps=[Step(answer="You're welcome.")]),
            ]
        }
    )


# A unified row as this format wrote it before follow-up turns existed (format 1.0).
ROW_1_0 = (
    '{"format_version":"1.0","id":"r1","task_instruction":"","tools":[{"name":"f",'
    '"description":"","parameters":{"type":"object","properties":{}},"response":null,'
    '"source":null}],"format_instruction":"","examples":[],"query":"Call f.","steps":[{'
    '"thought":null,"tool_calls":[{"name":"f","arguments":{},"id":null,"acceptable":null}],'
    '"results":[],"answer":null}],"meta":{"style":"simple","source":null,"parent_id":null,'
    '"transformation":null,"generator":null,"seed":null,"created":"2026-11-25T12:00:00Z",'
    '"extra":{}}}'
)


def test_a_format_1_0_row_reads_as_one_turn_and_writes_back_byte_for_byte() -> None:
    sample = Sample.from_json(ROW_1_0)
    assert sample.turns == [] and not sample.is_multi_turn()
    assert [turn.query for turn in sample.conversation()] == ["Call f."]
    assert sample.to_json() == ROW_1_0
    assert "turns" not in sample.model_dump()


def test_a_multi_turn_sample_round_trips_as_format_1_1() -> None:
    sample = multi_turn_sample()
    text = sample.to_json()
    row = json.loads(text)
    assert row["format_version"] == "1.1"
    assert [turn["query"] for turn in row["turns"]] == ["And in Oslo, in c?", "Thanks!"]
    back = Sample.from_json(text)
    assert back == sample.model_copy(update={"format_version": "1.1"})
    assert back.to_json() == text
    assert back.format_version == "1.1" and back.is_multi_turn()


def test_a_1_0_row_given_follow_up_turns_is_read_as_1_1() -> None:
    row = json.loads(ROW_1_0)
    row["turns"] = [{"query": "Again.", "steps": []}]
    sample = Sample.model_validate(row)
    assert sample.format_version == "1.1"


def test_conversation_helpers_cover_every_turn() -> None:
    sample = multi_turn_sample()
    assert [turn.query for turn in sample.conversation()] == [
        "Weather in Paris and Rome, in f?",
        "And in Oslo, in c?",
        "Thanks!",
    ]
    assert [c.id for c in sample.tool_calls()] == ["c1", "c2", "c3"]
    assert len(sample.all_steps()) == 5
    assert sample.final_answer() == "You're welcome."
    # What single-turn code reads is the first turn, unchanged.
    assert sample.query == "Weather in Paris and Rome, in f?" and len(sample.steps) == 2


def test_helpers() -> None:
    sample = full_sample()
    assert [c.id for c in sample.tool_calls()] == ["c1", "c2"]
    assert sample.final_answer() == "Paris 51.8°F, Rome 60.1°F."
    assert sample.tools[0].openai()["function"]["name"] == "get_weather"


def test_arguments_given_as_json_text_are_parsed_and_bad_text_is_kept() -> None:
    assert ToolCall(name="f", arguments='{"a": 1}').arguments == {"a": 1}
    assert ToolCall(name="f", arguments='{"a": ').arguments == '{"a": '
    assert ToolCall(name="f", arguments="[1]").arguments == "[1]"


def test_unknown_fields_and_bad_tool_names_are_refused() -> None:
    with pytest.raises(ValidationError, match="extra"):
        Sample.model_validate({"id": "x", "query": "q", "querry": "typo"})
    with pytest.raises(ValidationError, match="pattern"):
        Tool(name="get weather")


def test_every_sample_validates_against_the_published_schema() -> None:
    schema = unified_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(json.loads(full_sample().to_json()), schema)
    jsonschema.validate(json.loads(multi_turn_sample().to_json()), schema)
    jsonschema.validate(json.loads(ROW_1_0), schema)
    assert schema["$id"].endswith("unified-sample-1.1.json")


def test_published_schema_in_docs_is_current() -> None:
    assert DOCS_SCHEMA.read_text() == unified_json_schema_text(), (
        "docs/unified-sample.schema.json is stale: run "
        "`actionforge schema > docs/unified-sample.schema.json`"
    )
