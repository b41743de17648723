"""The jobs list (`/`) and a job's page (`/jobs/{id}`): funnel, rejections by stage and reason,
the rejected samples beside accepted ones of the same style, spec, judge calibration, LLM usage.

Jobs and samples are read with the REST routes' own functions, so a page shows what the API
answers."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session

from service.api.deps import JobDep, SessionDep
from service.api.pagination import Offset
from service.api.routes.jobs import list_jobs
from service.api.routes.samples import SampleFilters, first_sample, sample_page
from service.api.schemas import JobProgress, SamplePublic
from service.dashboard.catalog_pages import catalog_names
from service.dashboard.charts import funnel_bars
from service.dashboard.rendering import PageRoute, render
from service.db.models import JobRecord, JobStatus, SampleStatus
from service.errors import InvalidRequest
from unified.model import QueryStyle

router = APIRouter(route_class=PageRoute, include_in_schema=False)

JOBS_PER_PAGE = 50
SAMPLES_PER_PAGE = 20

Shown = Literal["rejected", "accepted", "generated", "all"]


@router.get("/")
def jobs_page(
    request: Request,
    session: SessionDep,
    job_status: Annotated[str | None, Query(alias="status")] = None,
    offset: Offset = 0,
) -> Response:
    """The jobs, newest first, with their progress; running ones follow their event stream."""
    chosen = _choice("status", job_status, JobStatus)
    page = list_jobs(
        session,
        job_status=None if chosen is None else JobStatus(chosen),
        catalog_id=None,
        limit=JOBS_PER_PAGE,
        offset=offset,
    )
    jobs = [JobProgress.model_validate(job.model_dump()) for job in page.data]
    context = {
        "jobs": jobs,
        "count": page.count,
        "offset": offset,
        "per_page": JOBS_PER_PAGE,
        "status": chosen,
        "statuses": [s.value for s in JobStatus],
        "catalog_names": catalog_names(session, {job.catalog_id for job in jobs}),
    }
    return render(request, "jobs.html", context)


@router.get("/jobs/{job_id}")
def job_page(
    request: Request,
    session: SessionDep,
    record: JobDep,
    show: Shown = "rejected",
    stage: str | None = None,
    reason: str | None = None,
    style: str | None = None,
    cursor: str | None = None,
) -> Response:
    """One job: its funnel, rejections, samples (filtered by status, stage, reason and style,
    a page at a time), spec, judge calibration and LLM usage."""
    job = JobProgress.model_validate(record)
    chosen_style = _choice("style", style, QueryStyle)
    filters = SampleFilters(
        status=None if show == "all" else SampleStatus(show),
        stage=stage or None,
        reason=reason or None,
        style=None if chosen_style is None else QueryStyle(chosen_style),
    )
    samples = sample_page(session, record, filters, SAMPLES_PER_PAGE, cursor or None)
    context = {
        "job": job,
        "catalog_name": catalog_names(session, {job.catalog_id}).get(job.catalog_id),
        "funnel": funnel_bars(job.counts.funnel),
        "samples": samples,
        "counterparts": _accepted_counterparts(session, record, samples.data),
        "show": show,
        "filters": filters,
        "stages": _stages(job),
        "styles": list(job.spec.styles),
        "reasons": list(job.counts.by_reason),
        "spec": job.spec.model_dump(mode="json"),
    }
    return render(request, "job.html", context)


def _accepted_counterparts(
    session: Session, record: JobRecord, shown: list[SamplePublic]
) -> dict[str, SamplePublic | None]:
    """For each style among the rejected samples shown, the job's first accepted sample of
    that style (None when it has none)."""
    found: dict[str, SamplePublic | None] = {}
    for item in shown:
        style = item.sample.meta.style
        if item.status != SampleStatus.rejected or style is None or style in found:
            continue
        accepted = SampleFilters(status=SampleStatus.accepted, style=style)
        found[style] = first_sample(session, record, accepted)
    return found


def _stages(job: JobProgress) -> list[str]:
    listed = list(job.spec.verify)
    return listed + [stage for stage in job.counts.by_stage if stage not in listed]


def _choice(
    name: str, value: str | None, choices: type[JobStatus] | type[QueryStyle]
) -> str | None:
    """A filter's value: None when empty (a form's "any"), else one of `choices`."""
    if not value:
        return None
    known = [choice.value for choice in choices]
    if value not in known:
        raise InvalidRequest(
            f"query parameter '{name}' ({value!r}) is not one of: {', '.join(known)}; "
            "pick one of those or leave it empty"
        )
    return value
