"""`run`'s job submission: the catalog stored and the job queued straight into this machine's
database and queue, with the checks `POST /v1/catalogs` and `POST /v1/jobs` make (the same
functions: the catalog's loading and text rules, the spec's model and text rules, `create_job`),
so that a job starts without the web stack. What the API would refuse is refused here with its
message, as one line."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from service.api.catalog_records import catalog_record
from service.api.problems import describe_problems
from service.api.safe_text import json_problems
from service.api.schemas import JobPublic
from service.cli.console import err_console, warn
from service.errors import InvalidRequest
from service.pipeline.spec import JobCreate, JobSpec
from service.pipeline.submit import create_job
from service.queue.database import sessions_for
from service.queue.dispatch import enqueue_job
from service.settings import Settings

log = logging.getLogger(__name__)


def submit_here(
    settings: Settings, catalog: Path, spec: dict[str, Any], kind: str | None
) -> JobPublic:
    """Store `catalog` and queue a job with `spec` over it; print what the API's answers would
    show. Raises an `ActionForgeError` (or OSError) for what the API would refuse."""
    record, loaded = catalog_record(
        catalog.read_bytes(), catalog.name, kind, settings.max_catalog_bytes
    )
    job_spec = _checked_spec({**spec, "catalog_id": record.id})
    with sessions_for(settings.resolved_database_url())() as session:
        session.add(record)
        session.flush()
        job = create_job(session, record.id, job_spec, settings)
        public = JobPublic.model_validate(job)
        session.commit()
    err_console.print(
        f"catalog {catalog.name}: {len(record.tools)} tools ({record.kind}), id {record.id}",
        highlight=False,
    )
    for warning in loaded.warnings:
        warn(f"{catalog.name}: {warning}")
    try:
        enqueue_job(public.id, settings)
    except Exception as exc:  # the queue is away: the workers' sweep sends the batches
        log.warning("job %s stored but not sent (%s); left to the sweep", public.id, exc)
    err_console.print(f"job {public.id} queued: {public.spec.n:,} samples", highlight=False)
    return public


def _checked_spec(body: dict[str, Any]) -> JobSpec:
    """The job spec of a `POST /v1/jobs` body, checked as the API checks it."""
    problems = list(json_problems(body, ("body",)))
    if problems:
        raise InvalidRequest(describe_problems(problems)[0])
    try:
        job_in = JobCreate.model_validate(body)
    except ValidationError as exc:
        problems = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise InvalidRequest(describe_problems(problems)[0]) from None
    return JobSpec.model_validate(job_in.model_dump(exclude={"catalog_id"}))
