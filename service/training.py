"""Continual training in the service: a catalog's model versions, trained on its new accepted
samples, each continuing the last ready version's LoRA adapter, evaluated on held-out samples.

- Held-out split (service.heldout): a sample is held out when a hash of its id falls in the lowest
  AF_TRAIN_HELDOUT_FRACTION of the hash range. It depends on nothing but the id, so it stays put
  as data grows; held-out samples are never trained on and evaluate every version.
- New samples: accepted, not held out, and listed by no queued, training or ready version of the
  catalog (`model_version_samples`). A version lists the new samples it trains on when it is
  created; a failed version's samples count as new again.
- One run per catalog: a partial unique index allows one queued or training version per
  catalog, so of two workers claiming the same catalog, one insert fails and that worker
  stops. The trainer renews the version's lease from a background thread; a version whose lease
  has expired (its worker died) is taken over by the next `maybe_train`, which raises the
  version's `attempt` so the old worker, should it still run, can store nothing.
- Files: the adapter is written to a temporary folder under the data directory and renamed to
  `models/<catalog>/v<version>` only when trained and evaluated, so a crash leaves every ready
  version's files as they were.

Plain functions over a session factory; the Celery task, the API and the tests call them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import shutil
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import (
    ACTIVE_VERSION,
    CatalogRecord,
    JobRecord,
    ModelVersionRecord,
    ModelVersionSampleRecord,
    ModelVersionStatus,
    SampleRecord,
    SampleStatus,
    utcnow,
)
from service.errors import InvalidRequest, NotFound
from service.heldout import split_heldout
from service.settings import Settings
from unified.errors import ActionForgeError
from unified.model import Sample

if TYPE_CHECKING:
    from trainer.config import TrainConfig
    from trainer.evaluate import EvalReport

log = logging.getLogger(__name__)

Sessions = sessionmaker[Session]

# A version started this many times without finishing (workers lost, time limit) fails.
MAX_ATTEMPTS = 3
# Settings the service decides itself; a request may not override them.
SERVICE_OWNED = {
    "output_dir": "the service writes each version's adapter under AF_DATA_DIR",
    "eval_fraction": "the service holds out samples itself (AF_TRAIN_HELDOUT_FRACTION)",
}
_CHUNK = 500  # ids per IN (...) list


class VersionBusy(ActionForgeError):
    """A version of the catalog is already queued or training."""


class NotEnoughSamples(InvalidRequest):
    """The catalog has fewer new accepted samples than a training run needs."""


class LeaseLost(Exception):
    """Another worker took the version over; this one must store nothing (not an error of
    the input, so not an `ActionForgeError`)."""


def _claimed_by_a_version() -> Any:
    """The sample is listed by a queued, training or ready version."""
    return exists(
        select(ModelVersionSampleRecord.sample_id)
        .join(ModelVersionRecord, ModelVersionRecord.id == ModelVersionSampleRecord.version_id)
        .where(
            ModelVersionSampleRecord.sample_id == SampleRecord.id,
            ModelVersionRecord.status != ModelVersionStatus.failed,
        )
    )


def untrained_ids(session: Session, catalog_id: str) -> list[str]:
    """Ids of the catalog's accepted samples no queued, training or ready version lists, oldest
    first (held-out ones included)."""
    return list(
        session.scalars(
            select(SampleRecord.id)
            .join(JobRecord, JobRecord.id == SampleRecord.job_id)
            .where(
                JobRecord.catalog_id == catalog_id,
                SampleRecord.status == SampleStatus.accepted,
                ~_claimed_by_a_version(),
            )
            .order_by(SampleRecord.created_at, SampleRecord.id)
        )
    )


def new_sample_ids(session: Session, catalog_id: str, fraction: float) -> list[str]:
    """Ids of the catalog's samples the next version would train on: accepted, not held out,
    listed by no queued, training or ready version; oldest first."""
    return split_heldout(untrained_ids(session, catalog_id), fraction)[0]


def eval_sample_ids(session: Session, catalog_id: str, fraction: float, limit: int) -> list[str]:
    """The held-out samples every version of the catalog is evaluated on: the `limit` oldest
    held-out accepted samples (so the set stops changing once the catalog has that many), never
    one a version trained on (should the fraction have changed)."""
    heldout = split_heldout(untrained_ids(session, catalog_id), fraction)[1]
    return heldout[:limit]


def ids_digest(sample_ids: Sequence[str]) -> str:
    """Fingerprint of an evaluation set: equal digests, the same samples."""
    return hashlib.sha256("\n".join(sample_ids).encode()).hexdigest()


# --- configuration -------------------------------------------------------------------------


def train_config(settings: Settings, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The training settings of a new version: AF_TRAIN_CONFIG's file (or the defaults), its
    base model replaced by AF_TRAIN_BASE_MODEL when set, then `overrides` (a request's).

    Raises `InvalidRequest` for an override of what the service decides (output_dir,
    eval_fraction) or when no base model is set, `ConfigError` for an unknown key or bad value.
    """
    from trainer.config import TrainConfig, load_config

    overrides = dict(overrides or {})
    for key, why in SERVICE_OWNED.items():
        if key in overrides:
            raise InvalidRequest(f"config: '{key}' cannot be set per run ({why}); remove it")
    config = TrainConfig()
    if settings.train_config is not None:
        if not settings.train_config.is_file():
            raise InvalidRequest(
                f"AF_TRAIN_CONFIG: {settings.train_config} is not a file; point it at a YAML "
                "or JSON file of training settings, or unset it"
            )
        config = load_config(settings.train_config)
    if settings.train_base_model:
        config = config.with_overrides(base_model=settings.train_base_model)
    config = config.with_overrides(**overrides, eval_fraction=0.0)
    if not config.base_model:
        raise InvalidRequest(
            "no base model to train: set AF_TRAIN_BASE_MODEL to a model folder (or put "
            "base_model in the AF_TRAIN_CONFIG file)"
        )
    return config


