"""Whole jobs run by real `actionforge worker` processes: on Redis + PostgreSQL with two
workers, with a worker SIGKILLed mid-job, and on the embedded default (SQLite database, SQLite
queue, one worker process for every queue)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from engine_helpers import (
    JOB_DONE_SECONDS,
    JOB_GENERATOR,
    Worker,
    insert_catalog,
    submit,
    wait_for_job,
)
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import BatchRecord, JobRecord, SampleRecord, VerdictRecord
from service.schemas import JobSpec
from service.settings import Settings
from service.worker import start_embedded_workers, stop_workers

Sessions = sessionmaker[Session]
StartWorkers = Callable[..., list[Worker]]


def assert_every_sample_accounted_for(sessions: Sessions, job_id: str, n: int) -> None:
    """accepted + rejected = generated = n, no duplicate ids or positions, and the job's
    stored counts equal a direct SQL count."""
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
        verdicts = session.execute(
            select(func.count(), func.count(func.distinct(VerdictRecord.sample_id)))
            .join(SampleRecord, SampleRecord.id == VerdictRecord.sample_id)
            .where(SampleRecord.job_id == job_id)
        ).one()
        assert tuple(verdicts) == (n, n)  # one stage: one verdict per sample
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
    counts = job.counts
    assert counts["generated"] == n
    assert counts["accepted"] == by_status.get("accepted", 0)
    assert counts["rejected"] == by_status.get("rejected", 0)
    assert counts["by_reason"] == reasons
    assert counts["by_stage"] == {
        "format": {"passed": counts["accepted"], "rejected": counts["rejected"]}
    }


def tasks_done(worker: Worker) -> int:
    return worker.log.read_text(errors="replace").count("] succeeded in ")


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_workers_on_redis_and_postgres_account_for_every_sample(
    migrated_database_url: str,
    clean_redis: str,
    sessions: Sessions,
    start_workers: StartWorkers,
    tmp_path: Path,
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", database_url=migrated_database_url, broker_url=clean_redis
    )
    first, second = start_workers(settings, count=2)
    insert_catalog(sessions, "travel")
    spec = JobSpec(n=2000, generator=JOB_GENERATOR, seed=11, batch_size=50)
    job_id = submit(sessions, settings, "travel", spec)
    wait_for_job(sessions, job_id, first, second)
    assert_every_sample_accounted_for(sessions, job_id, 2000)
    assert tasks_done(first) > 0
    assert tasks_done(second) > 0


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_worker_killed_mid_job_loses_nothing_and_duplicates_nothing(
    migrated_database_url: str,
    clean_redis: str,
    sessions: Sessions,
    start_workers: StartWorkers,
    tmp_path: Path,
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", database_url=migrated_database_url, broker_url=clean_redis
    )
    doomed, survivor = start_workers(settings, count=2, test_generators=True)
    insert_catalog(sessions, "travel")
    spec = JobSpec(n=2000, generator="slow", seed=5, batch_size=50)
    job_id = submit(sessions, settings, "travel", spec)

    def killable() -> bool:
        return verified_batches(sessions, job_id) >= 4 and tasks_done(doomed) > 0

    wait_until(killable, "4 batches verified, some by the worker to kill", doomed, survivor)
    doomed.kill()
    with sessions() as session:
        job = session.get(JobRecord, job_id)
        assert job is not None
        assert job.status == "running", "the job ended before the kill; make 'slow' slower"

    # A replacement starts, as an orchestrator would start one: it recovers the lost batches.
    [replacement] = start_workers(settings, test_generators=True)
    assert "unfinished batch tasks" in replacement.tail()
    wait_for_job(sessions, job_id, survivor, replacement)
    assert_every_sample_accounted_for(sessions, job_id, 2000)


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


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_embedded_default_runs_a_whole_job(
    migrated_database_url: str, sessions: Sessions, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=migrated_database_url)
    assert settings.embedded_broker
    log = tmp_path / "embedded-workers.log"
    with log.open("ab") as sink:  # the worker processes `actionforge serve` starts
        processes = start_embedded_workers(settings, concurrency=2, output=sink)
    try:
        [worker] = [Worker(process, log) for process in processes]
        worker.wait_ready()
        insert_catalog(sessions, "travel")
        insert_catalog(sessions, "empty", empty=True)
        spec = JobSpec(n=300, generator=JOB_GENERATOR, seed=2, batch_size=40)
        job_id = submit(sessions, settings, "travel", spec)
        impossible = submit(sessions, settings, "empty", spec)

        wait_for_job(sessions, job_id, worker)
        assert_every_sample_accounted_for(sessions, job_id, 300)
        failed = wait_for_job(sessions, impossible, worker)
        assert failed.status == "failed"
        assert failed.error is not None
        assert "catalog 'empty' (travel_api.yaml) has no tools to generate calls for" in (
            failed.error
        )
    finally:
        stop_workers(processes)
    assert all(process.returncode == 0 for process in processes)
    assert "Warm shutdown" in log.read_text()
