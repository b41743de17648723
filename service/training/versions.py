"""A catalog's model versions: creating the next one, which lists the new samples it will train
on, and claiming one to train.

One run per catalog: a partial unique index allows one queued or training version per catalog,
so of two workers claiming the same catalog, one insert fails and that worker stops. A training
version whose lease has expired (its worker died) is taken over (`take_over`, see
service.training.lease); one started MAX_ATTEMPTS times fails instead.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import and_, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.db.models import (
    ACTIVE_VERSION,
    CatalogRecord,
    ModelVersionRecord,
    ModelVersionSampleRecord,
    ModelVersionStatus,
    as_utc,
    utcnow,
)
from service.errors import InvalidRequest, NotFound
from service.settings import Settings
from service.training.config import train_config
from service.training.data import chunks, new_sample_ids
from service.training.lease import Claim, lease_end, update_version
from unified.errors import ActionForgeError

log = logging.getLogger(__name__)


# A version started this many times without finishing (workers lost, time limit) fails.
MAX_ATTEMPTS = 3


class VersionBusy(ActionForgeError):
    """A version of the catalog is already queued or training."""


class NotEnoughSamples(InvalidRequest):
    """The catalog has fewer new accepted samples than a training run needs."""


def active_version(session: Session, catalog_id: str) -> ModelVersionRecord | None:
    """The catalog's queued or training version, if any (freshly read)."""
    return session.scalar(
        select(ModelVersionRecord)
        .where(
            ModelVersionRecord.catalog_id == catalog_id,
            ModelVersionRecord.status.in_(ACTIVE_VERSION),
        )
        .execution_options(populate_existing=True)
    )


def latest_ready(
    session: Session, catalog_id: str, base_model: str | None = None
) -> ModelVersionRecord | None:
    """The catalog's newest ready version (of `base_model`, when given)."""
    where = [
        ModelVersionRecord.catalog_id == catalog_id,
        ModelVersionRecord.status == ModelVersionStatus.ready,
    ]
    if base_model is not None:
        where.append(ModelVersionRecord.base_model == base_model)
    return session.scalar(
        select(ModelVersionRecord).where(*where).order_by(ModelVersionRecord.version.desc())
    )


def create_version(
    session: Session,
    catalog_id: str,
    settings: Settings,
    *,
    force: bool = False,
    overrides: dict[str, Any] | None = None,
    start: bool = False,
) -> ModelVersionRecord:
    """Add and commit the catalog's next version, listing the new samples it will train on:
    `queued` (for a worker to take), or with `start` already `training` under this caller's
    lease (attempt 1).

    Raises `NotFound` for an unknown catalog; `VersionBusy` when a version of the catalog is
    queued or training (also when another caller won the race to add one); `NotEnoughSamples`
    with no new samples, and unless `force` below AF_TRAIN_MIN_NEW_SAMPLES of them or when the
    latest version failed and no samples came since (so a failure is not retried on every new
    batch); the errors of `train_config`.
    """
    if session.get(CatalogRecord, catalog_id) is None:
        raise NotFound(
            f"catalog '{catalog_id}' does not exist; list the catalogs with GET /v1/catalogs"
        )
    config = train_config(settings, overrides)
    busy = active_version(session, catalog_id)
    if busy is not None:
        raise _busy(busy)
    new_ids = new_sample_ids(session, catalog_id, settings.train_heldout_fraction)
    wanted = settings.train_min_new_samples
    if not new_ids or (len(new_ids) < wanted and not force):
        raise NotEnoughSamples(
            f"catalog '{catalog_id}' has {len(new_ids)} new accepted samples to train on "
            f"(not held out, not in an earlier version); a run needs {wanted} "
            "(AF_TRAIN_MIN_NEW_SAMPLES)"
            + ("; generate more samples first" if not new_ids else " or force=true")
        )
    latest = _latest(session, catalog_id)
    if (
        not force
        and latest is not None
        and latest.status == ModelVersionStatus.failed
        and len(new_ids) <= latest.new_samples
    ):
        raise NotEnoughSamples(
            f"catalog '{catalog_id}': version {latest.version} failed on these samples "
            f"({latest.error}); fix that and ask again with force=true, or add samples"
        )
    parent = latest_ready(session, catalog_id, config.base_model)
    number = (latest.version if latest is not None else 0) + 1
    now = utcnow()
    version = ModelVersionRecord(
        id=uuid.uuid4().hex,
        catalog_id=catalog_id,
        version=number,
        parent_id=parent.id if parent is not None else None,
        base_model=config.base_model,
        status=ModelVersionStatus.training if start else ModelVersionStatus.queued,
        config={k: v for k, v in config.to_dict().items() if k != "output_dir"},
        new_samples=len(new_ids),
        metrics={},
        attempt=1 if start else 0,
        lease_expires_at=lease_end(settings) if start else None,
        started_at=now if start else None,
        created_at=now,
        updated_at=now,
    )
    try:
        session.add(version)
        session.flush()
        for chunk in chunks(new_ids):
            session.execute(
                insert(ModelVersionSampleRecord),
                [{"version_id": version.id, "sample_id": sample_id} for sample_id in chunk],
            )
        session.commit()
    except IntegrityError:
        session.rollback()
        busy = active_version(session, catalog_id)
        raise (
            _busy(busy)
            if busy
            else VersionBusy(f"catalog '{catalog_id}': another version was added at this moment")
        ) from None
    return version