# --- claiming a catalog --------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """The right to train a version: valid while the version's `attempt` is still this one."""

    version_id: str
    attempt: int


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
    failed = _latest(session, catalog_id)
    if (
        not force
        and failed is not None
        and failed.status == ModelVersionStatus.failed
        and len(new_ids) <= failed.new_samples
    ):
        raise NotEnoughSamples(
            f"catalog '{catalog_id}': version {failed.version} failed on these samples "
            f"({failed.error}); fix that and ask again with force=true, or add samples"
        )
    parent = latest_ready(session, catalog_id, config.base_model)
    number = (
        session.scalar(
            select(func.max(ModelVersionRecord.version)).where(
                ModelVersionRecord.catalog_id == catalog_id
            )
        )
        or 0
    ) + 1
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
        lease_expires_at=_lease_end(settings) if start else None,
        started_at=now if start else None,
        created_at=now,
        updated_at=now,
    )
    try:
        session.add(version)
        session.flush()
        for chunk in _chunks(new_ids):
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
            _update_version()
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
        _update_version()
        .where(*fence, claimable)
        .values(
            status=ModelVersionStatus.training,
            attempt=version.attempt + 1,
            lease_expires_at=_lease_end(settings),
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


def claim_run(
    sessions: Sessions,
    catalog_id: str,
    settings: Settings,
    *,
    force: bool = False,
    overrides: dict[str, Any] | None = None,
) -> Claim | None:
    """Claim the catalog's next training run: its queued version, its version a dead worker
    left training, or a new version when there are enough new samples (or `force`). None when
    there is nothing to do or another worker holds the catalog."""
    with sessions() as session:
        version = active_version(session, catalog_id)
        if version is not None:
            return take_over(session, version, settings)
        try:
            created = create_version(
                session, catalog_id, settings, force=force, overrides=overrides, start=True
            )
        except (VersionBusy, NotEnoughSamples) as exc:
            log.info("no training run: %s", exc)
            return None
        return Claim(created.id, created.attempt)


# --- training a claimed version ------------------------------------------------------------


def maybe_train(
    sessions: Sessions,
    catalog_id: str,
    settings: Settings,
    *,
    force: bool = False,
    overrides: dict[str, Any] | None = None,
) -> ModelVersionRecord | None:
    """Train the catalog's next version when there is one to train (see `claim_run`); the
    version as it ended (ready, or failed with the reason of an `ActionForgeError`), or None
    when nothing was trained.

    Any other exception releases the version's lease (so a retry takes it over at once) and
    propagates.
    """
    claim = claim_run(sessions, catalog_id, settings, force=force, overrides=overrides)
    if claim is None:
        return None
    return train_claimed(sessions, claim, settings)


@dataclass
class _Plan:
    """What a claimed version trains on and is compared with, read before the slow part."""

    version: ModelVersionRecord
    config: TrainConfig
    samples: list[Sample]
    replay: list[Sample]
    heldout: list[Sample]
    heldout_digest: str
    parent: ModelVersionRecord | None
    cached_base: dict[str, Any] | None


def train_claimed(
    sessions: Sessions, claim: Claim, settings: Settings
) -> ModelVersionRecord | None:
    """Train, evaluate and store the claimed version (see `maybe_train`)."""
    staging: Path | None = None
    try:
        with sessions() as session:
            plan = _plan(session, claim, settings)
        final, staging = _adapter_paths(settings, plan.version, claim)
        with _Lease(sessions, claim, settings) as lease:
            metrics, counts = _train_and_evaluate(plan, staging, final, settings, lease)
            lease.renew_now()  # the rename and the store follow within the lease
            _move_into_place(staging, final)
        return _store_ready(sessions, claim, final, metrics, counts)
    except LeaseLost:
        log.warning("version %s was taken over by another worker; stopping", claim.version_id)
        return None
    except ActionForgeError as exc:
        log.warning("version %s failed: %s", claim.version_id, exc)
        fail_version(sessions, claim.version_id, str(exc), attempt=claim.attempt)
        return _read(sessions, claim.version_id)
    except BaseException as exc:
        _release(sessions, claim, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def _plan(session: Session, claim: Claim, settings: Settings) -> _Plan:
    from trainer.config import build_config

    version = session.get(ModelVersionRecord, claim.version_id)
    if version is None:
        raise NotFound(f"model version '{claim.version_id}' does not exist")
    config = build_config(version.config, where=f"version {version.version}'s config")
    samples = _load_samples(
        session,
        session.scalars(
            select(ModelVersionSampleRecord.sample_id)
            .where(ModelVersionSampleRecord.version_id == version.id)
            .order_by(ModelVersionSampleRecord.sample_id)
        ).all(),
    )
    parent = session.get(ModelVersionRecord, version.parent_id) if version.parent_id else None
    replay = _load_samples(session, _replay_ids(session, version, parent, config, len(samples)))
    heldout_ids = eval_sample_ids(
        session, version.catalog_id, settings.train_heldout_fraction, settings.train_eval_samples
    )
    digest = ids_digest(heldout_ids)
    return _Plan(
        version=version,
        config=config,
        samples=samples,
        replay=replay,
        heldout=_load_samples(session, heldout_ids),
        heldout_digest=digest,
        parent=parent,
        cached_base=_cached_base_report(session, version, digest),
    )


def _replay_ids(
    session: Session,
    version: ModelVersionRecord,
    parent: ModelVersionRecord | None,
    config: TrainConfig,
    new: int,
) -> list[str]:
    """`config.replay_ratio` samples per new one, drawn from what the ancestors trained on;
    the same draw every time this version is (re)trained."""
    ancestors: list[str] = []
    while parent is not None:
        ancestors.append(parent.id)
        parent = session.get(ModelVersionRecord, parent.parent_id) if parent.parent_id else None
    wanted = round(config.replay_ratio * new)
    if not ancestors or wanted <= 0:
        return []
    pool = list(
        session.scalars(
            select(ModelVersionSampleRecord.sample_id)
            .join(SampleRecord, SampleRecord.id == ModelVersionSampleRecord.sample_id)
            .where(
                ModelVersionSampleRecord.version_id.in_(ancestors),
                SampleRecord.status == SampleStatus.accepted,
            )
            .order_by(ModelVersionSampleRecord.sample_id)
        )
    )
    return random.Random(f"replay:{version.id}").sample(pool, min(wanted, len(pool)))


def _load_samples(session: Session, sample_ids: Sequence[str]) -> list[Sample]:
    """The samples with these ids, in this order."""
    found: dict[str, Sample] = {}
    for chunk in _chunks(sample_ids):
        for sample_id, data in session.execute(
            select(SampleRecord.id, SampleRecord.data).where(SampleRecord.id.in_(chunk))
        ):
            found[sample_id] = Sample.model_validate(data)
    return [found[sample_id] for sample_id in sample_ids if sample_id in found]


def _cached_base_report(
    session: Session, version: ModelVersionRecord, digest: str
) -> dict[str, Any] | None:
    """The base model's report on this evaluation set from an earlier version of the catalog."""
    earlier = session.scalars(
        select(ModelVersionRecord.metrics)
        .where(
            ModelVersionRecord.catalog_id == version.catalog_id,
            ModelVersionRecord.base_model == version.base_model,
            ModelVersionRecord.status == ModelVersionStatus.ready,
        )
        .order_by(ModelVersionRecord.version.desc())
    )
    for metrics in earlier:
        base = (metrics or {}).get("base")
        if isinstance(base, dict) and base.get("heldout_digest") == digest:
            return base
    return None


def _train_and_evaluate(
    plan: _Plan, staging: Path, final: Path, settings: Settings, lease: _Lease
) -> tuple[dict[str, Any], dict[str, int]]:
    from trainer.train import train

    parent_adapter = None
    if plan.parent is not None and plan.parent.adapter_path:
        parent_adapter = Path(plan.parent.adapter_path)
    config = plan.config.with_overrides(output_dir=str(staging))
    result = train(config, plan.samples, parent_adapter, replay=plan.replay, progress=lease.check)
    lease.check()
    trained = result.to_dict()
    trained["output_dir"] = str(final)
    metrics: dict[str, Any] = {
        "train": trained,
        "heldout": {"samples": len(plan.heldout), "digest": plan.heldout_digest},
        "eval": None,
        "base": None,
        "parent": None,
        "compare": {"parent": None, "base": None},
    }
    metrics.update(_evaluations(plan, staging, parent_adapter, settings, lease))
    counts = {
        "new_samples": len(plan.samples),
        "replay_samples": result.replayed,
        "heldout_samples": len(plan.heldout),
        "dropped_too_long": len(result.dropped_too_long),
    }
    return metrics, counts


def _evaluations(
    plan: _Plan, adapter: Path, parent_adapter: Path | None, settings: Settings, lease: _Lease
) -> dict[str, Any]:
    """The new adapter's report on the held-out samples, the base model's (cached per
    evaluation set) and the parent's (its own when made on the same set), and the deltas."""
    from trainer.evaluate import EvalReport

    if not plan.heldout:
        return {}

    def run(adapter_dir: Path | None) -> EvalReport:
        from trainer.evaluate import evaluate

        return evaluate(
            plan.version.base_model,
            plan.heldout,
            adapter_dir,
            max_new_tokens=settings.train_eval_max_new_tokens,
            progress=lease.check,
        ).report

    report = run(adapter)
    if plan.cached_base is not None:
        base = plan.cached_base
    else:
        base = {
            "heldout_digest": plan.heldout_digest,
            "report": run(None).to_dict(),
            "evaluated_by": plan.version.id,
        }
    base_report = EvalReport.from_dict(base["report"])
    found: dict[str, Any] = {
        "eval": report.to_dict(),
        "base": base,
        "compare": {"base": _deltas(base_report, report), "parent": None},
    }
    if plan.parent is not None and parent_adapter is not None:
        before = plan.parent.metrics.get("eval") if plan.parent.metrics else None
        same_set = (plan.parent.metrics.get("heldout") or {}).get("digest") == plan.heldout_digest
        parent_report = EvalReport.from_dict(before) if before and same_set else run(parent_adapter)
        found["parent"] = {
            "version_id": plan.parent.id,
            "version": plan.parent.version,
            "report": parent_report.to_dict(),
        }
        found["compare"]["parent"] = _deltas(parent_report, report)
    lease.check()
    return found


def _deltas(before: EvalReport, after: EvalReport) -> list[dict[str, Any]]:
    from trainer.evaluate import compare

    return [
        {
            "group": delta.group,
            "metric": delta.metric,
            "before": delta.before,
            "after": delta.after,
            "change": delta.change,
        }
        for delta in compare(before, after)
    ]


# --- files ---------------------------------------------------------------------------------


def models_dir(settings: Settings, catalog_id: str) -> Path:
    """Where a catalog's adapters live: AF_DATA_DIR/models/<catalog id>."""
    return settings.data_dir.resolve() / "models" / catalog_id


def _adapter_paths(
    settings: Settings, version: ModelVersionRecord, claim: Claim
) -> tuple[Path, Path]:
    """(the version's folder, a staging folder of this attempt); removes the staging folders of
    earlier attempts of this version (left by workers that died)."""
    folder = models_dir(settings, version.catalog_id)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"v{version.version}"
    for stale in folder.glob(f".{name}-*.partial"):
        shutil.rmtree(stale, ignore_errors=True)
    return folder / name, folder / f".{name}-attempt{claim.attempt}-{os.getpid()}.partial"


def _move_into_place(staging: Path, final: Path) -> None:
    # A folder at `final` can only be this version's, left by an attempt that died between the
    # rename and the store: it was never ready, and this attempt holds the lease.
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)


# --- storing the outcome -------------------------------------------------------------------


def _fence(claim: Claim) -> tuple[Any, ...]:
    return (
        ModelVersionRecord.id == claim.version_id,
        ModelVersionRecord.attempt == claim.attempt,
        ModelVersionRecord.status == ModelVersionStatus.training,
    )


def _store_ready(
    sessions: Sessions,
    claim: Claim,
    final: Path,
    metrics: dict[str, Any],
    counts: dict[str, int],
) -> ModelVersionRecord | None:
    now = utcnow()
    with sessions() as session:
        stored = session.execute(
            _update_version()
            .where(*_fence(claim))
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
    return _read(sessions, claim.version_id)


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
            _update_version()
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
        expired = version.lease_expires_at is None or _aware(version.lease_expires_at) <= utcnow()
        if not expired:
            return False
    return fail_version(sessions, version.id, error, attempt=version.attempt)


def _release(sessions: Sessions, claim: Claim, error: str) -> None:
    """Let the next `maybe_train` take the version over at once (this attempt gave up on
    `error`, kept in case no attempt finishes)."""
    try:
        with sessions() as session:
            session.execute(
                _update_version()
                .where(*_fence(claim))
                .values(lease_expires_at=utcnow(), error=error, updated_at=utcnow())
            )
            session.commit()
    except OperationalError:  # the lease then expires by itself
        log.exception("could not release version %s", claim.version_id)


def _read(sessions: Sessions, version_id: str) -> ModelVersionRecord | None:
    with sessions() as session:
        return session.get(ModelVersionRecord, version_id)


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
        (catalog_id, max(0.0, (_aware(lease) - now).total_seconds()) if lease else 0.0)
        for catalog_id, lease in rows
    ]


# --- the lease -----------------------------------------------------------------------------


def _update_version() -> Any:
    # No in-session evaluation of the WHERE clause: SQLite hands back naive datetimes, and
    # every caller reads the version again from a new session anyway.
    return update(ModelVersionRecord).execution_options(synchronize_session=False)


def _lease_end(settings: Settings) -> datetime:
    return utcnow() + timedelta(seconds=settings.train_lease_seconds)


def _aware(moment: datetime) -> datetime:
    """SQLite gives back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class _Lease:
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

    def __enter__(self) -> _Lease:
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
                _update_version()
                .where(*_fence(self._claim))
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


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]
