"""The Celery tasks: each takes a batch id, calls one pipeline function, and enqueues the next.

A task never holds state of its own. Bad input (`ActionForgeError`: a catalog without tools, a
generator refusing the spec) fails the batch and its job at once; any other exception is retried
a few times with a growing delay, then fails them with the exception's text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from service import batches
from service.queue.app import GENERATE_TASK, VERIFY_TASK, ActionForgeCelery, send_batches
from service.queue.database import sessions_for
from unified.errors import ActionForgeError

log = logging.getLogger(__name__)

# Retries after an unexpected exception; the first retry waits 1 s, then 2 s, 4 s.
MAX_RETRIES = 3


def generate_batch(task: Any, batch_id: str) -> None:
    """Generate one planned batch, then enqueue its verification."""
    if _run(task, batches.generate_batch, batch_id):
        send_batches(task.app, VERIFY_TASK, [batch_id])


def verify_batch(task: Any, batch_id: str) -> None:
    """Verify one generated batch; the last batch of a job finishes the job."""
    _run(task, batches.verify_batch, batch_id)


def _run(task: Any, step: Callable[[batches.Sessions, str], bool], batch_id: str) -> bool:
    sessions = sessions_for(task.app.settings.resolved_database_url())
    try:
        return step(sessions, batch_id)
    except ActionForgeError as exc:
        log.warning("batch %s failed: %s", batch_id, exc)
        batches.fail_batch(sessions, batch_id, str(exc))
    except Exception as exc:
        retries = task.request.retries
        if retries < MAX_RETRIES:
            log.warning("batch %s: %s: %s; retrying", batch_id, type(exc).__name__, exc)
            raise task.retry(exc=exc, countdown=2**retries, max_retries=MAX_RETRIES) from exc
        log.exception("batch %s failed after %d attempts", batch_id, retries + 1)
        error = f"{type(exc).__name__}: {exc} (after {retries + 1} attempts)"
        batches.fail_batch(sessions, batch_id, error)
    return False


def register_tasks(app: ActionForgeCelery) -> None:
    """Register the batch tasks on `app` under their stable names."""
    app.task(name=GENERATE_TASK, bind=True)(generate_batch)
    app.task(name=VERIFY_TASK, bind=True)(verify_batch)
