"""Sending a job's batches to the queue: a submitted job's planned batches, and after a worker
or queue was lost, every open batch the database still knows of."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from service.pipeline.lifecycle import open_batches
from service.pipeline.submit import planned_batch_ids
from service.queue.app import celery_for
from service.queue.database import sessions_for
from service.queue.sending import GENERATE_TASK, VERIFY_TASK, send_batches
from service.settings import Settings, get_settings


def enqueue_job(job_id: str, settings: Settings | None = None) -> int:
    """Send a generate task for each planned batch of the job (call after committing the job);
    how many were sent."""
    settings = settings or get_settings()
    with sessions_for(settings.resolved_database_url())() as session:
        batch_ids = planned_batch_ids(session, job_id)
    return send_batches(celery_for(settings), GENERATE_TASK, batch_ids)


def recover_unfinished(
    session_factory: sessionmaker[Session], settings: Settings | None = None
) -> int:
    """Re-enqueue the open batches of every active job (see
    `service.pipeline.lifecycle.open_batches`); returns how many tasks were sent."""
    left = open_batches(session_factory)
    app = celery_for(settings or get_settings())
    return send_batches(app, GENERATE_TASK, left.planned) + send_batches(
        app, VERIFY_TASK, left.generated
    )
