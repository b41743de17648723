"""Submitting a job: its spec checked and completed with the service's defaults, the job stored
with its planned batches. Returns the ids of the batches to enqueue; the API enqueues them."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from generators.base import Generator, load_generator
from llm.base import LlmDefaults
from service.db.models import BatchRecord, BatchStatus, CatalogRecord, JobRecord, JobStatus
from service.errors import InvalidRequest, NotFound
from service.pipeline.counts import empty_counts
from service.pipeline.spec import JobSpec
from service.pipeline.templates_root import with_templates_dir_resolved, without_server_paths
from service.settings import Settings
from unified.errors import ActionForgeError, UnknownNameError
from verifiers.stages import (
    StageOptionsError,
    StageOrderError,
    check_stage_names,
    check_stage_options,
    check_stage_order,
    stage_class,
)


def derive_seed(job_seed: int, index: int) -> int:
    """The seed of batch `index` of a job seeded `job_seed`: stable, and distinct per batch."""
    digest = hashlib.sha256(f"{job_seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1  # fits a signed 32-bit column


def plan_batches(job_id: str, n: int, batch_size: int, job_seed: int) -> list[BatchRecord]:
    """Split `n` samples into batches of `batch_size` (the last may be smaller)."""
    return [
        BatchRecord(
            id=f"{job_id}-{index:06d}",
            job_id=job_id,
            index=index,
            size=min(batch_size, n - start),
            seed=derive_seed(job_seed, index),
            status=BatchStatus.planned,
            attempts=0,
        )
        for index, start in enumerate(range(0, n, batch_size))
    ]


def create_job(session: Session, catalog_id: str, spec: JobSpec, settings: Settings) -> JobRecord:
    """Add a queued job and its planned batches to `session` (not committed, not enqueued).

    The stored spec is complete: the stages the generator requires first, the deployment's LLM
    where the generator or a stage needs one and the spec names none, each stage's checked
    options, the batch size. Raises `NotFound` for an unknown catalog and `InvalidRequest`
    (naming the field and what to change) for an unknown generator or stage, bad options, a
    stage listed twice or out of order.
    """
    if session.get(CatalogRecord, catalog_id) is None:
        raise NotFound(
            f"catalog '{catalog_id}' does not exist; upload the catalog first "
            "(POST /v1/catalogs) and use the id it returns"
        )
    try:
        generator = load_generator(spec.generator)
    except UnknownNameError as exc:
        raise InvalidRequest(f"generator: {exc}; set 'generator' to one of them") from None
    except ActionForgeError as exc:
        raise InvalidRequest(f"generator: {exc}") from None
    llm = LlmDefaults(settings.llm_base_url, settings.llm_model)
    spec = _with_stage_options(_with_required_stages(spec, generator), llm)
    options = generator.with_llm_defaults(spec.generator_options, llm)
    root = settings.resolved_templates_root()
    try:
        generator.check_options(with_templates_dir_resolved(options, root))
    except InvalidRequest:
        raise
    except ActionForgeError as exc:
        raise InvalidRequest(f"generator_options: {without_server_paths(str(exc), root)}") from None
    batch_size = spec.batch_size or (
        settings.llm_batch_size if generator.uses_llm else settings.batch_size
    )
    stored = spec.model_copy(update={"generator_options": options, "batch_size": batch_size})
    job = JobRecord(
        id=uuid.uuid4().hex,
        catalog_id=catalog_id,
        spec=stored.model_dump(mode="json"),
        status=JobStatus.queued,
        counts=empty_counts(stored.verify),
    )
    session.add(job)
    session.flush()  # the job row first: the batches refer to it
    session.add_all(plan_batches(job.id, spec.n, batch_size, spec.seed))
    return job


def _with_required_stages(spec: JobSpec, generator: type[Generator]) -> JobSpec:
    """The stages the generator requires, first and in its order, before the spec's own."""
    required = [stage for stage in generator.required_stages if stage not in spec.verify]
    if not required:
        return spec
    return spec.model_copy(update={"verify": [*required, *spec.verify]})


def _with_stage_options(spec: JobSpec, llm: LlmDefaults) -> JobSpec:
    """The spec with its stages checked (known, in an order that can run) and each stage's
    options completed (the deployment's LLM where a stage needs one) and checked."""
    try:
        check_stage_names(spec.verify)
    except UnknownNameError as exc:
        raise InvalidRequest(f"verify: {exc}; list only known stages") from None
    except ActionForgeError as exc:
        raise InvalidRequest(f"verify: {exc}") from None
    unused = sorted(set(spec.stage_options) - set(spec.verify))
    if unused:
        raise InvalidRequest(
            f"stage_options: stage '{unused[0]}' is not in verify; add it there or drop its options"
        )
    try:
        check_stage_order(spec.verify)
    except StageOrderError as exc:
        raise InvalidRequest(f"verify: {exc}") from None
    completed: dict[str, dict[str, Any]] = {}
    for name in spec.verify:
        given = stage_class(name).with_llm_defaults(spec.stage_options.get(name, {}), llm)
        try:
            checked = check_stage_options(name, given)
        except StageOptionsError as exc:
            raise InvalidRequest(f"verify: {exc}") from None
        if given:
            completed[name] = checked.model_dump(mode="json", exclude_unset=True)
    try:  # again: `judge` mirrors the semantic stage's option, now completed
        return JobSpec.model_validate({**spec.model_dump(mode="json"), "stage_options": completed})
    except ValidationError as exc:
        raise InvalidRequest(f"verify: {exc.errors()[0]['msg']}") from None


def planned_batch_ids(session: Session, job_id: str) -> list[str]:
    """The job's planned batches, in order: what to enqueue after committing the job."""
    return list(
        session.scalars(
            select(BatchRecord.id)
            .where(BatchRecord.job_id == job_id, BatchRecord.status == BatchStatus.planned)
            .order_by(BatchRecord.index)
        )
    )
