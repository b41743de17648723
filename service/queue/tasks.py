"""The Celery tasks: each takes a batch id (or a catalog id), calls one pipeline function, and
enqueues the next. A generate task of a worker that also consumes the verify queue (the
embedded default, a worker run with `-Q generate,verify`) verifies its batch at once instead.

A task never holds state of its own. Bad input (`ActionForgeError`: a catalog without tools, a
generator refusing the spec) fails the batch and its job at once; a database that does not
answer is waited for (retries up to about a minute and a half, then the batch is left to the
sweep, `service.queue.sweep`, which sends it again once the database answers); any other
exception is retried a few times with a growing delay, then fails them with the exception's text.

The train task runs `service.training.runs.maybe_train` for a catalog: it is sent after every stored
verify batch when AF_TRAIN_ENABLED is set (the task decides whether there is enough to train
on), by `POST /v1/models/train`, and by every worker as it starts, for the versions a lost
worker or queue left queued or training.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_ready
from sqlalchemy import select

from service.db.engine import Sessions, database_unreachable, make_engine, session_factory
from service.db.models import BatchRecord, BatchStatus, JobRecord
from service.pipeline import batches
from service.pipeline.leases import BatchClaim
from service.queue.database import sessions_for
from service.queue.sending import (
    GENERATE_TASK,
    TRAIN_TASK,
    VERIFY_TASK,
    ActionForgeCelery,
    send_batches,
    send_training,
)
from service.training import runs as training
from service.training.outcome import fail_abandoned
from service.training.versions import stale_runs
from unified.errors import ActionForgeError

log = logging.getLogger(__name__)

Done = TypeVar("Done")

# Retries after an unexpected exception; the first retry waits 1 s, then 2 s, 4 s.
MAX_RETRIES = 3
# Retries while the database does not answer: 1, 2, 4, 8, then every 15 s, about 90 s in all,
# which outlasts a restart or a failover of the database server.
DATABASE_RETRIES = 9
DATABASE_RETRY_MAX_WAIT = 15


def _claim(task: Any) -> BatchClaim:
    # The task id stays the same across retries, so a retry takes over its own lease.
    holder = task.request.id or BatchClaim().holder
    return BatchClaim(holder=holder, seconds=task.app.settings.batch_lease_seconds)


def generate_batch(task: Any, batch_id: str) -> None:
    """Generate one planned batch, then enqueue its verification; on a worker that consumes the
    verify queue too, verify it in this task instead (no broker round trip, no second task,
    samples and verdicts stored in one transaction)."""
    settings = task.app.settings
    step = partial(
        batches.generate_batch,
        heldout_fraction=settings.train_heldout_fraction,
        templates_root=settings.resolved_templates_root(),
        claim=_claim(task),
        verify_at_once=task.app.verifies_here,
        judge_min_accuracy=settings.judge_min_accuracy,
    )
    stored = _run(task, step, batch_id)
    if stored == BatchStatus.verified:
        _after_verified(task, batch_id)
    if stored != BatchStatus.generated:
        return
    try:
        send_batches(task.app, VERIFY_TASK, [batch_id])
    except Exception as exc:  # the broker is away: the sweep sends it once it is back
        log.warning("batch %s: verify not sent (%s); left to the sweep", batch_id, exc)


def verify_batch(task: Any, batch_id: str) -> None:
    """Verify one generated batch; the last batch of a job finishes the job. With
    AF_TRAIN_ENABLED, then ask for a training run of the job's catalog."""
    step = partial(
        batches.verify_batch,
        judge_min_accuracy=task.app.settings.judge_min_accuracy,
        claim=_claim(task),
    )
    if _run(task, step, batch_id):
        _after_verified(task, batch_id)


def _after_verified(task: Any, batch_id: str) -> None:
    """With AF_TRAIN_ENABLED, ask for a training run of the verified batch's catalog."""
    settings = task.app.settings
    if settings.train_enabled:
        sessions = sessions_for(task.app.settings.resolved_database_url())
        with sessions() as session:
            catalog_id = session.scalar(
                select(JobRecord.catalog_id)
                .join(BatchRecord, BatchRecord.job_id == JobRecord.id)
                .where(BatchRecord.id == batch_id)
            )
        if catalog_id is not None:
            send_training(task.app, catalog_id)


