"""Real public rows (tests/data/formats, see SOURCES.md): import them, check concrete fields, and
export them back to the same JSON."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import orjson
import pytest
from format_samples import DATA

from unified.acceptable import bfcl_possible_answer
from unified.formats import read_samples, write_samples
from unified.model import Acceptable, QueryStyle, Sample


def _rows(path: Path) -> list[Any]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def _exported(samples: list[Sample], fmt: str) -> list[Any]:
    out = io.BytesIO()
    assert write_samples(samples, out, fmt) == len(samples)
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    """An xLAM row with its JSON-text fields parsed, so that equal JSON compares equal."""
    return {k: orjson.loads(v) if k in ("tools", "answers") else v for k, v in row.items()}


# ---- xLAM ------------------------------------------------------------------------------------


def test_xlam_rows_import_with_tools_calls_and_styles() -> None:
    samples = list(read_samples(DATA / "xlam_function_calling_60k.jsonl", "xlam"))
    assert [s.id for s in samples] == ["0", "1", "4", "5", "6", "7", "8"]
    assert [s.meta.style for s in samples] == [
        QueryStyle.parallel,
        QueryStyle.multiple,
        QueryStyle.simple,
        QueryStyle.multiple,
        QueryStyle.parallel_multiple,
        QueryStyle.parallel,
        QueryStyle.parallel_multiple,
    ]
    giveaways = samples[0]
    assert giveaways.query == "Where can I find live giveaways for beta access and games?"
    assert [(c.name, c.arguments) for c in giveaways.tool_calls()] == [
        ("live_giveaways_by_type", {"type": "beta"}),
        ("live_giveaways_by_type", {"type": "game"}),
    ]
    assert giveaways.tools[0].parameters == {
        "type": "object",
        "properties": {
            "type": {
                "type": "string",
                "description": "The type of giveaways to retrieve (e.g., game, loot, beta).",
                "default": "game",
            }
        },
        "required": [],
    }
    peaks = samples[6].tools[0].parameters
    assert peaks["properties"]["nums"]["type"] == "array"
    assert peaks["properties"]["nums"]["items"] == {"type": "integer"}
    assert peaks["required"] == ["nums"]
    assert samples[3].meta.extra["xlam_param_types"] == {
        "product_id": {
            "locale": "str, optional",
            "currency": "str, optional",
            "country": "str, optional",
        }
    }
    assert all(tool.source is None for s in samples for tool in s.tools)


def test_xlam_rows_export_to_the_same_json() -> None:
    path = DATA / "xlam_function_calling_60k.jsonl"
    exported = _exported(list(read_samples(path, "xlam")), "xlam")
    assert [_decoded(r) for r in exported] == [_decoded(r) for r in _rows(path)]
    assert exported[0]["tools"] == _rows(path)[0]["tools"]  # same text, separators included


# ---- OpenAI ----------------------------------------------------------------------------------


def test_openai_documented_rows_import() -> None:
    first, second = read_samples(DATA / "openai_tool_calling.jsonl", "openai")
    assert first.id == "openai_tool_calling-1"
    assert first.query == "What is the weather in San Francisco?"
    assert first.tools[0].name == "get_current_weather"
    assert first.tools[0].parameters["required"] == ["location", "format"]
    (call,) = first.tool_calls()
    assert (call.id, call.name, call.arguments) == (
        "call_id",
        "get_current_weather",
        {"location": "San Francisco, USA", "format": "celsius"},
    )
    assert first.steps[0].thought is None and first.steps[0].results == []
    assert first.meta.style is QueryStyle.simple
    assert second.tools == []
    assert second.steps[0].results == [21.0]
    assert second.final_answer() == "It is 21 degrees celsius in San Francisco, CA"


def test_openai_documented_rows_export_to_the_same_json() -> None:
    path = DATA / "openai_tool_calling.jsonl"
    assert _exported(list(read_samples(path, "openai")), "openai") == _rows(path)


# ---- ShareGPT / Hermes -----------------------------------------------------------------------


def test_hermes_row_imports_python_literal_tools_and_calls() -> None:
    (sample,) = read_samples(DATA / "hermes_function_calling_v1.jsonl", "sharegpt")
    assert sample.id == "753d8365-0e54-43b1-9514-3f9b819fd31c"
    assert sample.task_instruction.endswith("values to plug into functions.")
    assert "<tools> </tools> XML tags" in sample.task_instruction
    assert sample.format_instruction.startswith("For each function call return a json object")
    (tool,) = sample.tools
    assert tool.name == "search_flights"
    assert tool.parameters["properties"]["class"]["enum"] == ["economy", "business", "first"]
    (call,) = sample.tool_calls()
    assert call.arguments["flexible_cancellation"] is True
    assert call.arguments["return_date"] == "2023-07-24"
    result = sample.steps[0].results[0]
    assert [f["flight_number"] for f in result["flights"]] == ["AA118", "UA796", "NZ6"]
    assert sample.final_answer().startswith("Here are the available flight options")
    assert sample.meta.extra["sharegpt_fields"] == {
        "category": "E-commerce Platforms",
        "subcategory": "Kayak",
        "task": "Flight Search",
    }
    assert sample.meta.extra["sharegpt_layout"] == {
        "tools_syntax": "python",
        "calls_syntax": "python",
        "call_keys": "arguments_first",
    }


def test_hermes_row_exports_to_the_same_json() -> None:
    path = DATA / "hermes_function_calling_v1.jsonl"
    assert _exported(list(read_samples(path, "sharegpt")), "sharegpt") == _rows(path)


def test_hermes_2_pro_prompt_format_example() -> None:
    path = DATA / "hermes_2_pro_prompt_format.jsonl"
    (sample,) = read_samples(path, "sharegpt")
    assert sample.id == "hermes_2_pro_prompt_format-1"
    assert sample.task_instruction.endswith("Here are the available tools:")
    assert sample.format_instruction.startswith("Use the following pydantic model json schema")
    assert sample.tools[0].parameters["required"] == ["symbol"]
    assert sample.tool_calls()[0].arguments == {"symbol": "TSLA"}
    assert sample.steps[0].results[0]["dividend_yield"] is None
    assert sample.meta.extra["sharegpt_layout"]["tools_spacing"] == [" ", " ", " ", " "]
    (row,) = _exported([sample], "sharegpt")
    original = _rows(path)[0]
    # Kept: the system prompt and the call exactly. Not kept: the tool response's mixed
    # JSON/Python text (written back as JSON) and the missing id (one is written).
    assert row["conversations"][:3] == original["conversations"][:3]
    assert row["conversations"][4] == original["conversations"][4]
    assert row["id"] == "hermes_2_pro_prompt_format-1" and "id" not in original


# ---- BFCL ------------------------------------------------------------------------------------


def _bfcl(questions: str, answers: str | None = None) -> list[Sample]:
    options = {"answers": DATA / answers} if answers else {}
    return list(read_samples(DATA / questions, "bfcl", **options))


def test_bfcl_simple_questions_joined_with_possible_answers() -> None:
    samples = _bfcl("bfcl_simple_questions.jsonl", "bfcl_simple_possible_answers.jsonl")
    by_id = {s.id: s for s in samples}
    triangle = by_id["simple_0"]
    assert triangle.query.startswith("Find the area of a triangle")
    assert triangle.tools[0].parameters["type"] == "object"
    assert triangle.tool_calls()[0].arguments == {"base": 10, "height": 5, "unit": "units"}
    assert triangle.tool_calls()[0].acceptable == {
        "base": Acceptable(values=[10]),
        "height": Acceptable(values=[5]),
        "unit": Acceptable(values=["units"], omittable=True),
    }
    assert bfcl_possible_answer(triangle.tool_calls()) == [
        {"calculate_triangle_area": {"base": [10], "height": [5], "unit": ["units", ""]}}
    ]
    assert by_id["simple_2"].tool_calls()[0].arguments == {"x": 4, "y": 5}  # "" first: omitted
    curve = by_id["simple_13"]
    assert curve.tools[0].parameters["properties"]["interval"]["items"] == {"type": "number"}
    assert curve.tool_calls()[0].arguments == {"function": "x**2", "interval": [1.0, 3.0]}
    records = by_id["simple_89"]
    assert records.tools[0].parameters["properties"]["conditions"]["type"] == "object"
    assert records.tool_calls()[0].arguments == {
        "database_name": "StudentDB",
        "table_name": "students",
        "conditions": {"department": "Science", "school": "Bluebird High School"},
    }
    conditions = records.tool_calls()[0].acceptable["conditions"]  # type: ignore[index]
    assert conditions.objects[0]["school"].values == ["Bluebird High School", "Bluebird HS"]
    assert records.tool_calls()[0].acceptable["fetch_limit"] == Acceptable(  # type: ignore[index]
        values=[0], omittable=True
    )
    data_argument = by_id["simple_109"].tools[0].parameters["properties"]["data"]
    assert "type" not in data_argument  # BFCL "any"
    assert all(s.meta.style is QueryStyle.simple for s in samples)


def test_bfcl_parallel_multiple_keeps_every_call() -> None:
    first, second = _bfcl(
        "bfcl_parallel_multiple_questions.jsonl", "bfcl_parallel_multiple_possible_answers.jsonl"
    )
    assert [c.name for c in first.tool_calls()] == [
        "math_toolkit.sum_of_multiples",
        "math_toolkit.product_of_primes",
    ]
    assert first.tool_calls()[0].arguments["multiples"] == [3, 5]
    assert [c.arguments for c in second.tool_calls()] == [
        {"perimeter": 14, "area": 15, "property": "width"},
        {"perimeter": 14, "area": 15, "property": "length"},
    ]
    assert first.meta.style is second.meta.style is QueryStyle.parallel_multiple


def test_bfcl_questions_without_answers_have_no_steps() -> None:
    samples = _bfcl("bfcl_irrelevance_questions.jsonl")
    assert [s.id for s in samples] == ["irrelevance_0", "irrelevance_1"]
    assert all(s.steps == [] for s in samples)
    assert all(s.meta.style is QueryStyle.irrelevance for s in samples)
    assert samples[1].tools[0].parameters["properties"]["numbers"]["items"] == {"type": "number"}


def test_bfcl_answers_that_run_out_leave_the_rest_unanswered(tmp_path: Path) -> None:
    answers = tmp_path / "answers.jsonl"
    answers.write_bytes((DATA / "bfcl_simple_possible_answers.jsonl").read_bytes().split(b"\n")[0])
    samples = list(read_samples(DATA / "bfcl_simple_questions.jsonl", "bfcl", answers=answers))
    assert len(samples[0].tool_calls()) == 1
    assert [s.steps for s in samples[1:]] == [[]] * 4


@pytest.mark.parametrize("fmt", ["xlam", "openai", "sharegpt"])
def test_real_rows_read_from_a_json_array(tmp_path: Path, fmt: str) -> None:
    source = {
        "xlam": "xlam_function_calling_60k.jsonl",
        "openai": "openai_tool_calling.jsonl",
        "sharegpt": "hermes_function_calling_v1.jsonl",
    }[fmt]
    rows = _rows(DATA / source)
    array = tmp_path / "rows.json"
    array.write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
    from_array = list(read_samples(array, fmt))
    from_lines = list(read_samples(DATA / source, fmt))
    # Ids made from row numbers name the file they came from; everything else is the same.
    assert [s.model_dump(exclude={"meta", "id"}) for s in from_array] == [
        s.model_dump(exclude={"meta", "id"}) for s in from_lines
    ]
    assert [s.id.removeprefix("rows") for s in from_array] == [
        s.id.removeprefix("openai_tool_calling") for s in from_lines
    ]


def test_openai_legacy_function_call_rows_import() -> None:
    first, second = read_samples(DATA / "openai_legacy_function_calling.jsonl", "openai")
    assert first.tools[0].name == "get_current_weather"
    (call,) = first.tool_calls()
    assert (call.id, call.name) == (None, "get_current_weather")
    assert call.arguments == {"location": "San Francisco, USA", "format": "celsius"}
    assert second.tool_calls()[0].arguments["format"] == "celcius"
    assert second.steps[0].results == [21.0]
    assert second.final_answer() == "It is 21 degrees celsius in San Francisco, CA"
    (row,) = _exported([second], "openai")
    assert row["messages"][1]["tool_calls"][0]["id"] == "call_1"
    assert row["messages"][2] == {"role": "tool", "tool_call_id": "call_1", "content": "21.0"}
