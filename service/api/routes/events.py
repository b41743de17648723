"""`GET /v1/jobs/{id}/events`: a job's progress as Server-Sent Events, until it has finished."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from service.api.deps import JobDep, SessionsDep
from service.api.documented_errors import not_found
from service.api.schemas import JobProgress
from service.api.server import stopping_event
from service.db.models import FINISHED, JobRecord

router = APIRouter(prefix="/jobs", tags=["jobs"])

# How often the stream reads the job's row. Workers store fresh counts at most every
# PROGRESS_REFRESH_SECONDS (2 s), so a change shows within about that long.
POLL_SECONDS = 0.5
PROGRESS = "progress"
FINISHED_EVENT = "finished"

_DESCRIPTION = (
    "A stream of `text/event-stream` events whose `data` is the job as JSON (`JobProgress`: "
    "the job of GET /v1/jobs/{id} with `progress`, `samples_per_s` and `tokens_per_s`). "
    f"`event: {PROGRESS}` comes first with the job as it stands, then again each time its "
    f"status or counts change; `event: {FINISHED_EVENT}` carries its final state once it has "
    "succeeded, failed or been cancelled, and the stream ends. Comment lines (`: ping`) keep "
    "an idle connection open. The stream also ends, without that event, when the server stops: "
    "connect again or read GET /v1/jobs/{id}."
)


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    responses={200: {"description": _DESCRIPTION}, **not_found("No job has the id.")},
)
async def job_events(
    request: Request, job: JobDep, sessions: SessionsDep
) -> AsyncIterator[ServerSentEvent]:
    """Follow a job: its counts per stage as they change, then its final state."""
    job_id = job.id
    stopping = stopping_event(request.app)
    seen: Any = None
    while True:
        current = await run_in_threadpool(_read, sessions, job_id)
        if current is None:  # deleted meanwhile
            return
        if current.status in FINISHED:
            yield ServerSentEvent(event=FINISHED_EVENT, data=current)
            return
        state = (current.status, current.counts.model_dump(), current.error)
        if state != seen:
            seen = state
            yield ServerSentEvent(event=PROGRESS, data=current)
        if stopping.is_set():
            return
        await asyncio.sleep(POLL_SECONDS)


def _read(sessions: sessionmaker[Session], job_id: str) -> JobProgress | None:
    with sessions() as session:
        record = session.get(JobRecord, job_id)
        return None if record is None else JobProgress.model_validate(record)
