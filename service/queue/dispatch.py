"""Sending a submitted job's planned batches to the queue (what is lost later, the sweep sends
again: `service.queue.sweep`)."""

from __future__ import annotations

from service.pipeline.submit import planned_batch_ids
from service.queue.app import celery_for
from service.queue.database import sessions_for
from service.queue.sending import GENERATE_TASK, send_batches
from service.settings import Settings, get_settings


def enqueue_job(job_id: str, settings: Settings | None = None) -> int:
    """Send a generate task for each planned batch of the job (call after committing the job);
    how many were sent."""
    settings = settings or get_settings()
    with sessions_for(settings.resolved_database_url())() as session:
        batch_ids = planned_batch_ids(session, job_id)
    return send_batches(celery_for(settings), GENERATE_TASK, batch_ids)