def _latest(session: Session, catalog_id: str) -> ModelVersionRecord | None:
    return session.scalar(
        select(ModelVersionRecord)
        .where(ModelVersionRecord.catalog_id == catalog_id)
        .order_by(ModelVersionRecord.version.desc())
    )


def _busy(version: ModelVersionRecord) -> VersionBusy:
    return VersionBusy(
        f"catalog '{version.catalog_id}' already has version {version.version} "
        f"({version.id}) {version.status}; wait until it is ready or failed "
        f"(GET /v1/models/{version.id})"
    )


def take_over(session: Session, version: ModelVersionRecord, settings: Settings) -> Claim | None:
    """Claim a queued version, or a training one whose lease has expired; None when another
    worker holds it or took it first. A version already started MAX_ATTEMPTS times is failed
    instead (None)."""
    now = utcnow()
    claimable = or_(
        ModelVersionRecord.status == ModelVersionStatus.queued,
        and_(
            ModelVersionRecord.status == ModelVersionStatus.training,
            ModelVersionRecord.lease_expires_at < now,
        ),
    )
    fence = (ModelVersionRecord.id == version.id, ModelVersionRecord.attempt == version.attempt)
    if version.attempt >= MAX_ATTEMPTS:
        last = f"; the last attempt's error: {version.error}" if version.error else ""
        session.execute(
            update_version()
            .where(*fence, claimable)
            .values(
                status=ModelVersionStatus.failed,
                error=f"started {version.attempt} times without finishing (its workers were "
                f"lost, ran past AF_TRAIN_TIME_LIMIT or kept failing){last}; fix that (raise "
                "AF_TRAIN_TIME_LIMIT, give the workers more memory), then train again",
                finished_at=now,
                lease_expires_at=None,
                updated_at=now,
            )
        )
        session.commit()
        return None
    taken = session.execute(
        update_version()
        .where(*fence, claimable)
        .values(
            status=ModelVersionStatus.training,
            attempt=version.attempt + 1,
            lease_expires_at=lease_end(settings),
            error=None,
            started_at=now,
            updated_at=now,
        )
    )
    session.commit()
    if not taken.rowcount:  # type: ignore[attr-defined]
        return None
    if version.status == ModelVersionStatus.training:
        log.info("taking over version %d of catalog %s", version.version, version.catalog_id)
    return Claim(version.id, version.attempt + 1)


def stale_runs(session: Session) -> list[tuple[str, float]]:
    """(catalog id, seconds until it can be taken over) of every queued or training version:
    what a starting worker re-enqueues, in case the worker or queue that held it was lost."""
    now = utcnow()
    rows = session.execute(
        select(ModelVersionRecord.catalog_id, ModelVersionRecord.lease_expires_at).where(
            ModelVersionRecord.status.in_(ACTIVE_VERSION)
        )
    ).all()
    return [
        (catalog_id, max(0.0, (as_utc(lease) - now).total_seconds()) if lease else 0.0)
        for catalog_id, lease in rows
    ]
