"""`unified.sample_json` and the export rows made from stored JSON give what the plain pydantic
calls give: the same samples, the same errors, the same bytes."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from real_unified_rows import bfcl_samples, dataset_samples, template_job_samples, wrong_answers

from service.db import json_codec
from service.export.parquet import StoredParquetRows, parquet_row, stored_parquet_row
from service.export.unified import unified_line
from unified.model import Sample, Step, Tool, ToolCall, Turn
from unified.sample_json import (
    SampleDumper,
    SampleParser,
    dump_layout,
    is_dumped,
    without_none_fields,
)


@pytest.fixture(scope="module")
def samples() -> list[Sample]:
    found = dataset_samples() + template_job_samples() + bfcl_samples(40)
    return found + wrong_answers(found)


def stored(sample: Sample) -> str:
    """A sample as the database holds it: its JSON dump, written by SQLAlchemy's json.dumps."""
    return json.dumps(sample.model_dump(mode="json", by_alias=True))


def plain_outcome(call: Any, *args: Any) -> Any:
    """What a call gives, or the error it raises; a sample without its creation time, which
    rows without one get from the clock."""
    try:
        made = call(*args)
    except (ValidationError, TypeError, ValueError) as exc:
        return ("raised", type(exc).__name__, str(exc))
    if isinstance(made, Sample):
        return made.model_dump(mode="json", exclude={"meta": {"created"}})
    return made


def test_parsed_rows_equal_pydantic_on_real_samples(samples: list[Sample]) -> None:
    parser = SampleParser()
    for sample in samples:
        line = sample.to_json()
        assert parser.parse_json(line) == Sample.model_validate_json(line) == sample
        assert parser.parse_json(line.encode()) == sample
        value = orjson.loads(line)
        assert parser.parse_value(value) == Sample.model_validate(value) == sample
    assert len(parser._tools) < len(samples) / 2, "tool lists are validated once each"


NESTED = "[" * 250 + "]" * 250
BAD_ROWS = [
    '{"id": "a", "query": "q", "meta": {"created": "yesterday"}}',
    '{"id": "a", "query": "q", "meta": {"style": "chatty"}}',
    '{"id": "a"}',
    '{"id": 5, "query": "q"}',
    '{"id": "a", "query": "q", "tools": [{"name": "bad name!"}]}',
    '{"id": "a", "query": "q", "tools": [{"name": "f", "surprise": 1}]}',
    '{"id": "a", "query": "q", "tools": "[]"}',
    '{"id": "a", "query": "q", "steps": [{"tool_calls": [{"name": "f", "arguments": '
    + NESTED
    + "}]}]}",
    '{"id": "a", "query": "q", "steps": [{"tool_calls": [{"name": "f", "arguments": {"x": '
    + NESTED
    + "}}]}]}",
    '{"id": "a", "query": "q", "unknown": 1}',
    '{"id": "a", "query": "q", "steps": [{"tool_calls": [{"name": "f", "arguments": [1]}]}]}',
    "[1, 2]",
    "not json",
    '{"id": "a", "query": "q"',
    '{"id": "a", "query": NaN}',
]
ODD_BUT_READABLE = [
    '{"id": "a", "query": "q", "steps": [{"tool_calls": [{"name": "f", "arguments": '
    '"{\\"x\\": 1}"}]}]}',
    '{"id": "a", "query": "q", "steps": [{"tool_calls": [{"name": "f", "arguments": '
    '{"x": 1e400}}]}]}',
    '{"id": "a", "query": "q", "steps": [{"tool_calls": [{"name": "f", "arguments": {"x": '
    + str(2**70 + 1)
    + "}}]}]}",
    '{"id": "a", "query": "q", "id": "b"}',
    '{"id": "a", "query": "\\ud800"}',
    '\ufeff{"id": "a", "query": "q"}',
    '{"id": "a", "query": "q", "meta": {"seed": "12", "created": 1700000000}}',
]


