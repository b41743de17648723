"""Continual training in the service: a catalog's model versions, trained on its new accepted
samples, each continuing the last ready version's LoRA adapter, evaluated on held-out samples.

`maybe_train` claims the catalog's next run (`claim_run`) and trains it (`train_claimed`). The
pieces live in their own modules:

- service.training.config: a new version's training settings.
- service.training.data: which samples a version trains on and is evaluated on.
- service.training.versions: creating a catalog's next version and claiming one (one run per
  catalog, taking over a version a dead worker left).
- service.training.lease: the claim and its lease, which fence every write of an attempt.
- service.training.evaluation: the evaluation of a new adapter against the base and the parent.
- service.training.files: the adapters' folders, and moving a new one into place.
- service.training.outcome: storing how an attempt ended (ready, failed, released).

Plain functions over a session factory; the Celery task, the API and the tests call them.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from service.db.engine import Sessions
from service.db.models import ModelVersionRecord
from service.settings import Settings
from service.training.data import TrainingPlan, plan_training
from service.training.evaluation import evaluate_version
from service.training.files import adapter_paths, move_into_place
from service.training.lease import Claim, Lease, LeaseLost
from service.training.outcome import fail_version, read_version, release, store_ready
from service.training.versions import (
    NotEnoughSamples,
    VersionBusy,
    active_version,
    create_version,
    take_over,
)
from unified.errors import ActionForgeError

log = logging.getLogger(__name__)


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


def train_claimed(
    sessions: Sessions, claim: Claim, settings: Settings
) -> ModelVersionRecord | None:
    """Train, evaluate and store the claimed version (see `maybe_train`)."""
    staging: Path | None = None
    try:
        with sessions() as session:
            plan = plan_training(session, claim.version_id, settings)
        final, staging = adapter_paths(settings, plan.version, claim)
        with Lease(sessions, claim, settings) as lease:
            metrics, counts = _train_and_evaluate(plan, staging, final, settings, lease)
            lease.renew_now()  # the rename and the store follow within the lease
            move_into_place(staging, final)
        return store_ready(sessions, claim, final, metrics, counts)
    except LeaseLost:
        log.warning("version %s was taken over by another worker; stopping", claim.version_id)
        return None
    except ActionForgeError as exc:
        log.warning("version %s failed: %s", claim.version_id, exc)
        fail_version(sessions, claim.version_id, str(exc), attempt=claim.attempt)
        return read_version(sessions, claim.version_id)
    except BaseException as exc:
        release(sessions, claim, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def _train_and_evaluate(
    plan: TrainingPlan, staging: Path, final: Path, settings: Settings, lease: Lease
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
    metrics.update(evaluate_version(plan, staging, parent_adapter, settings, lease))
    counts = {
        "new_samples": len(plan.samples),
        "replay_samples": result.replayed,
        "heldout_samples": len(plan.heldout),
        "dropped_too_long": len(result.dropped_too_long),
    }
    return metrics, counts
