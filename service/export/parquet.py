"""Parquet exports: one row group per chunk of accepted samples.

Rows have the columns of `PARQUET_SCHEMA`: the sample's id, query and style as text, its
structured parts as JSON text. `sample_from_parquet_row` reads a row back into the same unified
sample. A job's rows are made from the stored JSON of its samples without making `Sample`s
(`StoredParquetRows`), the same row `parquet_row` makes of the sample.

A multi-turn sample's first turn is in `query` and `steps`, as in the unified format, and its
follow-up turns in `turns`, JSON text like the other structured columns (`[]` for a single-turn
sample): one string column loads the same way in pyarrow, pandas and `datasets` whatever the
results hold, where a struct column would need one type for every tool's results. `answers` and
`final_answer` are the conversation's: every call of every turn, its last answer.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from service.export.base import DEFAULT_CHUNK_SIZE, PARQUET_MEDIA_TYPE, Exporter
from service.export.unified import is_current_dump, stored_value
from unified.model import MULTI_TURN_VERSION, Sample, Tool, ToolCall
from unified.sample_json import is_dumped, without_none_fields

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker


def _column(name: str, description: str, *, nullable: bool = True) -> pa.Field:
    return pa.field(name, pa.string(), nullable=nullable, metadata={"description": description})


PARQUET_SCHEMA = pa.schema(
    [
        _column("id", "The sample id.", nullable=False),
        _column("query", "The user's request.", nullable=False),
        _column("style", "The query style (simple, multiple, parallel, ...), if known."),
        _column(
            "tools",
            "JSON list of the offered tools: {name, description, parameters, response, source}.",
            nullable=False,
        ),
        _column(
            "answers",
            "JSON list of every tool call of every step of every turn, in order: "
            "{name, arguments, id}.",
            nullable=False,
        ),
        _column(
            "steps",
            "JSON list of the first turn's steps: {thought, tool_calls, results, answer}.",
            nullable=False,
        ),
        _column("final_answer", "The last answer of the conversation, if any."),
        _column("task_instruction", "The task instruction.", nullable=False),
        _column("format_instruction", "The format instruction.", nullable=False),
        _column("examples", "JSON list of few-shot examples: {query, steps}.", nullable=False),
        _column(
            "meta",
            "JSON object of the sample's metadata: style, source, generator, seed, created, ...",
            nullable=False,
        ),
        _column("format_version", "Version of the unified format.", nullable=False),
        _column(
            "turns",
            "JSON list of the follow-up turns after query and steps: {query, steps}; [] for a "
            "single-turn sample.",
            nullable=False,
        ),
    ],
    metadata={"actionforge.unified_format_version": MULTI_TURN_VERSION},
)


def _json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def parquet_row(sample: Sample) -> dict[str, str | None]:
    """One sample as a row of `PARQUET_SCHEMA`."""
    return {
        "id": sample.id,
        "query": sample.query,
        "style": sample.meta.style.value if sample.meta.style else None,
        "tools": _json_text(
            [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in sample.tools]
        ),
        "answers": _json_text(
            [call.model_dump(mode="json", exclude_none=True) for call in sample.tool_calls()]
        ),
        "steps": _json_text([step.model_dump(mode="json") for step in sample.steps]),
        "final_answer": sample.final_answer(),
        "task_instruction": sample.task_instruction,
        "format_instruction": sample.format_instruction,
        "examples": _json_text([example.model_dump(mode="json") for example in sample.examples]),
        "meta": _json_text(sample.meta.model_dump(mode="json")),
        "format_version": sample.model_dump(mode="json", include={"format_version"})[
            "format_version"
        ],
        "turns": _json_text([turn.model_dump(mode="json") for turn in sample.turns]),
    }


def stored_parquet_row(stored: str) -> dict[str, str | None]:
    """The row of `PARQUET_SCHEMA` of a stored sample's JSON text: `parquet_row` of its sample,
    made from the decoded JSON where it has the layout of a dumped sample."""
    return StoredParquetRows().row(stored)


class StoredParquetRows:
    """`stored_parquet_row` for the samples of one export, faster: a text its row marks as the
    current model's dump, written by orjson, is decoded without checking its layout again
    (`service.export.unified.is_current_dump`), and the `tools` column of each distinct list of
    tools is made once (a job's samples share their catalog's tools, most of each sample)."""

    _CACHE_SIZE = 64

    def __init__(self) -> None:
        self._tools: dict[bytes, str] = {}

    def row(self, stored: str, layout: str | None = None) -> dict[str, str | None]:
        """The row of a stored sample's JSON text; `layout` is the one its row records."""
        if is_current_dump(stored, layout):
            value = orjson.loads(stored)
        else:
            value = stored_value(stored)
            if value is None or not is_dumped(value):
                return parquet_row(Sample.model_validate_json(stored))
        turns = value.get("turns", [])
        steps = value["steps"]
        every_step = [*steps, *(step for turn in turns for step in turn["steps"])]
        meta = value["meta"]
        return {
            "id": value["id"],
            "query": value["query"],
            "style": meta["style"],
            "tools": self._tools_column(value["tools"]),
            "answers": _json_text(
                [
                    without_none_fields(call, ToolCall)
                    for step in every_step
                    for call in step["tool_calls"]
                ]
            ),
            "steps": _json_text(steps),
            "final_answer": next(
                (step["answer"] for step in reversed(every_step) if step["answer"] is not None),
                None,
            ),
            "task_instruction": value["task_instruction"],
            "format_instruction": value["format_instruction"],
            "examples": _json_text(value["examples"]),
            "meta": _json_text(meta),
            "format_version": value["format_version"],
            "turns": _json_text(turns),
        }

    def _tools_column(self, tools: list[Any]) -> str:
        key = orjson.dumps(tools)
        column = self._tools.get(key)
        if column is None:
            column = _json_text([without_none_fields(tool, Tool) for tool in tools])
            if len(self._tools) >= self._CACHE_SIZE:
                self._tools.clear()
            self._tools[key] = column
        return column


