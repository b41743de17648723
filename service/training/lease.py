"""The right to train a model version (`Claim`) and its lease.

A claim is a version's id and `attempt`. Every write of a training attempt is fenced on that
attempt (`fence`): a version whose lease has expired (its worker died) is taken over by the next
`maybe_train`, which raises the version's `attempt`, so the old worker, should it still run, can
store nothing. The trainer renews the lease from a background thread (`Lease`).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from service.db.engine import Sessions
from service.db.models import ModelVersionRecord, ModelVersionStatus, utcnow
from service.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    """The right to train a version: valid while the version's `attempt` is still this one."""

    version_id: str
    attempt: int


class LeaseLost(Exception):
    """Another worker took the version over; this one must store nothing (not an error of
    the input, so not an `ActionForgeError`)."""


def fence(claim: Claim) -> tuple[Any, ...]:
    """WHERE clauses that hold while the version is still training under this claim."""
    return (
        ModelVersionRecord.id == claim.version_id,
        ModelVersionRecord.attempt == claim.attempt,
        ModelVersionRecord.status == ModelVersionStatus.training,
    )


def update_version() -> Any:
    # No in-session evaluation of the WHERE clause: SQLite hands back naive datetimes, and
    # every caller reads the version again from a new session anyway.
    return update(ModelVersionRecord).execution_options(synchronize_session=False)


def lease_end(settings: Settings) -> datetime:
    """When a lease taken now expires."""
    return utcnow() + timedelta(seconds=settings.train_lease_seconds)


class Lease:
    """Renews a claimed version's lease from a background thread while the trainer runs, every
    tenth of AF_TRAIN_LEASE_SECONDS. `check` (the trainer's progress callback) raises
    `LeaseLost` once a renewal found the version taken over."""

    def __init__(self, sessions: Sessions, claim: Claim, settings: Settings) -> None:
        self._sessions = sessions
        self._claim = claim
        self._seconds = settings.train_lease_seconds
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._thread = threading.Thread(target=self._renew_until_stopped, daemon=True)

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def check(self, *_progress: int) -> None:
        """Raise `LeaseLost` if another worker has taken the version over."""
        if self._lost.is_set():
            raise LeaseLost(self._claim.version_id)

    def renew_now(self) -> None:
        """Renew the lease now; `LeaseLost` if the version is no longer this attempt's."""
        self.check()
        if not self._renew():
            self._lost.set()
            raise LeaseLost(self._claim.version_id)

    def _renew(self) -> bool:
        with self._sessions() as session:
            renewed = session.execute(
                update_version()
                .where(*fence(self._claim))
                .values(lease_expires_at=utcnow() + timedelta(seconds=self._seconds))
            )
            session.commit()
        return bool(renewed.rowcount)  # type: ignore[attr-defined]

    def _renew_until_stopped(self) -> None:
        while not self._stop.wait(self._seconds / 10):
            try:
                if not self._renew():
                    self._lost.set()
                    return
            except OperationalError:  # the database is away for a moment: try again later
                log.warning("could not renew the lease of version %s", self._claim.version_id)
