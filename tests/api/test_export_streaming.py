"""`service.export` without HTTP: reading chunk by chunk, the bytes of each export format, Parquet
rows, the registry of export formats."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from api_support import ACCEPTED, DATA, Outcome, add_job, real_samples
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from service.db.engine import make_engine, session_factory
from service.db.migrate import upgrade_to_head
from service.db.models import SampleStatus
from service.export.accepted import accepted_chunks
from service.export.parquet import parquet_row, sample_from_parquet_row
from service.export.registry import export_format_names, exporter
from unified.errors import UnknownNameError
from unified.formats import read_samples, write_samples
from unified.model import Sample

REJECTED: Outcome = (SampleStatus.rejected, "format", "unknown_tool")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'af.db'}"
    upgrade_to_head(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


class ChunkQueries:
    """Counts the chunk queries an engine runs."""

    def __init__(self, engine: Engine) -> None:
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM samples" in statement and "samples.position >" in statement:
            self.count += 1


def numbered(n: int) -> list[Sample]:
    base = real_samples()
    return [base[i % len(base)].model_copy(update={"id": f"s-{i}"}) for i in range(n)]


@pytest.mark.parametrize("fmt", [fmt for fmt in export_format_names() if fmt != "dpo"])
def test_each_piece_is_made_from_one_chunk_read_just_before_it(
    engine: Engine, sessions: sessionmaker[Session], fmt: str
) -> None:
    samples = numbered(18)
    job_id = add_job(sessions, samples)
    queries = ChunkQueries(engine)
    pieces = exporter(fmt).job_bytes(sessions, job_id, chunk_size=4)
    assert queries.count == 0, "nothing is read before the first piece is asked for"
    first = next(pieces)
    assert first
    assert queries.count == 1
    second = next(pieces)
    assert queries.count == 2
    rest = list(pieces)
    assert queries.count == 5  # chunks of 4, 4, 4, 4 and 2 rows
    body = b"".join([first, second, *rest])
    if fmt == "parquet":
        assert pq.ParquetFile(io.BytesIO(body)).num_row_groups == 5
        exported = [sample_from_parquet_row(r) for r in pq.read_table(io.BytesIO(body)).to_pylist()]
        assert exported == samples
    else:
        expected = io.BytesIO()
        write_samples(samples, expected, fmt)
        assert body == expected.getvalue()


def test_chunks_hold_only_accepted_samples_in_position_order(
    sessions: sessionmaker[Session],
) -> None:
    samples = numbered(10)
    outcomes = [ACCEPTED if i % 3 else REJECTED for i in range(10)]
    job_id = add_job(sessions, samples, outcomes)
    add_job(sessions, numbered(3))  # another job's accepted samples stay out
    chunks = list(accepted_chunks(sessions, job_id, chunk_size=3))
    assert [len(chunk) for chunk in chunks] == [3, 3]
    assert [s.id for chunk in chunks for s in chunk] == [
        s.id for s, outcome in zip(samples, outcomes, strict=True) if outcome == ACCEPTED
    ]


def test_a_full_last_chunk_ends_with_one_empty_query(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    job_id = add_job(sessions, numbered(8))
    queries = ChunkQueries(engine)
    assert [len(chunk) for chunk in accepted_chunks(sessions, job_id, chunk_size=4)] == [4, 4]
    assert queries.count == 3


@pytest.mark.parametrize(
    ("document", "fmt"),
    [
        ("openai_tool_calling.jsonl", "openai"),
        ("hermes_function_calling_v1.jsonl", "sharegpt"),
        ("xlam_function_calling_60k.jsonl", "xlam"),
    ],
)
def test_parquet_rows_give_back_the_same_samples(document: str, fmt: str) -> None:
    with read_samples(DATA / "formats" / document, fmt) as reader:
        samples = list(reader)
    for sample in samples:
        row = parquet_row(sample)
        assert sample_from_parquet_row(row) == sample
        assert row["final_answer"] == sample.final_answer()
        assert row["style"] == (sample.meta.style.value if sample.meta.style else None)


def test_an_unknown_or_unwritable_format_names_the_exportable_ones() -> None:
    for fmt in ("bfcl", "csv"):
        with pytest.raises(UnknownNameError) as caught:
            exporter(fmt)
        assert str(caught.value) == (
            f"Unknown export format '{fmt}'. Known: dpo, hf, llamafactory, openai, parquet, "
            "sharegpt, unified, xlam"
        )


def test_file_names_and_media_types() -> None:
    assert exporter("xlam").file_name("job1") == "job1-xlam.jsonl"
    assert exporter("parquet").file_name("job1") == "job1-parquet.parquet"
    assert exporter("dpo").file_name("job1") == "job1-dpo.jsonl"
    assert exporter("openai").media_type == "application/x-ndjson"
    assert exporter("dpo").media_type == "application/x-ndjson"
    assert exporter("parquet").media_type == "application/vnd.apache.parquet"