def sample_from_parquet_row(row: dict[str, Any]) -> Sample:
    """The unified sample a row of `PARQUET_SCHEMA` was written from."""
    return Sample.model_validate(
        {
            "format_version": row["format_version"],
            "id": row["id"],
            "query": row["query"],
            "tools": orjson.loads(row["tools"]),
            "steps": orjson.loads(row["steps"]),
            "task_instruction": row["task_instruction"],
            "format_instruction": row["format_instruction"],
            "examples": orjson.loads(row["examples"]),
            "meta": orjson.loads(row["meta"]),
            # Files written before the column was added have no follow-up turns.
            "turns": orjson.loads(row["turns"]) if row.get("turns") else [],
        }
    )


class _ByteSink(io.RawIOBase):
    """A write-only stream whose written bytes are taken out piece by piece with `drain`."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        piece = bytes(data)
        self._parts.append(piece)
        self._position += len(piece)
        return len(piece)

    def tell(self) -> int:
        return self._position

    def drain(self) -> bytes:
        piece = b"".join(self._parts)
        self._parts = []
        return piece


def parquet_rows_bytes(row_chunks: Iterable[list[dict[str, str | None]]]) -> Iterator[bytes]:
    """A Parquet file of chunks of `PARQUET_SCHEMA` rows, one piece per chunk (its row group),
    then the footer."""
    from service.metrics.recorded import count_export_rows  # not at the top: see json_lines

    sink = _ByteSink()
    writer = pq.ParquetWriter(sink, PARQUET_SCHEMA, compression="zstd")
    try:
        for rows in row_chunks:
            columns = {name: [row[name] for row in rows] for name in PARQUET_SCHEMA.names}
            writer.write_table(pa.Table.from_pydict(columns, schema=PARQUET_SCHEMA))
            count_export_rows("parquet", len(rows))
            yield sink.drain()
    finally:
        writer.close()
    yield sink.drain()


def parquet_bytes(chunks: Iterable[Sequence[Sample]]) -> Iterator[bytes]:
    """A Parquet file of chunks of samples, one piece per chunk (its row group), then the
    footer."""
    return parquet_rows_bytes([parquet_row(sample) for sample in chunk] for chunk in chunks)


def parquet_job_bytes(
    sessions: sessionmaker[Session], job_id: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[bytes]:
    """Job `job_id`'s accepted samples as a Parquet file, a row group per chunk read."""
    from service.export.accepted import accepted_stored

    rows = StoredParquetRows()
    chunks = accepted_stored(sessions, job_id, chunk_size=chunk_size)
    return parquet_rows_bytes([rows.row(*stored) for stored in chunk] for chunk in chunks)


def parquet_file_rows(path: Path) -> int:
    """The rows of the Parquet file at `path`, from its footer."""
    rows: int = pq.read_metadata(path).num_rows
    return rows


EXPORTER = Exporter(
    "parquet", PARQUET_MEDIA_TYPE, ".parquet", parquet_job_bytes, count_rows=parquet_file_rows
)
