"""Driving a job through the REST API over real HTTP, as a client would: upload the catalog,
submit the job, follow it until it is finished, and download its exports."""

from __future__ import annotations

import io
import time
from typing import Any, Protocol

import httpx
import pyarrow.parquet as pq
import pytest
from engine_helpers import JOB_DONE_SECONDS, TRAVEL_CATALOG

from service.pipeline.spec import JobSpec
from unified.formats import FORMATS
from unified.formats.xlam import xlam_row_id
from unified.model import Sample

FINISHED = {"succeeded", "failed", "cancelled"}
JSON_LINES_FORMATS = ("unified", "xlam", "openai", "sharegpt")
# openai chat rows do not hold the sample id; xlam rows hold xlam_row_id of it; the others write it.
FORMATS_WITH_IDS = {"unified", "sharegpt"}


def upload_catalog(
    http: httpx.Client, raw: bytes, name: str = TRAVEL_CATALOG.name
) -> httpx.Response:
    """`POST /v1/catalogs` with the document as a multipart file."""
    return http.post("/v1/catalogs", files={"file": (name, raw, "application/yaml")})


def upload_travel_catalog(http: httpx.Client) -> str:
    """Upload examples/travel_api.yaml; the stored catalog's id."""
    response = upload_catalog(http, TRAVEL_CATALOG.read_bytes())
    assert response.status_code == 201, response.text
    catalog_id: str = response.json()["id"]
    return catalog_id


def submit_job(http: httpx.Client, catalog_id: str, spec: JobSpec) -> str:
    """`POST /v1/jobs`; the queued job's id."""
    body = {"catalog_id": catalog_id, **spec.model_dump(mode="json", exclude_none=True)}
    response = http.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "queued"
    job_id: str = job["id"]
    return job_id


def read_job(http: httpx.Client, job_id: str) -> dict[str, Any]:
    """`GET /v1/jobs/{id}`."""
    response = http.get(f"/v1/jobs/{job_id}")
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


class HasLog(Protocol):
    def tail(self) -> str: ...


def wait_for_job_over_http(
    http: httpx.Client, job_id: str, *workers: HasLog, seconds: float = JOB_DONE_SECONDS
) -> dict[str, Any]:
    """Poll `GET /v1/jobs/{id}` until the job is finished; fail with where it stands and the
    logs of `workers` (and of any other process given, such as an LLM server) if it is not
    within `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        job = read_job(http, job_id)
        if job["status"] in FINISHED:
            return job
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    logs = "\n\n".join(worker.tail() for worker in workers)
    pytest.fail(
        f"GET /v1/jobs/{job_id} still says {job['status']!r} after {seconds:.0f} s; "
        f"counts: {job['counts']}\n{logs}"
    )


def export(http: httpx.Client, job_id: str, fmt: str) -> bytes:
    """`GET /v1/jobs/{id}/export?format=fmt` of a finished job: the whole body."""
    response = http.get(f"/v1/jobs/{job_id}/export", params={"format": fmt})
    assert response.status_code == 200, response.text
    assert response.headers["x-job-status"] == "succeeded"
    assert response.headers["x-export-complete"] == "true"
    return response.content


def assert_exports_hold_every_accepted_sample(
    http: httpx.Client, job_id: str, accepted: list[Sample]
) -> None:
    """Every format exports exactly the accepted samples, in position order: their ids where
    the format writes ids, their queries in every format."""
    ids = [sample.id for sample in accepted]
    queries = [sample.query for sample in accepted]
    for fmt in JSON_LINES_FORMATS:
        body = export(http, job_id, fmt)
        rows = list(FORMATS.get(fmt).read(io.BytesIO(body), f"{job_id}-{fmt}.jsonl"))
        assert len(rows) == len(accepted), fmt
        assert [row.query for row in rows] == queries, fmt
        if fmt in FORMATS_WITH_IDS:
            assert [row.id for row in rows] == ids, fmt
        if fmt == "xlam":
            assert [row.id for row in rows] == [str(xlam_row_id(i)) for i in ids]
    table = pq.read_table(io.BytesIO(export(http, job_id, "parquet")))
    assert table.num_rows == len(accepted)
    assert table.column("id").to_pylist() == ids
    assert table.column("query").to_pylist() == queries