def test_a_string_with_a_lone_surrogate_goes_the_plain_way() -> None:
    row = '{"id": "a", "query": "\ud800"}'  # the character itself, not its escape
    assert plain_outcome(SampleParser().parse_json, row) == plain_outcome(
        Sample.model_validate_json, row
    )
    assert plain_outcome(unified_line, row) == plain_outcome(
        lambda: Sample.model_validate_json(row).to_json().encode() + b"\n"
    )


@pytest.mark.parametrize("row", BAD_ROWS + ODD_BUT_READABLE)
def test_bad_and_odd_rows_get_what_pydantic_gives(row: str) -> None:
    parser = SampleParser()
    for raw in (row, row.encode("utf-8", "surrogatepass")):
        assert plain_outcome(parser.parse_json, raw) == plain_outcome(
            Sample.model_validate_json, raw
        )
    try:
        value = json.loads(row)
    except ValueError:
        return
    assert plain_outcome(parser.parse_value, value) == plain_outcome(Sample.model_validate, value)


def test_dumped_layout_is_recognised_and_written_as_to_json(samples: list[Sample]) -> None:
    for sample in samples:
        text = stored(sample)
        assert is_dumped(json.loads(text))
        assert unified_line(text) == sample.to_json().encode() + b"\n"


def test_a_row_marked_with_the_current_layout_goes_out_as_stored(samples: list[Sample]) -> None:
    for sample in samples:
        by_orjson = json_codec.dumps(sample.model_dump(mode="json", by_alias=True))
        line = sample.to_json().encode() + b"\n"
        assert unified_line(by_orjson, dump_layout()) == by_orjson.encode() + b"\n" == line
        # the standard library's text (json_codec's fallback) and another layout are read
        assert unified_line(stored(sample), dump_layout()) == line
        assert unified_line(by_orjson, "0123456789abcdef") == line


def test_the_dumper_dumps_as_pydantic_does(samples: list[Sample]) -> None:
    follow_up = Turn(query="And the second one?", steps=[Step(answer="Here it is.")])
    conversation = samples[0].model_copy(update={"turns": [follow_up]})
    dumper = SampleDumper()
    for sample in [*samples, conversation, Sample(id="bare", query="hi")]:
        dumped = dumper.dump(sample)
        assert dumped == sample.model_dump(mode="json", by_alias=True)
        assert orjson.dumps(dumped) == orjson.dumps(sample.model_dump(mode="json", by_alias=True))
    assert sum(1 for sample in samples if sample.tools) > 100


def test_the_layout_name_follows_the_model() -> None:
    class Other(Sample):
        added: int = 0

    assert dump_layout() == dump_layout(Sample) != dump_layout(Other)


def test_a_conversations_layout_is_recognised_and_written_as_to_json(
    samples: list[Sample],
) -> None:
    first = samples[0]
    follow_up = Turn(query="And the second one?", steps=[Step(answer="Here it is.")])
    conversation = first.model_copy(update={"turns": [follow_up]})
    text = stored(conversation)
    assert '"turns"' in text and '"format_version": "1.1"' in text
    assert is_dumped(json.loads(text))
    assert unified_line(text) == conversation.to_json().encode() + b"\n"
    assert SampleParser().parse_json(text).to_json() == conversation.to_json()
    without_its_key = json.loads(stored(first))
    assert "turns" not in without_its_key and is_dumped(without_its_key)


def _changed(value: dict[str, Any], change: str) -> dict[str, Any]:
    changed = json.loads(json.dumps(value))
    if change == "missing meta.extra":
        del changed["meta"]["extra"]
    elif change == "missing tool_calls[0].acceptable":
        del changed["steps"][0]["tool_calls"][0]["acceptable"]
    elif change == "extra field":
        changed["tools"][0]["color"] = "red"
    elif change == "reordered":
        changed = {"id": changed.pop("id"), **changed}
    elif change == "unknown style":
        changed["meta"]["style"] = "chatty"
    elif change == "tools not a list":
        changed["tools"] = {}
    return changed


