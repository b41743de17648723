"""Leases in the database: a task's hold on the batch step it works on, the fleet-wide lease of
the batch sweep, and the batches whose lease ran out (their message was lost, or their task's
worker or database went away).

A task claims a batch step with one conditional UPDATE: the claim succeeds when no other task
holds an unexpired lease on it, or when the holder is the task itself (a retry keeps its
Celery task id). While the slow part runs, `renewing` keeps the lease fresh from the
process's one lease-keeping thread.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from uuid import uuid4

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.db.engine import Sessions
from service.db.models import (
    ACTIVE_JOB,
    BatchRecord,
    JobRecord,
    LeaseRecord,
    WorkerSeenRecord,
    utcnow,
)
from service.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_LEASE_SECONDS: float = Settings.model_fields["batch_lease_seconds"].default


@dataclass(frozen=True)
class BatchClaim:
    """Who claims a batch step (a task id, the same across retries) and for how long."""

    holder: str = field(default_factory=lambda: uuid4().hex)
    seconds: float = DEFAULT_LEASE_SECONDS


def claim_step(session: Session, batch_id: str, expected: str, claim: BatchClaim) -> int | None:
    """Take the lease on the batch's `expected` step and count an attempt; the attempt number,
    or None when the batch left that step or another task holds the lease."""
    now = utcnow()
    return session.scalar(
        update(BatchRecord)
        .where(
            BatchRecord.id == batch_id,
            BatchRecord.status == expected,
            or_(
                BatchRecord.running_until.is_(None),
                BatchRecord.running_until < now,
                BatchRecord.claimed_by == claim.holder,
            ),
        )
        .values(
            attempts=BatchRecord.attempts + 1,
            running_until=now + timedelta(seconds=claim.seconds),
            claimed_by=claim.holder,
            updated_at=now,
        )
        .returning(BatchRecord.attempts)
        .execution_options(synchronize_session=False)
    )


def step_done_values() -> dict[str, object]:
    """Columns to set with a batch's next status: the lease let go, the next step due now."""
    return {"running_until": None, "claimed_by": None, "sent_at": utcnow()}


class _LeaseKeeper:
    """One daemon thread per process renewing every claim its tasks hold, each every third of
    its length: a batch step registers and leaves in microseconds, where a thread of its own
    cost a thread start and a join (milliseconds on a busy machine) for every step."""

    def __init__(self) -> None:
        self._held: dict[int, tuple[Sessions, str, BatchClaim, float]] = {}
        self._renewing: set[int] = set()
        self._next_token = 0
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="batch-leases", daemon=True)
        self._thread.start()

    def hold(self, sessions: Sessions, batch_id: str, claim: BatchClaim) -> int:
        with self._changed:
            self._next_token += 1
            due = time.monotonic() + claim.seconds / 3
            self._held[self._next_token] = (sessions, batch_id, claim, due)
            self._changed.notify_all()
            return self._next_token

    def release(self, token: int) -> None:
        """Stop renewing `token`'s claim; a renewal of it under way ends first, so none
        happens after this returns."""
        with self._changed:
            self._held.pop(token, None)
            while token in self._renewing:
                self._changed.wait()

    def _run(self) -> None:
        while True:
            with self._changed:
                now = time.monotonic()
                due = [(token, held) for token, held in self._held.items() if held[3] <= now]
                if not due:
                    upcoming = min((held[3] for held in self._held.values()), default=None)
                    self._changed.wait(None if upcoming is None else upcoming - now)
                    continue
                for token, (sessions, batch_id, claim, _) in due:
                    self._held[token] = (sessions, batch_id, claim, now + claim.seconds / 3)
                self._renewing = {token for token, _ in due}
            for _, (sessions, batch_id, claim, _) in due:
                _renew(sessions, batch_id, claim)
            with self._changed:
                self._renewing = set()
                self._changed.notify_all()


def _renew(sessions: Sessions, batch_id: str, claim: BatchClaim) -> None:
    try:
        with sessions() as session:
            session.execute(
                update(BatchRecord)
                .where(BatchRecord.id == batch_id, BatchRecord.claimed_by == claim.holder)
                .values(running_until=utcnow() + timedelta(seconds=claim.seconds))
            )
            session.commit()
    except Exception as exc:
        log.warning("batch %s: lease not renewed: %s", batch_id, exc)


