"""The jobs that came before a job on the same catalog document: what de-duplication compares
with and what few-shot examples are drawn from."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, and_, or_, select

from service.db.models import CatalogRecord, JobRecord


def earlier_jobs_on_same_document(job: JobRecord) -> Select[Any]:
    """Ids of the jobs created before `job` on the same catalog document (by SHA-256, however
    often it was uploaded); of two created at the same moment, the lower id is earlier."""
    same_document = (
        select(CatalogRecord.sha256).where(CatalogRecord.id == job.catalog_id).scalar_subquery()
    )
    return (
        select(JobRecord.id)
        .join(CatalogRecord, CatalogRecord.id == JobRecord.catalog_id)
        .where(
            CatalogRecord.sha256 == same_document,
            or_(
                JobRecord.created_at < job.created_at,
                and_(JobRecord.created_at == job.created_at, JobRecord.id < job.id),
            ),
        )
    )
