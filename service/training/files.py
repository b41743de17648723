"""Where a catalog's adapters live on disk.

The adapter is written to a staging folder next to the version's and renamed to
`AF_DATA_DIR/models/<catalog>/v<version>` only when trained and evaluated, so a crash leaves every
ready version's files as they were.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from service.db.models import ModelVersionRecord
from service.settings import Settings
from service.training.lease import Claim


def models_dir(settings: Settings, catalog_id: str) -> Path:
    """Where a catalog's adapters live: AF_DATA_DIR/models/<catalog id>."""
    return settings.data_dir.resolve() / "models" / catalog_id


def adapter_paths(
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


def move_into_place(staging: Path, final: Path) -> None:
    # A folder at `final` can only be this version's, left by an attempt that died between the
    # rename and the store: it was never ready, and this attempt holds the lease.
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)
