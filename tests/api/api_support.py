"""Running the API for tests (see tests/served_api.py), and storing jobs and samples directly
in its database."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

from served_api import Api as Api
from served_api import running_api as running_api
from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import (
    BatchRecord,
    BatchStatus,
    CatalogRecord,
    JobRecord,
    JobStatus,
    SampleRecord,
    SampleStatus,
    VerdictRecord,
)
from service.pipeline.counts import empty_counts
from service.pipeline.spec import JobSpec
from unified.catalogs import load_catalog
from unified.formats import read_samples
from unified.model import Sample
from unified.sample_json import dump_layout

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
TRAVEL_CATALOG = ROOT / "examples" / "travel_api.yaml"
XLAM_ROWS = DATA / "xlam" / "rows_sample.jsonl"


def real_samples() -> list[Sample]:
    """Nine real rows of xlam-function-calling-60k as unified samples."""
    with read_samples(XLAM_ROWS, "xlam") as reader:
        return list(reader)


def add_catalog(sessions: sessionmaker[Session]) -> str:
    """Store the bundled travel catalog directly; its id."""
    catalog = load_catalog(TRAVEL_CATALOG)
    record = CatalogRecord(
        id=uuid.uuid4().hex,
        name=TRAVEL_CATALOG.name,
        kind=catalog.kind,
        title=catalog.title,
        sha256=catalog.sha256,
        tools=[tool.model_dump(mode="json", by_alias=True) for tool in catalog.tools],
    )
    with sessions() as session, session.begin():
        session.add(record)
    return record.id


Outcome = tuple[SampleStatus, str | None, str | None]
"""A sample's status, the stage that judged it last, and its rejection reason."""

ACCEPTED: Outcome = (SampleStatus.accepted, "format", None)


def add_job(
    sessions: sessionmaker[Session],
    samples: Sequence[Sample],
    outcomes: Sequence[Outcome] | None = None,
    status: JobStatus = JobStatus.succeeded,
    job_id: str | None = None,
) -> str:
    """Store a job whose one batch holds `samples` at positions 0, 1, ... with `outcomes`
    (default: all accepted), each with a format-stage verdict; the job's id (`job_id`, or a
    random one). Sample ids are `<job id>-<position, 7 digits>`."""
    outcomes = outcomes or [ACCEPTED] * len(samples)
    catalog_id = add_catalog(sessions)
    job_id = job_id or uuid.uuid4().hex
    batch_id = f"{job_id}-000000"
    sample_rows = []
    verdict_rows = []
    for position, (sample, (sample_status, stage, reason)) in enumerate(
        zip(samples, outcomes, strict=True)
    ):
        sample_id = f"{job_id}-{position:07d}"
        sample_rows.append(
            {
                "id": sample_id,
                "job_id": job_id,
                "batch_id": batch_id,
                "position": position,
                "status": sample_status,
                "stage": stage,
                "reason": reason,
                "data": sample.model_dump(mode="json", by_alias=True),
                "layout": dump_layout(),
            }
        )
        if stage is not None:
            verdict_rows.append(
                {
                    "sample_id": sample_id,
                    "stage": stage,
                    "accepted": sample_status == SampleStatus.accepted,
                    "reason": reason,
                    "detail": None if reason is None else f"{reason} in {sample.id}",
                }
            )
    with sessions() as session, session.begin():
        session.add(
            JobRecord(
                id=job_id,
                catalog_id=catalog_id,
                spec=JobSpec(n=max(len(samples), 1)).model_dump(mode="json"),
                status=status,
                counts=empty_counts(["format"]),
            )
        )
        session.flush()
        session.add(
            BatchRecord(
                id=batch_id,
                job_id=job_id,
                index=0,
                size=len(samples),
                seed=0,
                status=BatchStatus.verified,
            )
        )
        session.flush()
        for start in range(0, len(sample_rows), 5000):
            session.execute(insert(SampleRecord), sample_rows[start : start + 5000])
        for start in range(0, len(verdict_rows), 5000):
            session.execute(insert(VerdictRecord), verdict_rows[start : start + 5000])
    return job_id
