"""Streaming export of a job's accepted samples, in every writable dataset format and Parquet.

Samples are read a chunk at a time by keyset pagination on their position, each chunk in its own
short database session, and turned into bytes chunk by chunk: an export of any size holds one
chunk in memory, never the whole dataset, and keeps no transaction open while bytes are sent.

Parquet files have one row group per chunk and the columns of `PARQUET_SCHEMA`: the sample's id,
query and style as text, its structured parts as JSON text. `sample_from_parquet_row` reads a
row back into the same unified sample.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import SampleRecord, SampleStatus
from unified.errors import ActionForgeError
from unified.formats import FORMATS, WritableFormat, writable_formats
from unified.model import FORMAT_VERSION, Sample

DEFAULT_CHUNK_SIZE = 1000
PARQUET = "parquet"

JSON_LINES_MEDIA_TYPE = "application/x-ndjson"
PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"


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
            "JSON list of every tool call of every step, in order: {name, arguments, id}.",
            nullable=False,
        ),
        _column(
            "steps",
            "JSON list of the steps: {thought, tool_calls, results, answer}.",
            nullable=False,
        ),
        _column("final_answer", "The last step's answer, if any."),
        _column("task_instruction", "The task instruction.", nullable=False),
        _column("format_instruction", "The format instruction.", nullable=False),
        _column("examples", "JSON list of few-shot examples: {query, steps}.", nullable=False),
        _column(
            "meta",
            "JSON object of the sample's metadata: style, source, generator, seed, created, ...",
            nullable=False,
        ),
        _column("format_version", "Version of the unified format.", nullable=False),
    ],
    metadata={"actionforge.unified_format_version": FORMAT_VERSION},
)


def export_formats() -> list[str]:
    """The names of the formats a job can be exported in."""
    return [*writable_formats(), PARQUET]


def media_type(fmt: str) -> str:
    """The HTTP content type of an export in `fmt`."""
    return PARQUET_MEDIA_TYPE if fmt == PARQUET else JSON_LINES_MEDIA_TYPE


def file_suffix(fmt: str) -> str:
    """The file name suffix of an export in `fmt`."""
    return ".parquet" if fmt == PARQUET else ".jsonl"


def file_name(job_id: str, fmt: str) -> str:
    """The file name an export of job `job_id` in `fmt` is offered under."""
    return f"{job_id}-{fmt}{file_suffix(fmt)}"


def accepted_chunks(
    sessions: sessionmaker[Session], job_id: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[list[Sample]]:
    """The accepted samples of job `job_id` in position order, `chunk_size` at a time.

    Each chunk is one query (`position > last position seen`) in its own session, so samples
    accepted while the export runs are picked up if they come after the last chunk read. The
    JSON is read as text and parsed by pydantic in one step, which is several times faster
    than the driver's JSON decoding followed by validation.
    """
    after = -1
    while True:
        with sessions() as session:
            rows = session.execute(
                select(SampleRecord.position, cast(SampleRecord.data, Text))
                .where(
                    SampleRecord.job_id == job_id,
                    SampleRecord.status == SampleStatus.accepted,
                    SampleRecord.position > after,
                )
                .order_by(SampleRecord.position)
                .limit(chunk_size)
            ).all()
        if not rows:
            return
        yield [Sample.model_validate_json(text) for _, text in rows]
        if len(rows) < chunk_size:
            return
        after = rows[-1].position


def export_bytes(chunks: Iterable[Sequence[Sample]], fmt: str) -> Iterator[bytes]:
    """The bytes of an export in `fmt`, one piece per chunk of samples (Parquet: plus the footer).

    Raises `ActionForgeError` naming the exportable formats when `fmt` is not one of them.
    """
    if fmt == PARQUET:
        return _parquet_bytes(chunks)
    writer = _writer(fmt)
    return _json_lines_bytes(chunks, writer)


def _writer(fmt: str) -> WritableFormat:
    dataset_format = FORMATS.get(fmt) if fmt in FORMATS.names() else None
    if dataset_format is None or not hasattr(dataset_format, "write"):
        raise ActionForgeError(
            f"cannot export in format '{fmt}'; use one of: {', '.join(export_formats())}"
        )
    writer: WritableFormat = dataset_format
    return writer


def _json_lines_bytes(
    chunks: Iterable[Sequence[Sample]], writer: WritableFormat
) -> Iterator[bytes]:
    for chunk in chunks:
        buffer = io.BytesIO()
        writer.write(chunk, buffer)
        yield buffer.getvalue()


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
        "format_version": sample.format_version,
    }


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


def _parquet_bytes(chunks: Iterable[Sequence[Sample]]) -> Iterator[bytes]:
    sink = _ByteSink()
    writer = pq.ParquetWriter(sink, PARQUET_SCHEMA, compression="zstd")
    try:
        for chunk in chunks:
            rows = [parquet_row(sample) for sample in chunk]
            writer.write_table(pa.Table.from_pylist(rows, schema=PARQUET_SCHEMA))
            yield sink.drain()
    finally:
        writer.close()
    yield sink.drain()
