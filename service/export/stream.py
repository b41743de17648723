"""Streaming export of a job's accepted samples, in every writable dataset format, Parquet and
DPO preference pairs.

Samples are read a chunk at a time by keyset pagination on their position, each chunk in its own
short database session, and turned into bytes chunk by chunk: an export of any size holds one
chunk in memory, never the whole dataset, and keeps no transaction open while bytes are sent.

Parquet files have one row group per chunk and the columns of `PARQUET_SCHEMA`: the sample's id,
query and style as text, its structured parts as JSON text. `sample_from_parquet_row` reads a
row back into the same unified sample.

A DPO export (`dpo_bytes`) pairs each accepted sample (chosen) with a wrong answer to the same
query (rejected): one of the job's rejected samples of that query, with the verdict stored by the
stage that rejected it, or else a perturbation of the chosen sample that the format verifier
rejects (`service.export.preference.build_pairs`). Rejected samples are never all held in memory:
before the first chunk, one pass over the job's rejected samples reads only their query text and
keeps, per usable rejected sample, an 8-byte hash of the query and its position — 16 bytes each,
16 MB for a million — sorted for binary search (`RejectedIndex`). Each chunk of accepted samples
then looks up its queries and reads at most `DPO_CANDIDATES_PER_QUERY` rejected samples per
distinct query, with their verdicts, in short sessions of their own. The pairs' choices are seeded
by the job's seed: the same job gives the same bytes.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Text, and_, cast, select
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import CatalogRecord, JobRecord, SampleRecord, SampleStatus, VerdictRecord
from service.export.preference import NOT_WRONG_REASONS, build_pairs, query_key, write_pairs
from unified.errors import ActionForgeError
from unified.formats import FORMATS, WritableFormat, writable_formats
from unified.model import FORMAT_VERSION, Sample, Tool
from verifiers.format import FormatVerifier
from verifiers.verdict import Verdict

DEFAULT_CHUNK_SIZE = 1000
PARQUET = "parquet"
DPO = "dpo"
DPO_CANDIDATES_PER_QUERY = 4
"""The most rejected samples of one query read for a chunk; the pair picks one of them."""
QUERY_INDEX_PAGE = 10_000
"""Rejected samples whose query text is read per session while indexing them."""
_NOT_WRONG = sorted(NOT_WRONG_REASONS)

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
    return [*writable_formats(), PARQUET, DPO]


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


def job_export_bytes(
    sessions: sessionmaker[Session], job_id: str, fmt: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[bytes]:
    """The bytes of job `job_id`'s export in `fmt`, read and produced chunk by chunk.

    Raises `ActionForgeError` naming the exportable formats when `fmt` is not one of them.
    """
    if fmt == DPO:
        return dpo_bytes(sessions, job_id, chunk_size=chunk_size)
    return export_bytes(accepted_chunks(sessions, job_id, chunk_size=chunk_size), fmt)


def export_bytes(chunks: Iterable[Sequence[Sample]], fmt: str) -> Iterator[bytes]:
    """The bytes of an export in `fmt`, one piece per chunk of samples (Parquet: plus the footer).

    Raises `ActionForgeError` naming the exportable formats when `fmt` is not one of them, and
    for `dpo`, which needs the job's rejected samples too (`dpo_bytes`).
    """
    if fmt == PARQUET:
        return _parquet_bytes(chunks)
    if fmt == DPO:
        raise ActionForgeError(
            "a DPO export pairs accepted samples with the job's rejected ones; export a job "
            "with job_export_bytes(sessions, job_id, 'dpo') or dpo_bytes(sessions, job_id)"
        )
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


def _query_hash(query: str) -> int:
    digest = hashlib.blake2b(query_key(query).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


@dataclass(frozen=True)
class RejectedIndex:
    """The positions of a job's usable rejected samples by the hash of their query.

    `hashes` is sorted and `positions` ascending among equal hashes. A hash collision only
    brings a sample of another query along, which `build_pairs` then ignores.
    """

    hashes: np.ndarray
    positions: np.ndarray

    def __len__(self) -> int:
        return len(self.hashes)

    def candidates(self, query: str, limit: int = DPO_CANDIDATES_PER_QUERY) -> list[int]:
        """The positions of the first `limit` rejected samples of `query`."""
        key = np.uint64(_query_hash(query))
        start = int(np.searchsorted(self.hashes, key, side="left"))
        end = int(np.searchsorted(self.hashes, key, side="right"))
        return [int(p) for p in self.positions[start : min(end, start + limit)]]


def rejected_index(
    sessions: sessionmaker[Session], job_id: str, *, page_size: int = QUERY_INDEX_PAGE
) -> RejectedIndex:
    """Index the job's rejected samples whose rejection says the answer is wrong (not those in
    `NOT_WRONG_REASONS`, e.g. duplicates); reads only their query text, a page at a time."""
    hash_pages: list[np.ndarray] = []
    position_pages: list[np.ndarray] = []
    after = -1
    while True:
        with sessions() as session:
            rows = session.execute(
                select(SampleRecord.position, SampleRecord.data["query"].as_string())
                .where(
                    SampleRecord.job_id == job_id,
                    SampleRecord.status == SampleStatus.rejected,
                    SampleRecord.position > after,
                    SampleRecord.reason.is_(None) | SampleRecord.reason.not_in(_NOT_WRONG),
                )
                .order_by(SampleRecord.position)
                .limit(page_size)
            ).all()
        if rows:
            hashes = (_query_hash(query or "") for _, query in rows)
            hash_pages.append(np.fromiter(hashes, dtype=np.uint64, count=len(rows)))
            positions = (position for position, _ in rows)
            position_pages.append(np.fromiter(positions, dtype=np.int64, count=len(rows)))
        if len(rows) < page_size:
            break
        after = rows[-1].position
    if not hash_pages:
        return RejectedIndex(np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64))
    hashes = np.concatenate(hash_pages)
    positions = np.concatenate(position_pages)
    order = np.lexsort((positions, hashes))
    return RejectedIndex(hashes[order], positions[order])


def rejected_samples(
    sessions: sessionmaker[Session],
    job_id: str,
    positions: Sequence[int],
    *,
    page_size: int = DEFAULT_CHUNK_SIZE,
) -> list[tuple[Sample, Verdict]]:
    """The job's rejected samples at `positions`, each with the verdict of the stage that
    rejected it (from the verdicts table; the sample's own stage and reason where none is
    stored), in position order; `page_size` positions per query."""
    found: list[tuple[Sample, Verdict]] = []
    wanted = sorted(set(positions))
    for start in range(0, len(wanted), page_size):
        page = wanted[start : start + page_size]
        with sessions() as session:
            rows = session.execute(
                select(
                    cast(SampleRecord.data, Text),
                    SampleRecord.stage,
                    SampleRecord.reason,
                    VerdictRecord.reason,
                    VerdictRecord.detail,
                )
                .outerjoin(
                    VerdictRecord,
                    and_(
                        VerdictRecord.sample_id == SampleRecord.id,
                        VerdictRecord.stage == SampleRecord.stage,
                        VerdictRecord.accepted.is_(False),
                    ),
                )
                .where(
                    SampleRecord.job_id == job_id,
                    SampleRecord.status == SampleStatus.rejected,
                    SampleRecord.position.in_(page),
                )
                .order_by(SampleRecord.position)
            ).all()
        for text, stage, reason, verdict_reason, detail in rows:
            verdict = Verdict(
                accepted=False,
                stage=stage or "unknown",
                reason=verdict_reason or reason,
                detail=detail,
            )
            found.append((Sample.model_validate_json(text), verdict))
    return found


def _job_seed_and_tools(sessions: sessionmaker[Session], job_id: str) -> tuple[int, list[Tool]]:
    with sessions() as session:
        job = session.get(JobRecord, job_id)
        if job is None:
            raise ActionForgeError(f"job {job_id}: no such job; list jobs with GET /v1/jobs")
        catalog = session.get(CatalogRecord, job.catalog_id)
        seed = int(job.spec.get("seed", 0))
        tools = [Tool.model_validate(tool) for tool in catalog.tools] if catalog else []
    return seed, tools


def dpo_bytes(
    sessions: sessionmaker[Session], job_id: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[bytes]:
    """DPO JSON Lines for job `job_id`, one piece per chunk of accepted samples.

    Each accepted sample that the format verifier accepts makes one row, its rejected side a
    rejected sample of the same query or else a perturbation the format verifier rejects (see
    the module's description); seeded by the job's seed.
    """
    seed, tools = _job_seed_and_tools(sessions, job_id)
    index = rejected_index(sessions, job_id)
    verifier = FormatVerifier()
    for chunk in accepted_chunks(sessions, job_id, chunk_size=chunk_size):
        wanted = {position for sample in chunk for position in index.candidates(sample.query)}
        rejected = rejected_samples(sessions, job_id, sorted(wanted))
        buffer = io.BytesIO()
        write_pairs(build_pairs(chunk, rejected, verifier, seed=seed, tools=tools), buffer)
        if buffer.tell():
            yield buffer.getvalue()