@pytest.mark.parametrize(
    "change",
    [
        "missing meta.extra",
        "missing tool_calls[0].acceptable",
        "extra field",
        "reordered",
        "unknown style",
        "tools not a list",
    ],
)
def test_another_layout_goes_through_a_sample(samples: list[Sample], change: str) -> None:
    """Rows stored by an older version lack newer fields: their lines come from a Sample (with
    the defaults filled in), as before, or fail as before."""
    sample = next(s for s in samples if s.tools and s.tool_calls())
    value = _changed(sample.model_dump(mode="json", by_alias=True), change)
    assert not is_dumped(value)
    text = json.dumps(value)
    expected = plain_outcome(lambda: Sample.model_validate_json(text).to_json().encode() + b"\n")
    assert plain_outcome(unified_line, text) == expected
    expected_row = plain_outcome(lambda: parquet_row(Sample.model_validate_json(text)))
    assert plain_outcome(stored_parquet_row, text) == expected_row


def test_parquet_rows_from_stored_json_equal_those_from_samples(samples: list[Sample]) -> None:
    export = StoredParquetRows()
    for sample in samples:
        assert stored_parquet_row(stored(sample)) == parquet_row(sample)
        # As the database holds it now: written by orjson, its row marked with the layout.
        written = json_codec.dumps(sample.model_dump(mode="json", by_alias=True))
        assert export.row(written, dump_layout()) == parquet_row(sample)
        for tool in sample.tools:
            dumped = tool.model_dump(mode="json", by_alias=True)
            assert without_none_fields(dumped, Tool) == tool.model_dump(
                mode="json", by_alias=True, exclude_none=True
            )
        for call in sample.tool_calls():
            assert without_none_fields(call.model_dump(mode="json"), ToolCall) == call.model_dump(
                mode="json", exclude_none=True
            )


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**18, max_value=10**21)
    | st.floats()
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    arguments=st.dictionaries(st.text(), JSON_VALUES, max_size=4),
    results=st.lists(JSON_VALUES, max_size=2),
    query=st.text(),
    answer=st.none() | st.text(),
)
def test_any_values_are_written_as_to_json_writes_them(
    arguments: dict[str, Any], results: list[Any], query: str, answer: str | None
) -> None:
    sample = Sample(
        id="s",
        query=query,
        steps=[Step(tool_calls=[ToolCall(name="f", arguments=arguments)], results=results)],
    )
    sample.steps.append(Step(answer=answer))
    text = stored(sample)
    assert plain_outcome(unified_line, text) == plain_outcome(
        lambda: Sample.model_validate_json(text).to_json().encode() + b"\n"
    )
    assert plain_outcome(stored_parquet_row, text) == plain_outcome(
        lambda: parquet_row(Sample.model_validate_json(text))
    )
    written = json_codec.dumps(sample.model_dump(mode="json", by_alias=True))
    assert plain_outcome(StoredParquetRows().row, written, dump_layout()) == plain_outcome(
        lambda: parquet_row(Sample.model_validate_json(written))
    )


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", str(2**70 + 1)])
def test_numbers_orjson_refuses_go_through_a_sample(number: str) -> None:
    text = (
        '{"format_version": "1.0", "id": "s", "task_instruction": "", "tools": [], '
        '"format_instruction": "", "examples": [], "query": "q", "steps": [{"thought": null, '
        '"tool_calls": [{"name": "f", "arguments": {"x": ' + number + '}, "id": null, '
        '"acceptable": null}], "results": [], "answer": null}], "meta": {"style": null, '
        '"source": null, "parent_id": null, "transformation": null, "generator": null, '
        '"seed": null, "created": "2024-05-01T12:00:00Z", "extra": {}}}'
    )
    assert plain_outcome(unified_line, text) == plain_outcome(
        lambda: Sample.model_validate_json(text).to_json().encode() + b"\n"
    )
