"""Few-shot examples from a catalog's history: accepted samples of earlier jobs on the same
catalog, which the service hands to the llm generator when a job asks for them
(`generator_options.catalog_examples`).

Only earlier jobs count (so a job's examples do not depend on how fast its own batches are
verified), newest job first, then by position. Held-out samples (`service.training.heldout`) are
left out: they are the data every model version is evaluated on, and a generator shown them
would write near-copies into the training data.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import JobRecord, SampleRecord, SampleStatus
from service.pipeline.history import earlier_jobs_on_same_document
from service.training.heldout import is_heldout

OPTION = "catalog_examples"
_ROWS_PER_FETCH = 200


def catalog_examples(
    session: Session, job: JobRecord, limit: int, heldout_fraction: float
) -> list[dict[str, Any]]:
    """Up to `limit` accepted samples (unified JSON) of earlier jobs on the job's catalog."""
    if limit <= 0:
        return []
    rows = session.execute(
        select(SampleRecord.id, SampleRecord.data)
        .join(JobRecord, JobRecord.id == SampleRecord.job_id)
        .where(
            SampleRecord.job_id.in_(earlier_jobs_on_same_document(job)),
            SampleRecord.status == SampleStatus.accepted,
        )
        .order_by(JobRecord.created_at.desc(), JobRecord.id.desc(), SampleRecord.position)
        .execution_options(yield_per=_ROWS_PER_FETCH)
    )
    examples: list[dict[str, Any]] = []
    for sample_id, data in rows:
        if is_heldout(sample_id, heldout_fraction):
            continue
        examples.append(data)
        if len(examples) == limit:
            break
    rows.close()
    return examples


def with_catalog_examples(
    session: Session, job: JobRecord, options: dict[str, Any], heldout_fraction: float
) -> dict[str, Any]:
    """The generator options with the catalog's examples appended to `examples`; the options
    as given when they ask for none."""
    limit = int(options.get(OPTION) or 0)
    found = catalog_examples(session, job, limit, heldout_fraction)
    if not found:
        return options
    return {**options, "examples": [*options.get("examples", []), *found]}
