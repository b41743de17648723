"""`GET /v1/jobs/{id}/samples`: a job's samples in position order, a page at a time
(`sample_page`, which the dashboard's job page reads too)."""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import orjson
from fastapi import APIRouter, Query
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from service.api.deps import JobDep, SessionDep
from service.api.documented_errors import not_found
from service.api.pagination import Limit
from service.api.schemas import SamplePublic, SamplesPublic, VerdictPublic
from service.db.models import JobRecord, SampleRecord, SampleStatus, VerdictRecord
from service.errors import InvalidRequest
from service.pipeline.spec import MAX_SAMPLES_PER_JOB
from unified.model import QueryStyle, Sample

router = APIRouter(prefix="/jobs", tags=["samples"])


def encode_cursor(position: int) -> str:
    """An opaque cursor for the page after the sample at `position`."""
    return base64.urlsafe_b64encode(orjson.dumps({"after": position})).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The position a cursor from `encode_cursor` points after; `InvalidRequest` otherwise."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        after = data["after"]
        if not isinstance(after, int) or isinstance(after, bool):
            raise TypeError(after)
        if not 0 <= after < MAX_SAMPLES_PER_JOB:  # beyond the integer column: a 500 otherwise
            raise ValueError(after)
        return after
    except (binascii.Error, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise InvalidRequest(
            f"query parameter 'cursor' ({cursor!r}) is not a cursor this API gave; pass the "
            "next_cursor of the previous page unchanged, or leave it out for the first page"
        ) from None


@router.get("/{job_id}/samples", responses=not_found("No job has the id."))
def list_samples(
    session: SessionDep,
    job: JobDep,
    sample_status: Annotated[
        SampleStatus | None, Query(alias="status", description="Only samples in this status.")
    ] = None,
    reason: Annotated[
        str | None, Query(description="Only samples rejected for this reason code.")
    ] = None,
    stage: Annotated[
        str | None,
        Query(description="Only samples this stage judged last (for one rejected: its stage)."),
    ] = None,
    style: Annotated[QueryStyle | None, Query(description="Only samples of this query style.")] = (
        None
    ),
    limit: Limit = 100,
    cursor: Annotated[
        str | None, Query(description="The next_cursor of the previous page.")
    ] = None,
) -> SamplesPublic:
    """The samples of a job with each stage's verdict, filtered by status, reason, stage and
    style."""
    filters = SampleFilters(status=sample_status, reason=reason, stage=stage, style=style)
    return sample_page(session, job, filters, limit, cursor)


@dataclass(frozen=True)
class SampleFilters:
    """Which of a job's samples to list; None matches every value."""

    status: SampleStatus | None = None
    reason: str | None = None
    stage: str | None = None
    style: QueryStyle | None = None

    def where(self, job_id: str) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = [SampleRecord.job_id == job_id]
        if self.status is not None:
            where.append(SampleRecord.status == self.status)
        if self.reason is not None:
            where.append(SampleRecord.reason == self.reason)
        if self.stage is not None:
            where.append(SampleRecord.stage == self.stage)
        if self.style is not None:
            where.append(SampleRecord.data[("meta", "style")].as_string() == self.style.value)
        return where


def sample_page(
    session: Session,
    job: JobRecord,
    filters: SampleFilters,
    limit: int,
    cursor: str | None = None,
) -> SamplesPublic:
    """One page of the job's samples that match `filters`, in position order, after the
    position `cursor` points after; each with its verdicts, and how many match in all."""
    where = filters.where(job.id)
    count = session.scalar(select(func.count()).select_from(SampleRecord).where(*where)) or 0
    if cursor is not None:
        where.append(SampleRecord.position > decode_cursor(cursor))
    page, more = _first(session, job, where, limit)
    return SamplesPublic(
        data=page,
        count=count,
        next_cursor=encode_cursor(page[-1].position) if more else None,
    )


def first_sample(session: Session, job: JobRecord, filters: SampleFilters) -> SamplePublic | None:
    """The job's first sample that matches `filters`, with its verdicts; not counting the
    others, which a style filter would have to read one by one."""
    found, _ = _first(session, job, filters.where(job.id), 1)
    return found[0] if found else None


def _first(
    session: Session, job: JobRecord, where: list[ColumnElement[bool]], limit: int
) -> tuple[list[SamplePublic], bool]:
    """The first `limit` samples in position order that match `where`, and whether more do."""
    records = session.scalars(
        select(SampleRecord).where(*where).order_by(SampleRecord.position).limit(limit + 1)
    ).all()
    page, more = records[:limit], len(records) > limit
    stages = job.spec.get("verify") or []
    verdicts = _verdicts(session, [record.id for record in page], [str(s) for s in stages])
    return [
        SamplePublic(
            id=record.id,
            position=record.position,
            status=SampleStatus(record.status),
            stage=record.stage,
            reason=record.reason,
            verdicts=verdicts.get(record.id, []),
            sample=Sample.model_validate(record.data),
        )
        for record in page
    ], more


def _verdicts(
    session: Session, sample_ids: Sequence[str], stages: Sequence[str]
) -> dict[str, list[VerdictPublic]]:
    """Each sample's verdicts in the order its job runs the stages."""
    found: dict[str, list[VerdictPublic]] = defaultdict(list)
    if not sample_ids:
        return found
    order = {stage: i for i, stage in enumerate(stages)}
    rows = session.scalars(
        select(VerdictRecord)
        .where(VerdictRecord.sample_id.in_(sample_ids))
        .order_by(VerdictRecord.sample_id, VerdictRecord.created_at, VerdictRecord.stage)
    )
    for row in rows:
        found[row.sample_id].append(VerdictPublic.model_validate(row))
    for verdicts in found.values():
        verdicts.sort(key=lambda verdict: order.get(verdict.stage, len(order)))
    return found