_keepers: dict[int, _LeaseKeeper] = {}
_keepers_lock = threading.Lock()


def _keeper() -> _LeaseKeeper:
    # Per process id: a pool process forked from a parent that had one starts its own.
    with _keepers_lock:
        keeper = _keepers.get(os.getpid())
        if keeper is None:
            keeper = _keepers[os.getpid()] = _LeaseKeeper()
        return keeper


@contextmanager
def renewing(sessions: Sessions, batch_id: str, claim: BatchClaim) -> Iterator[None]:
    """Renew the claim every third of its length until the block ends. A renewal that fails
    (the database is away) is logged and tried again at the next tick."""
    keeper = _keeper()
    token = keeper.hold(sessions, batch_id, claim)
    try:
        yield
    finally:
        keeper.release(token)


def mark_sent(session: Session, batch_ids: Sequence[str]) -> None:
    """Record that a message for each batch's next step was just sent."""
    if batch_ids:
        session.execute(
            update(BatchRecord).where(BatchRecord.id.in_(batch_ids)).values(sent_at=utcnow())
        )


def idle_open_batches(session: Session, status: str, lease_seconds: float) -> tuple[int, list[str]]:
    """For the open batches in `status` of active jobs that no task holds: how many there are,
    and the ids of those idle past the lease (last sent, or last changed, that long ago),
    longest idle first."""
    now = utcnow()
    idle = (
        BatchRecord.status == status,
        JobRecord.status.in_(ACTIVE_JOB),
        or_(BatchRecord.running_until.is_(None), BatchRecord.running_until < now),
    )
    joined = select(BatchRecord.id).join(JobRecord, JobRecord.id == BatchRecord.job_id)
    count = session.scalar(select(func.count()).select_from(joined.where(*idle).subquery()))
    last_sign = func.coalesce(BatchRecord.sent_at, BatchRecord.updated_at)
    stale = session.scalars(
        joined.where(*idle, last_sign < now - timedelta(seconds=lease_seconds)).order_by(
            last_sign, BatchRecord.id
        )
    ).all()
    return count or 0, list(stale)


def take_fleet_lease(session: Session, name: str, holder: str, seconds: float) -> bool:
    """Hold the lease `name` for `seconds` unless another holder's lease is unexpired; True
    when held now (committed)."""
    now = utcnow()
    taken = session.execute(
        update(LeaseRecord)
        .where(LeaseRecord.name == name, LeaseRecord.expires_at < now)
        .values(holder=holder, expires_at=now + timedelta(seconds=seconds))
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount:  # type: ignore[attr-defined]
        session.commit()
        return True
    if session.get(LeaseRecord, name) is not None:
        session.rollback()
        return False
    try:
        session.execute(
            insert(LeaseRecord).values(
                name=name, holder=holder, expires_at=now + timedelta(seconds=seconds)
            )
        )
        session.commit()
    except IntegrityError:  # another process created it first and holds it
        session.rollback()
        return False
    return True


def record_worker_seen(session: Session, hostname: str) -> None:
    """Note that the worker `hostname` is alive now (committed)."""
    now = utcnow()
    seen = session.execute(
        update(WorkerSeenRecord).where(WorkerSeenRecord.hostname == hostname).values(seen_at=now)
    )
    if not seen.rowcount:  # type: ignore[attr-defined]
        session.add(WorkerSeenRecord(hostname=hostname, seen_at=now))
    session.commit()


def workers_seen_since(session: Session, seconds: float) -> int:
    """How many workers said they were alive within the last `seconds`."""
    since = utcnow() - timedelta(seconds=seconds)
    return (
        session.scalar(
            select(func.count())
            .select_from(WorkerSeenRecord)
            .where(WorkerSeenRecord.seen_at >= since)
        )
        or 0
    )


def stranded_batches(session: Session, lease_seconds: float) -> int:
    """Open batches of active jobs idle past their lease: what the next sweep sends again."""
    return sum(
        len(idle_open_batches(session, status, lease_seconds)[1])
        for status in ("planned", "generated")
    )
