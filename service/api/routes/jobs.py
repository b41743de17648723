"""`/v1/jobs`: submit a job, follow it, list jobs, cancel one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from sqlalchemy import func, select

from service.api.deps import JobDep, SessionDep, SettingsDep
from service.api.documented_errors import UNREADABLE_BODY, not_found, refused
from service.api.pagination import Limit, Offset
from service.api.schemas import JobPublic, JobsPublic
from service.db.models import JobRecord, JobStatus
from service.pipeline.lifecycle import cancel_job
from service.pipeline.spec import JobCreate, JobSpec
from service.pipeline.submit import create_job
from service.queue.dispatch import enqueue_job

router = APIRouter(prefix="/jobs", tags=["jobs"])

_NOT_FOUND = not_found("No job has the id.")


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        **UNREADABLE_BODY,
        **not_found("The catalog does not exist."),
        **refused("The spec is not valid; the detail says why."),
    },
)
def submit_job(
    session: SessionDep, settings: SettingsDep, job_in: JobCreate, response: Response
) -> JobPublic:
    """Queue a job that generates and verifies `n` samples from a stored catalog's tools."""
    spec = JobSpec.model_validate(job_in.model_dump(exclude={"catalog_id"}))
    job = create_job(session, job_in.catalog_id, spec, settings)
    session.commit()
    enqueue_job(job.id, settings)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return JobPublic.model_validate(job)


@router.get("")
def list_jobs(
    session: SessionDep,
    job_status: Annotated[
        JobStatus | None, Query(alias="status", description="Only jobs in this status.")
    ] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> JobsPublic:
    """The jobs, newest first."""
    where = [JobRecord.status == job_status] if job_status is not None else []
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
