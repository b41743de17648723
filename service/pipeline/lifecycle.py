"""A job after it was submitted: cancelled, finished when its last batch is done, failed, and
finished late when the worker that stored its last batch died first.

Plain functions over a SQLAlchemy Session; functions that take a Session leave committing to the
caller unless they say otherwise.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.db.models import (
    ACTIVE_JOB,
    FINISHED,
    OPEN_BATCH,
    BatchRecord,
    BatchStatus,
    JobRecord,
    JobStatus,
    utcnow,
)
from service.errors import InvalidRequest, NotFound
from service.pipeline import dedup
from service.pipeline.counts import refresh_counts, store_final_counts


def cancel_job(session: Session, job_id: str) -> JobRecord:
    """Cancel a queued or running job: its open batches are cancelled, no new batch starts.

    Batches already being worked on find their batch cancelled and store nothing. Cancelling a
    cancelled job changes nothing; a succeeded or failed job raises `InvalidRequest`.
    """
    job = lock_job(session, job_id)
    if job is None:
        raise NotFound(f"job '{job_id}' does not exist; list the jobs with GET /v1/jobs")
    if job.status == JobStatus.cancelled:
        return job
    if job.status in FINISHED:
        raise InvalidRequest(
            f"job '{job_id}' already {job.status}; only queued or running jobs can be cancelled"
        )
    job.status = JobStatus.cancelled
    job.finished_at = utcnow()
    _close_open_batches(session, job_id)
    refresh_counts(session, job_id)
    return job


def lock_job(session: Session, job_id: str) -> JobRecord | None:
    """The job, freshly read, with its row locked until the transaction ends.

    Every transaction that changes a job and its batches takes this lock first: one lock order,
    no deadlocks. It is FOR NO KEY UPDATE, so rows that refer to the job (samples being stored)
    can still be inserted meanwhile. SQLite serialises writers anyway and ignores the clause.
    """
    return session.scalar(
        select(JobRecord)
        .where(JobRecord.id == job_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )


def finish_if_done(session: Session, job_id: str) -> bool:
    """Mark an active job succeeded when none of its batches is open; True if this call did.

    One conditional UPDATE decides, so of two workers finishing the last batches at once at
    least one sees the other's commit; doing it twice writes the same result.
    """
    open_batches = (
        select(BatchRecord.id)
        .where(BatchRecord.job_id == job_id, BatchRecord.status.in_(OPEN_BATCH))
        .exists()
    )
    done = session.execute(
        update(JobRecord)
        .where(JobRecord.id == job_id, JobRecord.status.in_(ACTIVE_JOB), ~open_batches)
        .values(status=JobStatus.succeeded, finished_at=utcnow(), updated_at=utcnow())
    )
    if not done.rowcount:  # type: ignore[attr-defined]
        return False
    store_final_counts(session, job_id)
    return True


def fail_job(session: Session, job_id: str, error: str) -> None:
    """Fail an active job with `error` and cancel its open batches (no new batch starts)."""
    failed = session.execute(
        update(JobRecord)
        .where(JobRecord.id == job_id, JobRecord.status.in_(ACTIVE_JOB))
        .values(status=JobStatus.failed, error=error, finished_at=utcnow(), updated_at=utcnow())
    )
    if failed.rowcount:  # type: ignore[attr-defined]
        _close_open_batches(session, job_id)
        store_final_counts(session, job_id)


def finish_orphaned_jobs(session: Session) -> int:
    """Finish the active jobs that have no open batch left (the worker that stored their last
    batch died before finishing them); how many there were. Leaves committing to the caller."""
    open_batch = (
        select(BatchRecord.id)
        .where(BatchRecord.job_id == JobRecord.id, BatchRecord.status.in_(OPEN_BATCH))
        .exists()
    )
    orphaned = session.scalars(
        select(JobRecord.id).where(JobRecord.status.in_(ACTIVE_JOB), ~open_batch)
    ).all()
    return sum(finish_if_done(session, job_id) for job_id in orphaned)


def _close_open_batches(session: Session, job_id: str) -> None:
    session.execute(
        update(BatchRecord)
        .where(BatchRecord.job_id == job_id, BatchRecord.status.in_(OPEN_BATCH))
        .values(status=BatchStatus.cancelled, updated_at=utcnow())
    )
    # Verified batches above a closed one were waiting for it to be de-duplicated first.
    dedup.advance(session, job_id)
