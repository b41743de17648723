"""Liveness without restarts: the broker loses every queued message mid-job (FLUSHDB, as a
Redis restarted without persistence would), and the same workers, never restarted, finish the
job through their sweep, with every sample once and the same samples as a clean run."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from engine_helpers import Worker, insert_catalog, submit, wait_for_job
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from test_job_workers import verified_batches, wait_until

from service.db.models import SampleRecord
from service.pipeline.spec import JobSpec
from service.settings import Settings

Sessions = sessionmaker[Session]
# The defaults (sweep every 10 s, lease 30 s) heal within 40 s of the loss.
HEALED_WITHIN_SECONDS = 60


def samples_by_place(sessions: Sessions, job_id: str) -> list[tuple[str, str, str, str | None]]:
    """(id without the job's prefix, status, query, reason) per sample, in position order."""
    with sessions() as session:
        rows = session.execute(
            select(
                SampleRecord.id,
                SampleRecord.status,
                SampleRecord.data["query"].as_string(),
                SampleRecord.reason,
            )
            .where(SampleRecord.job_id == job_id)
            .order_by(SampleRecord.position)
        ).all()
    return [
        (id_.removeprefix(job_id), status, query, reason) for id_, status, query, reason in rows
    ]


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_job_whose_queued_messages_are_lost_finishes_without_a_worker_restart(
    migrated_database_url: str,
    clean_redis: str,
    sessions: Sessions,
    start_workers: Callable[..., list[Worker]],
    tmp_path: Path,
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", database_url=migrated_database_url, broker_url=clean_redis
    )
    workers = start_workers(settings, count=2, test_generators=True)
    insert_catalog(sessions, "travel")
    spec = JobSpec(n=600, generator="slow", seed=5, batch_size=20)
    job_id = submit(sessions, settings, "travel", spec)
    wait_until(lambda: verified_batches(sessions, job_id) >= 3, "3 batches verified", *workers)
    redis.Redis.from_url(clean_redis).flushdb()
    lost_at = time.monotonic()
    assert verified_batches(sessions, job_id) < 30, "the job ended before the loss"

    job = wait_for_job(sessions, job_id, *workers)
    assert time.monotonic() - lost_at < HEALED_WITHIN_SECONDS
    assert (job.status, job.error) == ("succeeded", None)
    assert all(worker.process.poll() is None for worker in workers), "no worker restarted"
    assert any("sweep: sent" in worker.tail(400) for worker in workers)

    clean_id = submit(sessions, settings, "travel", spec)
    clean = wait_for_job(sessions, clean_id, *workers)
    assert clean.status == "succeeded"
    faulted, expected = samples_by_place(sessions, job_id), samples_by_place(sessions, clean_id)
    assert len(faulted) == 600
    assert faulted == expected, "the same samples, once each, as the clean run"
    with sessions() as session:
        accepted = session.scalar(
            select(func.count(func.distinct(SampleRecord.id))).where(
                SampleRecord.job_id == job_id, SampleRecord.status == "accepted"
            )
        )
    assert accepted == job.counts["accepted"] == clean.counts["accepted"]
