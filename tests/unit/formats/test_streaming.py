"""Rows are read and written one at a time; bad rows can be skipped and counted."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from format_samples import DATA, hand_built_samples

import unified.formats as formats
from unified.errors import RowError
from unified.formats import FORMATS, convert, read_samples, write_samples
from unified.model import Sample

XLAM_ROW = orjson.loads((DATA / "xlam_function_calling_60k.jsonl").read_bytes().splitlines()[0])


class CountingLines:
    """A generator-backed stream of xLAM lines that counts how many lines were taken."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.taken = 0

    def __iter__(self) -> Iterator[bytes]:
        for number in range(self.rows):
            self.taken += 1
            yield orjson.dumps({**XLAM_ROW, "id": number}) + b"\n"


def test_reading_yields_the_first_sample_before_the_stream_is_exhausted() -> None:
    lines = CountingLines(100_000)
    reader = FORMATS.get("xlam").read(lines, "many.jsonl")
    first = next(reader)
    assert first.id == "0"
    assert lines.taken == 1
    for _ in range(9):
        next(reader)
    assert lines.taken == 10


def test_a_json_array_is_read_incrementally_too() -> None:
    taken = 0

    def array_lines() -> Iterator[str]:
        nonlocal taken
        yield "[\n"
        for number in range(20_000):
            taken += 1
            yield orjson.dumps({**XLAM_ROW, "id": number}).decode() + ",\n"
        yield orjson.dumps(XLAM_ROW).decode() + "\n]\n"

    reader = FORMATS.get("xlam").read(array_lines(), "many.json")
    assert next(reader).id == "0"
    assert taken < 1_000


def test_writing_takes_one_sample_at_a_time() -> None:
    sample = hand_built_samples()[0]

    def samples() -> Iterator[Sample]:
        yield sample
        yield sample
        raise RuntimeError("the third sample never comes")

    out = io.BytesIO()
    with pytest.raises(RuntimeError):
        write_samples(samples(), out, "openai")
    assert len(out.getvalue().splitlines()) == 2


def test_skip_counts_bad_rows_and_keeps_their_errors() -> None:
    good = orjson.dumps(XLAM_ROW)
    stream = io.BytesIO(b"\n".join([good, b"{not json", good, b'{"id": 3, "query": 5}', good]))
    reader = FORMATS.get("xlam").read(stream, "mixed.jsonl", on_error="skip")
    assert len(list(reader)) == 3
    assert reader.samples_read == 3
    assert reader.skipped == 2
    assert [(e.document, e.row) for e in reader.errors] == [("mixed.jsonl", 2), ("mixed.jsonl", 4)]
    assert "field 'query' is a number" in reader.errors[1].message


def test_raise_is_the_default() -> None:
    stream = io.BytesIO(orjson.dumps(XLAM_ROW) + b"\n{not json\n")
    reader = FORMATS.get("xlam").read(stream, "mixed.jsonl")
    assert next(reader).id == "0"
    with pytest.raises(RowError, match=r"mixed.jsonl: row 2: not valid JSON"):
        next(reader)


def test_text_streams_are_read_and_written() -> None:
    text = io.StringIO((DATA / "openai_tool_calling.jsonl").read_text())
    samples = list(FORMATS.get("openai").read(text, "docs.jsonl"))
    out = io.StringIO()
    assert write_samples(samples, out, "unified") == 2
    back = list(FORMATS.get("unified").read(io.StringIO(out.getvalue()), "back.jsonl"))
    assert back == samples


def test_read_samples_closes_its_files(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[Any] = []

    def recording_open(*args: Any, **kwargs: Any) -> Any:
        opened.append(open(*args, **kwargs))  # noqa: SIM115
        return opened[-1]

    monkeypatch.setattr(formats, "open", recording_open, raising=False)
    reader = read_samples(
        DATA / "bfcl_simple_questions.jsonl",
        "bfcl",
        answers=DATA / "bfcl_simple_possible_answers.jsonl",
    )
    assert len(opened) == 2 and not any(f.closed for f in opened)
    assert len(list(reader)) == 5
    assert all(f.closed for f in opened)

    opened.clear()
    with read_samples(DATA / "xlam_function_calling_60k.jsonl", "xlam") as early:
        next(early)
    assert opened[0].closed
    assert list(early) == []


def test_writing_to_a_path_replaces_it_only_when_every_row_is_written(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    bad = Sample(id="x", query="q", meta={"extra": {"xlam_fields": {"when": {1, 2}}}})
    with pytest.raises(RowError, match=r"out.jsonl: row 2: sample 'x' cannot be written"):
        write_samples([hand_built_samples()[0], bad], target, "xlam")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]

    assert write_samples(hand_built_samples(), target, "xlam") == 6
    assert len(target.read_bytes().splitlines()) == 6


def test_convert_streams_from_one_format_to_another(tmp_path: Path) -> None:
    out = tmp_path / "hermes.jsonl"
    assert convert(DATA / "xlam_function_calling_60k.jsonl", "xlam", out, "sharegpt") == 7
    back = list(read_samples(out, "sharegpt"))
    original = list(read_samples(DATA / "xlam_function_calling_60k.jsonl", "xlam"))
    assert [s.id for s in back] == [s.id for s in original]
    assert [s.tool_calls() for s in back] == [s.tool_calls() for s in original]
    assert [s.tools for s in back] == [s.tools for s in original]


def test_convert_skips_bad_rows_when_asked(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(orjson.dumps(XLAM_ROW) + b"\n{broken\n" + orjson.dumps(XLAM_ROW) + b"\n")
    out = io.StringIO()
    assert convert(source, "xlam", out, "openai", on_error="skip") == 2
    with pytest.raises(RowError, match=r"in.jsonl: row 2: not valid JSON"):
        convert(source, "xlam", io.StringIO(), "openai")
