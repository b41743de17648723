"""`/v1/models`: a catalog's model versions (LoRA adapters trained on its accepted samples),
their metrics, training requests and adapter downloads."""

from __future__ import annotations

import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select

from service.api.deps import SessionDep, SettingsDep
from service.api.documented_errors import UNREADABLE_BODY, not_found, refused
from service.api.model_schemas import ModelVersionPublic, ModelVersionsPublic, TrainRequest
from service.api.pagination import Limit, Offset
from service.api.schemas import Message
from service.db.models import CatalogRecord, ModelVersionRecord, ModelVersionStatus
from service.errors import NotFound
from service.training.versions import VersionBusy, create_version

router = APIRouter(prefix="/models", tags=["models"])

_NOT_FOUND = not_found("No model version has the id.")
_READ_SIZE = 1 << 20


def get_version(session: SessionDep, version_id: str) -> ModelVersionRecord:
    """The model version named in the path; 404 naming the id when there is none."""
    version = session.get(ModelVersionRecord, version_id)
    if version is None:
        raise NotFound(
            f"model version '{version_id}' does not exist; list the versions with GET /v1/models"
        )
    return version


VersionDep = Annotated[ModelVersionRecord, Depends(get_version)]


@router.get("", responses=not_found("The catalog_id names no catalog."))
def list_versions(
    session: SessionDep,
    catalog_id: Annotated[str | None, Query(description="Only this catalog's versions.")] = None,
    version_status: Annotated[
        ModelVersionStatus | None,
        Query(alias="status", description="Only versions in this status."),
    ] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> ModelVersionsPublic:
    """The model versions with their metrics, newest first."""
    where = []
    if catalog_id is not None:
        if session.get(CatalogRecord, catalog_id) is None:
            raise NotFound(
                f"catalog '{catalog_id}' does not exist; list the catalogs with GET /v1/catalogs"
            )
        where.append(ModelVersionRecord.catalog_id == catalog_id)
    if version_status is not None:
        where.append(ModelVersionRecord.status == version_status)
    count = session.scalar(select(func.count()).select_from(ModelVersionRecord).where(*where)) or 0
    records = session.scalars(
        select(ModelVersionRecord)
        .where(*where)
        .order_by(ModelVersionRecord.created_at.desc(), ModelVersionRecord.version.desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return ModelVersionsPublic(
        data=[ModelVersionPublic.model_validate(record) for record in records], count=count
    )


@router.post(
    "/train",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        **UNREADABLE_BODY,
        **not_found("The catalog does not exist."),
        409: {"model": Message, "description": "A version of the catalog is already training."},
        **refused("Too few new samples (without force), or a bad config override."),
    },
)
def request_training(
    session: SessionDep, settings: SettingsDep, body: TrainRequest, response: Response
) -> ModelVersionPublic:
    """Queue a training run of the catalog's next version on its new accepted samples; a worker
    on the train queue runs it. The version starts `queued`."""
    from service.queue.app import celery_for
    from service.queue.sending import send_training

    try:
        version = create_version(
            session, body.catalog_id, settings, force=body.force, overrides=body.config
        )
    except VersionBusy as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    send_training(celery_for(settings), version.catalog_id)
    response.headers["Location"] = f"/v1/models/{version.id}"
    return ModelVersionPublic.model_validate(version)


@router.get("/{version_id}", responses=_NOT_FOUND)
def read_version(version: VersionDep) -> ModelVersionPublic:
    """A model version: status, sample counts, training and evaluation metrics."""
    return ModelVersionPublic.model_validate(version)


@router.get(
    "/{version_id}/download",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/gzip": {}},
            "description": "The adapter folder as a .tar.gz (one top folder, <catalog>-v<n>).",
        },
        **not_found("No model version has the id, or its adapter is not on this machine."),
        409: {"model": Message, "description": "The version is not ready."},
    },
)
def download_version(version: VersionDep) -> StreamingResponse:
    """Stream the version's adapter folder (adapter weights, adapter_config.json and
    train_metrics.json) as a gzip-compressed tar archive."""
    if version.status != ModelVersionStatus.ready or not version.adapter_path:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"model version {version.version} of catalog '{version.catalog_id}' is "
            f"{version.status}, not ready; download it once GET /v1/models/{version.id} "
            "says ready",
        )
    folder = Path(version.adapter_path)
    if not folder.is_dir():
        raise NotFound(
            f"the adapter folder {folder} of model version {version.id} is not on the API's "
            "machine; the API and the train workers must share AF_DATA_DIR"
        )
    name = f"{version.catalog_id}-v{version.version}"
    return StreamingResponse(
        tar_gz(folder, name),
        media_type="application/gzip",
        headers={"Content-Disposition": f'attachment; filename="{name}.tar.gz"'},
    )


def tar_gz(folder: Path, top: str) -> Iterator[bytes]:
    """The files under `folder` as a gzip-compressed tar stream, under the folder name `top`,
    read and compressed a piece at a time (an adapter may be gigabytes)."""
    return (chunk for chunk in _tar_gz_pieces(folder, top) if chunk)


def _tar_gz_pieces(folder: Path, top: str) -> Iterator[bytes]:
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip framing
    for path in files:
        info = tarfile.TarInfo(f"{top}/{path.relative_to(folder).as_posix()}")
        stat = path.stat()
        info.size, info.mtime, info.mode = stat.st_size, int(stat.st_mtime), 0o644
        yield compressor.compress(info.tobuf(format=tarfile.PAX_FORMAT))
        with path.open("rb") as source:
            while piece := source.read(_READ_SIZE):
                yield compressor.compress(piece)
        yield compressor.compress(bytes(-stat.st_size % tarfile.BLOCKSIZE))
    yield compressor.compress(bytes(2 * tarfile.BLOCKSIZE))  # the end-of-archive marker
    yield compressor.flush()
