"""Which samples a catalog's model version trains on and is evaluated on.

- Held-out split (service.training.heldout): a sample is held out when a hash of its id falls
  in the lowest AF_TRAIN_HELDOUT_FRACTION of the hash range. It depends on nothing but the id,
  so it stays put as data grows; held-out samples are never trained on and evaluate every version.
- New samples: accepted, not held out, and listed by no queued, training or ready version of the
  catalog (`model_version_samples`). A version lists the new samples it trains on when it is
  created; a failed version's samples count as new again.
- Replay: a version also trains on `replay_ratio` samples per new one, drawn from what its
  ancestors trained on.

`plan_training` reads all of it for a claimed version, before the slow part.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from service.db.models import (
    JobRecord,
    ModelVersionRecord,
    ModelVersionSampleRecord,
    ModelVersionStatus,
    SampleRecord,
    SampleStatus,
)
from service.errors import NotFound
from service.settings import Settings
from service.training.heldout import split_heldout
from unified.model import Sample

if TYPE_CHECKING:
    from trainer.config import TrainConfig


_CHUNK = 500  # ids per IN (...) list


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


@dataclass
class TrainingPlan:
    """What a claimed version trains on and is compared with, read before the slow part."""

    version: ModelVersionRecord
    config: TrainConfig
    samples: list[Sample]
    replay: list[Sample]
    heldout: list[Sample]
    heldout_digest: str
    parent: ModelVersionRecord | None
    cached_base: dict[str, Any] | None


def plan_training(session: Session, version_id: str, settings: Settings) -> TrainingPlan:
    """The version's samples, its replay samples, the held-out samples it is evaluated on and
    its parent; `NotFound` when the version does not exist."""
    from trainer.config import build_config

    version = session.get(ModelVersionRecord, version_id)
    if version is None:
        raise NotFound(f"model version '{version_id}' does not exist")
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
    return TrainingPlan(
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
    for chunk in chunks(sample_ids):
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


def chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    """`values` in slices short enough for one IN (...) list."""
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]