def train(
    task: Any, catalog_id: str, force: bool = False, overrides: dict[str, Any] | None = None
) -> None:
    """Train the catalog's next model version if there is one to train (see
    `service.training.runs.maybe_train`); a version that fails on bad input is marked failed there
    with the reason."""
    settings = task.app.settings
    sessions = sessions_for(settings.resolved_database_url())
    try:
        training.maybe_train(sessions, catalog_id, settings, force=force, overrides=overrides)
    except ActionForgeError as exc:  # before any version was claimed: unknown catalog, ...
        log.warning("no training run for catalog %s: %s", catalog_id, exc)
    except SoftTimeLimitExceeded:
        fail_abandoned(
            sessions,
            catalog_id,
            f"training ran past AF_TRAIN_TIME_LIMIT ({settings.train_time_limit} s); raise it "
            "or train on fewer samples (AF_TRAIN_MIN_NEW_SAMPLES, max_steps)",
        )
    except Exception as exc:
        retries = task.request.retries
        if retries < MAX_RETRIES:
            log.warning("training %s: %s: %s; retrying", catalog_id, type(exc).__name__, exc)
            raise task.retry(exc=exc, countdown=2**retries, max_retries=MAX_RETRIES) from exc
        log.exception("training catalog %s failed after %d attempts", catalog_id, retries + 1)
        error = f"{type(exc).__name__}: {exc} (after {retries + 1} attempts)"
        fail_abandoned(sessions, catalog_id, error)


def _run(task: Any, step: Callable[[Sessions, str], Done], batch_id: str) -> Done | None:
    """The step's result, or None where it failed the batch or left it to a retry."""
    sessions = sessions_for(task.app.settings.resolved_database_url())
    try:
        return step(sessions, batch_id)
    except ActionForgeError as exc:
        log.warning("batch %s failed: %s", batch_id, exc)
        batches.fail_batch(sessions, batch_id, str(exc))
    except Exception as exc:
        retries = task.request.retries
        if database_unreachable(exc):
            _wait_for_database(task, batch_id, exc)
            return None
        if retries < MAX_RETRIES:
            log.warning("batch %s: %s: %s; retrying", batch_id, type(exc).__name__, exc)
            raise task.retry(exc=exc, countdown=2**retries, max_retries=MAX_RETRIES) from exc
        log.exception("batch %s failed after %d attempts", batch_id, retries + 1)
        error = f"{type(exc).__name__}: {exc} (after {retries + 1} attempts)"
        try:
            batches.fail_batch(sessions, batch_id, error)
        except Exception as fail_exc:
            if not database_unreachable(fail_exc):
                raise
            # Left open: the sweep sends it again, and the batch fails for good once it was
            # started MAX_ATTEMPTS times, with a reason the job keeps.
            log.error("batch %s: failure not stored, the database does not answer", batch_id)
    return None


def _wait_for_database(task: Any, batch_id: str, exc: Exception) -> None:
    """Retry later while the database does not answer; past DATABASE_RETRIES, leave the batch,
    still open in the database, to the sweep."""
    retries = task.request.retries
    if retries < DATABASE_RETRIES:
        wait = min(2**retries, DATABASE_RETRY_MAX_WAIT)
        log.warning(
            "batch %s: the database does not answer (%s); retry in %d s", batch_id, exc, wait
        )
        raise task.retry(exc=exc, countdown=wait, max_retries=DATABASE_RETRIES) from exc
    log.error(
        "batch %s: the database did not answer in %d attempts; the sweep sends it again",
        batch_id,
        retries + 1,
    )


def recover_training(app: ActionForgeCelery) -> int:
    """Enqueue a train task for every catalog with a queued or training version, due when its
    lease ends (a worker still training it renews the lease, and the task then does nothing);
    returns how many were sent. Run as a worker starts."""
    engine = make_engine(app.settings.resolved_database_url())
    try:  # an engine of its own, disposed: no connection may reach a later-forked pool process
        with session_factory(engine)() as session:
            runs = stale_runs(session)
    finally:
        engine.dispose()
    for catalog_id, wait in runs:
        send_training(app, catalog_id, countdown=wait + 1.0 if wait else 0.0)
    return len(runs)


def _recover_training_on_start(sender: Any = None, **_kwargs: Any) -> None:
    app = getattr(sender, "app", None)
    if isinstance(app, ActionForgeCelery):
        sent = recover_training(app)
        if sent:
            log.info("re-enqueued %d unfinished training runs", sent)


def register_tasks(app: ActionForgeCelery) -> None:
    """Register the batch and train tasks on `app` under their stable names.

    `shared=False`: Celery otherwise adds each task, as first built, to every app made later in
    the process, with the first app's settings (the train task's time limit).
    """
    app.task(name=GENERATE_TASK, bind=True, shared=False)(generate_batch)
    app.task(name=VERIFY_TASK, bind=True, shared=False)(verify_batch)
    limit = app.settings.train_time_limit
    app.task(
        name=TRAIN_TASK,
        bind=True,
        shared=False,
        time_limit=limit,
        soft_time_limit=max(limit - 60, limit * 9 // 10),
    )(train)
    worker_ready.connect(_recover_training_on_start, weak=False, dispatch_uid=__name__)
