"""A job verified with format, execution and dedup by two real `actionforge worker` processes
on Redis and PostgreSQL, driven over real HTTP: the samples kept are exactly those a single
pass in position order keeps, and the exports carry the results of the calls."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from engine_helpers import TRAVEL_CATALOG, Worker
from jobs_over_http import export, submit_job, upload_catalog, wait_for_job_over_http
from served_api import Api
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import SampleRecord
from service.pipeline.spec import JobSpec
from service.settings import Settings
from unified.catalogs import load_catalog
from unified.formats import FORMATS
from unified.model import Sample
from verifiers.mock_api import MockApi
from verifiers.stages import StageContext, build_stages, run_stages

Sessions = sessionmaker[Session]
StartWorkers = Callable[..., list[Worker]]
ServeApi = Callable[[Settings], Api]
STAGES = ["format", "execution", "dedup"]


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_workers_verify_with_every_stage_and_keep_what_one_ordered_pass_keeps(
    migrated_database_url: str,
    clean_redis: str,
    sessions: Sessions,
    start_workers: StartWorkers,
    serve_api: ServeApi,
    tmp_path: Path,
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", database_url=migrated_database_url, broker_url=clean_redis
    )
    workers = start_workers(settings, count=2, test_generators=True)
    api = serve_api(settings)
    uploaded = upload_catalog(api.http, TRAVEL_CATALOG.read_bytes())
    assert uploaded.status_code == 201, uploaded.text
    spec = JobSpec(n=400, generator="duplicating", seed=9, batch_size=20, verify=STAGES)
    job_id = submit_job(api.http, uploaded.json()["id"], spec)
    job = wait_for_job_over_http(api.http, job_id, *workers)
    assert (job["status"], job["error"]) == ("succeeded", None)

    with sessions() as session:
        rows = session.execute(
            select(SampleRecord.status, SampleRecord.stage, SampleRecord.reason, SampleRecord.data)
            .where(SampleRecord.job_id == job_id)
            .order_by(SampleRecord.position)
        ).all()
    assert len(rows) == 400
    stored = [Sample.model_validate(row.data) for row in rows]

    # The same samples judged in one pass, in position order, by the stages themselves.
    tools = load_catalog(TRAVEL_CATALOG).tools
    reference = run_stages(build_stages(STAGES), stored, StageContext.for_catalog(tools))
    expected = [
        ("accepted", "dedup", None)
        if vs[-1].accepted
        else ("rejected", vs[-1].stage, vs[-1].reason)
        for vs in reference.verdicts
    ]
    assert [(row.status, row.stage, row.reason) for row in rows] == expected
    reasons = {reason for _, _, reason in expected}
    assert {"unknown_tool", "duplicate", "near_duplicate", None} <= reasons

    counts = job["counts"]
    kept = sum(status == "accepted" for status, _, _ in expected)
    assert counts["accepted"] == kept
    assert [step["step"] for step in counts["funnel"]] == ["generated", *STAGES, "accepted"]
    assert counts["funnel"][-2] == {
        "step": "dedup",
        "samples": kept,
        "rejected": counts["by_stage"]["dedup"]["rejected"],
    }
    assert all(len(entry["examples"]) <= 5 for entry in counts["rejections"])

    body = export(api.http, job_id, "unified")
    exported = list(FORMATS.get("unified").read(io.BytesIO(body), f"{uuid.uuid4().hex}.jsonl"))
    assert [s.id for s in exported] == [
        s.id for s, (status, _, _) in zip(stored, expected, strict=True) if status == "accepted"
    ]
    api_of_catalog = MockApi(tools)
    for sample in exported:
        for step in sample.steps:
            assert step.results == [api_of_catalog.call(call).body for call in step.tool_calls]
            assert step.results
