"""The batch sweep: every worker runs a timer, and at each tick the one that takes the fleet's
sweep lease sends again the batches whose messages were lost.

A batch is due when its job is active, no task holds its lease, and its last message was sent
(or its last step ended) more than AF_BATCH_LEASE_SECONDS ago: a broker restarted without its
data, a send that failed while the broker was away, a worker killed mid-task, tasks that gave up
while the database was away. So that a long queue of batches that are merely waiting is not sent
twice, the sweep sends at most as many as the broker's queue lacks: open batches nobody works
on, less the messages waiting. A copy that does arrive twice does nothing (the batch's lease and
its status decide; see `service.pipeline.batches`).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from service.db.engine import make_engine, session_factory
from service.db.models import BatchStatus
from service.pipeline.housekeeping import forget_old_answers
from service.pipeline.leases import (
    idle_open_batches,
    mark_sent,
    record_worker_seen,
    take_fleet_lease,
)
from service.pipeline.lifecycle import finish_orphaned_jobs
from service.queue.broker_status import waiting_messages
from service.queue.sending import (
    GENERATE_QUEUE,
    GENERATE_TASK,
    VERIFY_QUEUE,
    VERIFY_TASK,
    ActionForgeCelery,
    send_batches,
)

log = logging.getLogger(__name__)

SWEEP_LEASE = "batch-sweep"
# (batch status, the task that moves it on, that task's queue)
STEPS = (
    (BatchStatus.planned, GENERATE_TASK, GENERATE_QUEUE),
    (BatchStatus.generated, VERIFY_TASK, VERIFY_QUEUE),
)


@dataclass
class SweepResult:
    sent: int = 0
    finished_jobs: int = 0
    forgotten_answers: int = 0


def sweep_once(
    app: ActionForgeCelery, sessions: sessionmaker[Session], holder: str
) -> SweepResult | None:
    """One sweep, if this process takes the fleet's sweep lease (else None): finish orphaned
    jobs, then send again what the broker lacks of the batches idle past their lease."""
    settings = app.settings
    with sessions() as session:
        # A little under the interval, so that the next tick of any worker may take it.
        lease = settings.sweep_interval_seconds * 0.9
        if not take_fleet_lease(session, SWEEP_LEASE, holder, lease):
            return None
        result = SweepResult(finished_jobs=finish_orphaned_jobs(session))
        result.forgotten_answers = forget_old_answers(session, settings.idempotency_key_hours)
        session.commit()
    waiting = waiting_messages(app, [queue for _, _, queue in STEPS])
    for status, task_name, queue in STEPS:
        with sessions() as session:
            idle, due = idle_open_batches(session, status, settings.batch_lease_seconds)
        missing = idle - waiting[queue]
        if missing <= 0 or not due:
            continue
        batch_ids = due[:missing]
        result.sent += send_batches(app, task_name, batch_ids)
        with sessions() as session:
            mark_sent(session, batch_ids)
            session.commit()
    if result.sent or result.finished_jobs:
        log.info(
            "sweep: sent %d batches again, finished %d orphaned jobs",
            result.sent,
            result.finished_jobs,
        )
    return result


class SweepTimer:
    """A daemon thread of a worker's main process: at once, then every AF_SWEEP_INTERVAL_SECONDS,
    note the worker as alive and sweep if no other worker does. Errors (database or broker
    away) are logged and the next tick tries again."""

    def __init__(self, app: ActionForgeCelery, hostname: str) -> None:
        self.app = app
        self.hostname = hostname
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="batch-sweep", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        # NullPool: no connection stays open to be inherited by a pool process forked later.
        engine = make_engine(self.app.settings.resolved_database_url(), poolclass=NullPool)
        sessions = session_factory(engine)
        try:
            while True:
                self.tick(sessions)
                if self._stop.wait(self.app.settings.sweep_interval_seconds):
                    return
        finally:
            engine.dispose()

    def tick(self, sessions: sessionmaker[Session]) -> None:
        try:
            with sessions() as session:
                record_worker_seen(session, self.hostname)
            sweep_once(self.app, sessions, self.hostname)
        except Exception as exc:
            log.warning(
                "sweep: %s: %s; trying again in %s s",
                type(exc).__name__,
                exc,
                self.app.settings.sweep_interval_seconds,
            )
