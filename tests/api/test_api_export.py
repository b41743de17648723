"""`GET /v1/jobs/{id}/export`: every format streams every accepted row, and only those."""

from __future__ import annotations

import io
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from api_support import ACCEPTED, Api, Outcome, add_job, real_samples
from sqlalchemy import event

from service.db.models import JobStatus, SampleStatus
from service.export.accepted import DEFAULT_CHUNK_SIZE
from service.export.parquet import PARQUET_SCHEMA, sample_from_parquet_row
from unified.formats import FORMATS, write_samples
from unified.model import Sample

REJECTED: Outcome = (SampleStatus.rejected, "format", "unknown_tool")
UNVERIFIED: Outcome = (SampleStatus.generated, None, None)
PATTERN = [ACCEPTED, REJECTED, ACCEPTED, UNVERIFIED]


def make_job(api: Api, n: int, status: JobStatus = JobStatus.succeeded) -> tuple[str, list[Sample]]:
    """A job of `n` real samples, some accepted; its id and its accepted samples in order."""
    base = real_samples()
    samples = [base[i % len(base)].model_copy(update={"id": f"xlam-{i}"}) for i in range(n)]
    outcomes = [PATTERN[i % len(PATTERN)] for i in range(n)]
    job_id = add_job(api.sessions, samples, outcomes, status=status)
    accepted = [s for s, o in zip(samples, outcomes, strict=True) if o == ACCEPTED]
    return job_id, accepted


def calls(sample: Sample) -> list[tuple[str, Any]]:
    return [(call.name, call.arguments) for call in sample.tool_calls()]


@pytest.mark.parametrize("fmt", ["unified", "xlam", "openai", "sharegpt"])
def test_json_lines_exports_stream_every_accepted_row(api: Api, fmt: str) -> None:
    job_id, accepted = make_job(api, 30)
    response = api.http.get(f"/v1/jobs/{job_id}/export", params={"format": fmt})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="{job_id}-{fmt}.jsonl"'
    )
    assert response.headers["x-job-status"] == "succeeded"
    assert response.headers["x-export-complete"] == "true"

    parsed = list(FORMATS.get(fmt).read(io.BytesIO(response.content), f"export.{fmt}"))
    assert len(parsed) == len(accepted) == 15
    assert [s.query for s in parsed] == [s.query for s in accepted]
    assert [calls(s) for s in parsed] == [calls(s) for s in accepted]
    if fmt == "unified":
        assert parsed == accepted


@pytest.mark.parametrize("fmt", ["unified", "xlam", "openai", "sharegpt", "hf", "llamafactory"])
def test_json_lines_exports_are_the_bytes_the_format_writes(api: Api, fmt: str) -> None:
    """Byte for byte, on PostgreSQL too: object keys keep their order through the database."""
    job_id, accepted = make_job(api, 30)
    response = api.http.get(f"/v1/jobs/{job_id}/export", params={"format": fmt})
    expected = io.BytesIO()
    write_samples(accepted, expected, fmt)
    assert response.content == expected.getvalue()


def test_parquet_export_holds_every_accepted_sample(api: Api) -> None:
    job_id, accepted = make_job(api, 30)
    response = api.http.get(f"/v1/jobs/{job_id}/export", params={"format": "parquet"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.apache.parquet"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="{job_id}-parquet.parquet"'
    )
    table = pq.read_table(io.BytesIO(response.content))
    assert table.schema.equals(PARQUET_SCHEMA, check_metadata=True)
    rows = table.to_pylist()
    assert [sample_from_parquet_row(row) for row in rows] == accepted
    assert [row["style"] for row in rows] == [s.meta.style for s in accepted]
    assert [orjson.loads(row["answers"]) for row in rows] == [
        [{"name": name, "arguments": arguments} for name, arguments in calls(s)] for s in accepted
    ]


def test_an_unfinished_job_exports_what_is_accepted_so_far(api: Api) -> None:
    job_id, accepted = make_job(api, 8, status=JobStatus.running)
    response = api.http.get(f"/v1/jobs/{job_id}/export")
    assert response.status_code == 200
    assert response.headers["x-job-status"] == "running"
    assert response.headers["x-export-complete"] == "false"
    assert [orjson.loads(line)["id"] for line in response.content.splitlines()] == [
        s.id for s in accepted
    ]


def test_a_job_with_nothing_accepted_exports_an_empty_dataset(api: Api) -> None:
    job_id = add_job(api.sessions, real_samples()[:2], [REJECTED, UNVERIFIED])
    lines = api.http.get(f"/v1/jobs/{job_id}/export", params={"format": "xlam"})
    assert (lines.status_code, lines.content) == (200, b"")
    parquet = api.http.get(f"/v1/jobs/{job_id}/export", params={"format": "parquet"})
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.num_rows == 0
    assert table.schema.equals(PARQUET_SCHEMA)


def test_an_unknown_format_lists_the_exportable_ones(api: Api) -> None:
    job_id, _ = make_job(api, 1)
    response = api.http.get(f"/v1/jobs/{job_id}/export", params={"format": "bfcl"})
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "query parameter 'format': Unknown export format 'bfcl'. Known: dpo, hf, llamafactory, "
        "openai, parquet, sharegpt, unified, xlam; use one of those"
    )


@pytest.mark.slow
def test_a_large_export_streams_chunk_by_chunk(api: Api) -> None:
    """20,000 accepted rows: the first bytes arrive while most chunks are still unread."""
    body, samples = large_export(api, "unified")
    ids = [orjson.loads(line)["id"] for line in body.splitlines()]
    assert ids == [s.id for s in samples]


@pytest.mark.slow
def test_a_large_parquet_export_streams_a_row_group_per_chunk(sqlite_api: Api) -> None:
    body, samples = large_export(sqlite_api, "parquet")
    parquet = pq.ParquetFile(io.BytesIO(body))
    assert parquet.metadata.num_rows == len(samples)
    assert parquet.num_row_groups == len(samples) // DEFAULT_CHUNK_SIZE
    assert parquet.read(columns=["id"]).column("id").to_pylist() == [s.id for s in samples]


def large_export(api: Api, fmt: str, n: int = 20_000) -> tuple[bytes, list[Sample]]:
    """Export a job of `n` accepted samples; check that it was read and sent chunk by chunk."""
    base = real_samples()
    samples = [base[i % len(base)].model_copy(update={"id": f"big-{i}"}) for i in range(n)]
    job_id = add_job(api.sessions, samples)
    chunk_queries = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM samples" in statement and "samples.position >" in statement:
            chunk_queries.append(statement)

    engine = api.app.state.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        with api.http.stream("GET", f"/v1/jobs/{job_id}/export", params={"format": fmt}) as r:
            assert r.status_code == 200
            assert r.headers["transfer-encoding"] == "chunked"
            assert "content-length" not in r.headers
            pieces = r.iter_raw()
            received = [next(pieces)]
            queries_when_first_bytes_arrived = len(chunk_queries)
            received.extend(pieces)
    finally:
        event.remove(engine, "before_cursor_execute", count)

    total_chunks = n // DEFAULT_CHUNK_SIZE
    assert queries_when_first_bytes_arrived < total_chunks
    assert len(chunk_queries) == total_chunks + 1  # the last query finds nothing more
    return b"".join(received), samples
