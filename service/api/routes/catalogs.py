"""`/v1/catalogs`: upload a catalog document, read the stored catalogs and their tools."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from service.api.catalog_records import catalog_record
from service.api.catalog_upload import CatalogUpload, read_catalog_upload
from service.api.deps import SessionDep, SessionsDep, SettingsDep
from service.api.documented_errors import Responses, not_found, refused
from service.api.idempotency import IdempotencyKey, remember, replay, request_digest
from service.api.pagination import Limit, Offset
from service.api.schemas import CatalogPublic, CatalogsPublic, CatalogUploaded, Message
from service.db.models import CatalogRecord
from service.errors import NotFound
from service.settings import Settings

router = APIRouter(prefix="/catalogs", tags=["catalogs"])
ROUTE = "POST /v1/catalogs"


_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The catalog: an OpenAPI 3.x / Swagger 2.0 document, a JSON list of "
        "function schemas (OpenAI, xLAM or BFCL style) or a Python module.",
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {
                            "type": "object",
                            "required": ["content"],
                            "properties": {
                                "name": {"type": "string"},
                                "content": {"type": "string"},
                                "kind": {"type": "string"},
                            },
                            "additionalProperties": False,
                        },
                        {"description": "The catalog document itself."},
                    ]
                }
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "kind": {"type": "string"},
                    },
                }
            },
            "application/yaml": {"schema": {"type": "string"}},
            "text/x-python": {"schema": {"type": "string"}},
        },
    }
}

_ERRORS: Responses = {
    413: {"model": Message, "description": "The catalog is over AF_MAX_CATALOG_BYTES."},
    **refused(
        "The catalog cannot be loaded (the detail says where), its name or a parameter is not "
        "valid, or the Idempotency-Key came with another request."
    ),
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CatalogUploaded,
    openapi_extra=_UPLOAD_BODY,
    responses=_ERRORS,
)
async def upload_catalog(
    request: Request,
    sessions: SessionsDep,
    settings: SettingsDep,
    name: Annotated[
        str | None, Query(description="Document name for a raw body (its suffix helps).")
    ] = None,
    kind: Annotated[
        str | None, Query(description="Catalog kind; detected from the content when omitted.")
    ] = None,
    idempotency_key: IdempotencyKey = None,
) -> CatalogUploaded | JSONResponse:
    """Load a catalog document into normalised tools and store it. With an `Idempotency-Key`,
    a retry gets the first answer (the same catalog, with its warnings) and stores nothing."""
    upload = await read_catalog_upload(request, settings.max_catalog_bytes, name, kind)
    return await run_in_threadpool(_store, sessions, upload, settings, idempotency_key)


def _store(
    sessions: sessionmaker[Session], upload: CatalogUpload, settings: Settings, key: str | None
) -> CatalogUploaded | JSONResponse:
    digest = request_digest(upload.raw, upload.name, upload.kind)
    kept_hours = settings.idempotency_key_hours
    if key is not None:
        with sessions() as session:
            first = replay(session, ROUTE, key, digest, kept_hours)
            session.commit()  # an answer past its time is forgotten for good
        if first is not None:
            return first
    record, catalog = catalog_record(
        upload.raw, upload.name, upload.kind, settings.max_catalog_bytes
    )
    with sessions() as session:
        session.add(record)
        session.flush()
        stored = CatalogPublic.model_validate(record)
        uploaded = CatalogUploaded(**dict(stored), warnings=catalog.warnings)
        if key is not None:
            answer = uploaded.model_dump(mode="json", by_alias=True)
            remember(session, ROUTE, key, digest, 201, answer)
        try:
            session.commit()
        except IntegrityError:  # the same key's first request committed meanwhile
            session.rollback()
            first = replay(session, ROUTE, key, digest, kept_hours) if key is not None else None
            if first is None:
                raise
            return first
    return uploaded


@router.get("")
def list_catalogs(
    session: SessionDep,
    limit: Limit = 100,
    offset: Offset = 0,
) -> CatalogsPublic:
    """The stored catalogs, newest first."""
    count = session.scalar(select(func.count()).select_from(CatalogRecord)) or 0
    records = session.scalars(
        select(CatalogRecord)
        .order_by(CatalogRecord.created_at.desc(), CatalogRecord.id)
        .offset(offset)
        .limit(limit)
    ).all()
    return CatalogsPublic(data=[CatalogPublic.model_validate(r) for r in records], count=count)


@router.get("/{catalog_id}", responses=not_found("No catalog has the id."))
def read_catalog(session: SessionDep, catalog_id: str) -> CatalogPublic:
    """One stored catalog with its tools."""
    record = session.get(CatalogRecord, catalog_id)
    if record is None:
        raise NotFound(
            f"catalog '{catalog_id}' does not exist; upload it with POST /v1/catalogs "
            "or list the stored ones with GET /v1/catalogs"
        )
    return CatalogPublic.model_validate(record)
