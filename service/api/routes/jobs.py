"""`/v1/jobs`: submit a job, follow it, list jobs, cancel one."""

from __future__ import annotations

import json
import logging
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError

from service.api.deps import JobDep, SessionDep, SettingsDep
from service.api.documented_errors import UNREADABLE_BODY, not_found, refused
from service.api.idempotency import IdempotencyKey, remember, replay, request_digest
from service.api.pagination import Limit, Offset
from service.api.schemas import JobPublic, JobsPublic
from service.db.models import CatalogRecord, JobRecord, JobStatus
from service.errors import NotFound
from service.pipeline.lifecycle import cancel_job
from service.pipeline.spec import JobCreate, JobSpec
from service.pipeline.submit import create_job
from service.queue.dispatch import enqueue_job

router = APIRouter(prefix="/jobs", tags=["jobs"])
log = logging.getLogger(__name__)
ROUTE = "POST /v1/jobs"

_NOT_FOUND = not_found("No job has the id.")


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobPublic,
    responses={
        **UNREADABLE_BODY,
        **not_found("The catalog does not exist."),
        **refused(
            "The spec is not valid, or the Idempotency-Key came with another request; the "
            "detail says why."
        ),
    },
)
def submit_job(
    session: SessionDep,
    settings: SettingsDep,
    job_in: JobCreate,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobPublic | JSONResponse:
    """Queue a job that generates and verifies `n` samples from a stored catalog's tools.

    The job is stored before its batches are sent: while the broker is away the answer is
    still 202 and the job waits `queued` until a worker's sweep sends its batches. With an
    `Idempotency-Key`, a retry gets the first answer (the same job) and stores nothing."""
    digest = request_digest(json.dumps(job_in.model_dump(mode="json"), sort_keys=True))
    if idempotency_key is not None:
        first = replay(session, ROUTE, idempotency_key, digest, settings.idempotency_key_hours)
        if first is not None:
            return first
    spec = JobSpec.model_validate(job_in.model_dump(exclude={"catalog_id"}))
    job = create_job(session, job_in.catalog_id, spec, settings)
    location = f"/v1/jobs/{job.id}"
    public = JobPublic.model_validate(job)
    if idempotency_key is not None:
        body = public.model_dump(mode="json", by_alias=True)
        remember(session, ROUTE, idempotency_key, digest, 202, body, location)
    try:
        session.commit()
    except IntegrityError:  # the same key's first request committed meanwhile
        session.rollback()
        if idempotency_key is None:
            raise
        first = replay(session, ROUTE, idempotency_key, digest, settings.idempotency_key_hours)
        if first is None:
            raise
        return first
    try:
        enqueue_job(job.id, settings)
    except Exception as exc:  # the broker is away: the sweep sends the batches once it is back
        log.warning("job %s stored but not sent (%s); left to the sweep", job.id, exc)
    response.headers["Location"] = location
    return public


@router.get("", responses=not_found("The catalog_id names no catalog."))
def list_jobs(
    session: SessionDep,
    job_status: Annotated[
        JobStatus | None, Query(alias="status", description="Only jobs in this status.")
    ] = None,
    catalog_id: Annotated[
        str | None, Query(description="Only the jobs made from this catalog.")
    ] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> JobsPublic:
    """The jobs, newest first."""
    where: list[ColumnElement[bool]] = []
    if job_status is not None:
        where.append(JobRecord.status == job_status)
    if catalog_id is not None:
        if session.get(CatalogRecord, catalog_id) is None:
            raise NotFound(
                f"catalog '{catalog_id}' does not exist; list the catalogs with GET /v1/catalogs"
            )
        where.append(JobRecord.catalog_id == catalog_id)
    count = session.scalar(select(func.count()).select_from(JobRecord).where(*where)) or 0
    records = session.scalars(
        select(JobRecord)
        .where(*where)
        .order_by(JobRecord.created_at.desc(), JobRecord.id.desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return JobsPublic(data=[JobPublic.model_validate(r) for r in records], count=count)


@router.get("/{job_id}", responses=_NOT_FOUND)
def read_job(job: JobDep) -> JobPublic:
    """A job: status, error, the counts of its funnel, its spec and timestamps."""
    return JobPublic.model_validate(job)


@router.post(
    "/{job_id}/cancel",
    responses={**_NOT_FOUND, **refused("The job has finished: there is nothing to cancel.")},
)
def cancel(session: SessionDep, job: JobDep) -> JobPublic:
    """Stop a job: no new batch starts; batches already running finish."""
    cancelled = cancel_job(session, job.id)
    session.commit()
    return JobPublic.model_validate(cancelled)
