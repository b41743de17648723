"""Whole jobs run by real `actionforge worker` processes: on Redis + PostgreSQL with two
workers, with a worker SIGKILLed mid-job, and on the embedded default (SQLite database, SQLite
queue, one worker process for every queue).

Each job goes through the REST API over real HTTP, as a client's would: the catalog is uploaded,
the job submitted and followed until it is finished, and every export format downloaded. What
the API reports is checked against a direct count in the database."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from engine_helpers import (
    JOB_DONE_SECONDS,
    JOB_GENERATOR,
    TRAVEL_CATALOG,
    Worker,
    insert_catalog,
    submit,
    wait_for_job,
)
from jobs_over_http import (
    assert_exports_hold_every_accepted_sample,
    read_job,
    submit_job,
    upload_catalog,
    upload_travel_catalog,
    wait_for_job_over_http,
)
from served_api import Api
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import BatchRecord, JobRecord, SampleRecord, VerdictRecord
from service.pipeline.spec import JobSpec
from service.settings import Settings
from service.worker import start_embedded_workers, stop_workers
from unified.model import Sample

Sessions = sessionmaker[Session]
StartWorkers = Callable[..., list[Worker]]
ServeApi = Callable[[Settings], Api]


def assert_every_sample_accounted_for(
    sessions: Sessions, reported: dict[str, Any], n: int
) -> list[Sample]:
    """accepted + rejected = generated = n, no duplicate ids or positions, and the counts the
    API reported for the job (`reported`, its `GET /v1/jobs/{id}`) and those stored with it
    equal a direct SQL count; the accepted samples, in position order."""
    job_id = reported["id"]
    assert (reported["status"], reported["error"]) == ("succeeded", None)
    with sessions() as session:
        job = session.get(JobRecord, job_id)
        assert job is not None
        assert (job.status, job.error) == ("succeeded", None)
        total, ids, positions, lowest, highest = session.execute(
            select(
                func.count(),
                func.count(func.distinct(SampleRecord.id)),
                func.count(func.distinct(SampleRecord.position)),
                func.min(SampleRecord.position),
                func.max(SampleRecord.position),
            ).where(SampleRecord.job_id == job_id)
        ).one()
        assert (total, ids, positions, lowest, highest) == (n, n, n, 0, n - 1)
        by_status = dict(
            session.execute(
                text("SELECT status, count(*) FROM samples WHERE job_id = :job GROUP BY status"),
                {"job": job_id},
            ).all()
        )
        assert set(by_status) <= {"accepted", "rejected"}
        assert by_status.get("accepted", 0) + by_status.get("rejected", 0) == n
        stages = list(job.spec["verify"])
        reached = session.execute(
            select(SampleRecord.status, SampleRecord.stage, func.count())
            .where(SampleRecord.job_id == job_id)
            .group_by(SampleRecord.status, SampleRecord.stage)
        ).all()
        # One verdict per stage a sample reached: every stage when accepted, up to the one that
        # rejected it otherwise.
        expected = sum(
            count * (len(stages) if status == "accepted" else stages.index(stage) + 1)
            for status, stage, count in reached
        )
        verdicts = session.execute(
            select(func.count(), func.count(func.distinct(VerdictRecord.sample_id)))
            .join(SampleRecord, SampleRecord.id == VerdictRecord.sample_id)
            .where(SampleRecord.job_id == job_id)
        ).one()
        assert tuple(verdicts) == (expected, n)
        reasons = dict(
            session.execute(
                text(
                    "SELECT reason, count(*) FROM samples "
                    "WHERE job_id = :job AND status = 'rejected' GROUP BY reason"
                ),
                {"job": job_id},
            ).all()
        )
        mismatched = session.scalar(
            select(func.count())
            .select_from(SampleRecord)
            .where(
                SampleRecord.job_id == job_id,
                SampleRecord.data["id"].as_string() != SampleRecord.id,
            )
        )
        assert mismatched == 0
        open_batches = session.scalar(
            select(func.count())
            .select_from(BatchRecord)
            .where(BatchRecord.job_id == job_id, BatchRecord.status != "verified")
        )
        assert open_batches == 0
        accepted = [
            Sample.model_validate(data)
            for data in session.scalars(
                select(SampleRecord.data)
                .where(SampleRecord.job_id == job_id, SampleRecord.status == "accepted")
                .order_by(SampleRecord.position)
            )
        ]
    assert reported["counts"] == job.counts
    counts = job.counts
    assert counts["generated"] == n
    assert counts["accepted"] == by_status.get("accepted", 0)
    assert counts["rejected"] == by_status.get("rejected", 0)
    assert counts["by_reason"] == reasons
    assert list(counts["by_stage"]) == stages
    assert sum(entry["rejected"] for entry in counts["by_stage"].values()) == counts["rejected"]
    assert counts["by_stage"][stages[-1]]["passed"] == counts["accepted"]
    assert len(accepted) == counts["accepted"]
    return accepted


def tasks_done(worker: Worker) -> int:
    return worker.log.read_text(errors="replace").count("] succeeded in ")


def run_job_over_http(api: Api, spec: JobSpec, *workers: Worker) -> dict[str, Any]:
    """Upload the travel catalog, submit `spec` on it and wait for it, all over HTTP; the
    finished job as `GET /v1/jobs/{id}` gives it."""
    job_id = submit_job(api.http, upload_travel_catalog(api.http), spec)
    return wait_for_job_over_http(api.http, job_id, *workers)


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_workers_on_redis_and_postgres_account_for_every_sample(
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
    first, second = start_workers(settings, count=2)
    api = serve_api(settings)
    spec = JobSpec(n=2000, generator=JOB_GENERATOR, seed=11, batch_size=50)
    job = run_job_over_http(api, spec, first, second)
    accepted = assert_every_sample_accounted_for(sessions, job, 2000)
    assert_exports_hold_every_accepted_sample(api.http, job["id"], accepted)
    assert tasks_done(first) > 0
    assert tasks_done(second) > 0


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_worker_killed_mid_job_loses_nothing_and_duplicates_nothing(
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
    doomed, survivor = start_workers(settings, count=2, test_generators=True)
    api = serve_api(settings)
    spec = JobSpec(n=2000, generator="slow", seed=5, batch_size=50)
    job_id = submit_job(api.http, upload_travel_catalog(api.http), spec)

    def killable() -> bool:
        return verified_batches(sessions, job_id) >= 4 and tasks_done(doomed) > 0

    wait_until(killable, "4 batches verified, some by the worker to kill", doomed, survivor)
    doomed.kill()
    assert read_job(api.http, job_id)["status"] == "running", (
        "the job ended before the kill; make 'slow' slower"
    )

    # A replacement starts, as an orchestrator would; the sweep sends the lost batches again
    # once their lease has passed.
    [replacement] = start_workers(settings, test_generators=True)
    job = wait_for_job_over_http(api.http, job_id, survivor, replacement)
    accepted = assert_every_sample_accounted_for(sessions, job, 2000)
    assert_exports_hold_every_accepted_sample(api.http, job_id, accepted)


def verified_batches(sessions: Sessions, job_id: str) -> int:
    with sessions() as session:
        verified = session.scalar(
            select(func.count())
            .select_from(BatchRecord)
            .where(BatchRecord.job_id == job_id, BatchRecord.status == "verified")
        )
    return verified or 0


def wait_until(condition: Callable[[], bool], what: str, *workers: Worker) -> None:
    deadline = time.monotonic() + JOB_DONE_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    logs = "\n\n".join(worker.tail() for worker in workers)
    pytest.fail(f"never reached: {what}\n{logs}")


def travel_catalog_without_operations() -> bytes:
    """examples/travel_api.yaml with its paths emptied: a catalog with no tools."""
    document = yaml.safe_load(TRAVEL_CATALOG.read_text())
    document["paths"] = {}
    return yaml.safe_dump(document, sort_keys=False).encode()


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_embedded_default_runs_a_whole_job(
    migrated_database_url: str, sessions: Sessions, serve_api: ServeApi, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=migrated_database_url)
    assert settings.embedded_broker
    log = tmp_path / "embedded-workers.log"
    with log.open("ab") as sink:  # the worker processes `actionforge serve` starts
        processes = start_embedded_workers(settings, concurrency=2, output=sink)
    try:
        [worker] = [Worker(process, log) for process in processes]
        worker.wait_ready()
        api = serve_api(settings)
        spec = JobSpec(n=300, generator=JOB_GENERATOR, seed=2, batch_size=40)
        job = run_job_over_http(api, spec, worker)
        accepted = assert_every_sample_accounted_for(sessions, job, 300)
        assert_exports_hold_every_accepted_sample(api.http, job["id"], accepted)

        # The API refuses a catalog without tools, so a job on one can only be made below it:
        # its workers fail it with the reason.
        refused = upload_catalog(api.http, travel_catalog_without_operations())
        assert refused.status_code == 422
        assert refused.json()["detail"] == (
            "travel_api.yaml: /paths: no operations under paths; "
            "add a path with at least one operation (get, post, ...)"
        )
        insert_catalog(sessions, "empty", empty=True)
        impossible = submit(sessions, settings, "empty", spec)
        failed = wait_for_job(sessions, impossible, worker)
        assert failed.status == "failed"
        assert failed.error is not None
        assert "catalog 'empty' (travel_api.yaml) has no tools to generate calls for" in (
            failed.error
        )
        assert read_job(api.http, impossible)["error"] == failed.error
    finally:
        stop_workers(processes)
    assert all(process.returncode == 0 for process in processes)
    assert "Warm shutdown" in log.read_text()
