"""How a training attempt ends in the database: the version ready (`store_ready`), failed
(`fail_version`, `fail_abandoned`; its samples then count as new again), or released for the next
attempt to take over at once (`release`). Each write of an attempt is fenced on its claim
(service.training.lease), so an attempt that was taken over stores nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy.exc import OperationalError

from service.db.engine import Sessions
from service.db.models import ACTIVE_VERSION, ModelVersionRecord, ModelVersionStatus, as_utc, utcnow
from service.training.lease import Claim, fence, update_version
from service.training.versions import active_version

log = logging.getLogger(__name__)


def store_ready(
    sessions: Sessions,
    claim: Claim,
    final: Path,
    metrics: dict[str, Any],
    counts: dict[str, int],
) -> ModelVersionRecord | None:
    """Mark the claimed version ready with its adapter folder, metrics and sample counts; the
    version as stored, or None when another worker took it over first."""
    now = utcnow()
    with sessions() as session:
        stored = session.execute(
            update_version()
            .where(*fence(claim))
            .values(
                status=ModelVersionStatus.ready,
                adapter_path=str(final),
                metrics=metrics,
                error=None,
                finished_at=now,
                lease_expires_at=None,
                updated_at=now,
                **counts,
            )
        )
        session.commit()
    if not stored.rowcount:  # type: ignore[attr-defined]
        log.warning("version %s was taken over before it was stored", claim.version_id)
        return None
    return read_version(sessions, claim.version_id)


def fail_version(
    sessions: Sessions, version_id: str, error: str, *, attempt: int | None = None
) -> bool:
    """Mark a queued or training version failed with `error` (only while it is still at
    `attempt`, when given); True if this call did. Its samples count as new again."""
    where = [
        ModelVersionRecord.id == version_id,
        ModelVersionRecord.status.in_(ACTIVE_VERSION),
    ]
    if attempt is not None:
        where.append(ModelVersionRecord.attempt == attempt)
    now = utcnow()
    with sessions() as session:
        failed = session.execute(
            update_version()
            .where(*where)
            .values(
                status=ModelVersionStatus.failed,
                error=error,
                finished_at=now,
                lease_expires_at=None,
                updated_at=now,
            )
        )
        session.commit()
    return bool(failed.rowcount)  # type: ignore[attr-defined]


def fail_abandoned(sessions: Sessions, catalog_id: str, error: str) -> bool:
    """Fail the catalog's training version when no worker holds its lease (after a run that
    kept raising unexpected errors); True if one was failed."""
    with sessions() as session:
        version = active_version(session, catalog_id)
        if version is None or version.status != ModelVersionStatus.training:
            return False
        expired = version.lease_expires_at is None or as_utc(version.lease_expires_at) <= utcnow()
        if not expired:
            return False
    return fail_version(sessions, version.id, error, attempt=version.attempt)


def release(sessions: Sessions, claim: Claim, error: str) -> None:
    """Let the next `maybe_train` take the version over at once (this attempt gave up on
    `error`, kept in case no attempt finishes)."""
    try:
        with sessions() as session:
            session.execute(
                update_version()
                .where(*fence(claim))
                .values(lease_expires_at=utcnow(), error=error, updated_at=utcnow())
            )
            session.commit()
    except OperationalError:  # the lease then expires by itself
        log.exception("could not release version %s", claim.version_id)


def read_version(sessions: Sessions, version_id: str) -> ModelVersionRecord | None:
    """The version as stored now."""
    with sessions() as session:
        return session.get(ModelVersionRecord, version_id)
