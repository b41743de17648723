"""A job's life: create it with its planned batches, enqueue it, cancel it, count its funnel,
finish or fail it, and recover its unfinished batches after a worker or queue was lost.

Plain functions over a SQLAlchemy Session; the API, the CLI and the Celery tasks call them.
Functions that take a Session leave committing to the caller unless they say otherwise.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from generators.base import GENERATORS
from llm.base import BackendConfig
from service.db.models import (
    FINISHED,
    BatchRecord,
    BatchStatus,
    CatalogRecord,
    JobRecord,
    JobStatus,
    SampleRecord,
    SampleStatus,
    VerdictRecord,
    utcnow,
)
from service.errors import InvalidRequest, NotFound
from service.pipeline.spec import JobSpec
from service.settings import Settings, get_settings
from unified.errors import ActionForgeError, UnknownNameError
from verifiers.stages import (
    GENERATION_STAGE,
    SEMANTIC_STAGE,
    StageOrderError,
    check_stage_names,
    check_stage_order,
)

LLM_GENERATOR = "llm"

ACTIVE_JOB = (JobStatus.queued, JobStatus.running)
OPEN_BATCH = (BatchStatus.planned, BatchStatus.generated)
# Workers refresh a running job's counts at most this often (the query scans the job's rows).
PROGRESS_REFRESH_SECONDS = 2.0
# Sample ids shown per rejection reason in a job's counts.
EXAMPLES_PER_REASON = 5


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


def empty_counts(stages: list[str]) -> dict[str, Any]:
    """The counts of a job nothing has happened to yet."""
    return {
        "generated": 0,
        "accepted": 0,
        "rejected": 0,
        "by_stage": {stage: {"passed": 0, "rejected": 0} for stage in stages},
        "by_reason": {},
        "batches": {},
        "funnel": funnel_steps(0, {stage: {"passed": 0, "rejected": 0} for stage in stages}, 0),
        "rejections": [],
        "generation": None,
    }


def funnel_steps(
    generated: int, by_stage: dict[str, dict[str, int]], accepted: int
) -> list[dict[str, Any]]:
    """generated -> each stage in `by_stage`'s order (samples it passed, and rejected) ->
    accepted."""
    steps: list[dict[str, Any]] = [{"step": "generated", "samples": generated, "rejected": 0}]
    for stage, counted in by_stage.items():
        steps.append({"step": stage, "samples": counted["passed"], "rejected": counted["rejected"]})
    steps.append({"step": "accepted", "samples": accepted, "rejected": 0})
    return steps


def create_job(session: Session, catalog_id: str, spec: JobSpec, settings: Settings) -> JobRecord:
    """Add a queued job and its planned batches to `session` (not committed, not enqueued).

    Raises `NotFound` for an unknown catalog and `InvalidRequest` for an unknown generator or
    verification stage, a stage listed twice, or dedup listed before another stage.
    """
    if session.get(CatalogRecord, catalog_id) is None:
        raise NotFound(
            f"catalog '{catalog_id}' does not exist; upload the catalog first "
            "(POST /v1/catalogs) and use the id it returns"
        )
    try:
        GENERATORS.get(spec.generator)
    except UnknownNameError as exc:
        raise InvalidRequest(f"generator: {exc}; set 'generator' to one of them") from None
    try:
        check_stage_names(spec.verify)
    except UnknownNameError as exc:
        raise InvalidRequest(f"verify: {exc}; list only known stages") from None
    spec = _with_generation_stage(_with_llm_defaults(spec, settings))
    try:
        check_stage_order(spec.verify)
    except StageOrderError as exc:
        raise InvalidRequest(f"verify: {exc}") from None
    _check_generator_options(spec)
    if SEMANTIC_STAGE in spec.verify and spec.judge is None:
        raise InvalidRequest(
            "verify: the 'semantic' stage needs a judge; give 'judge' (backend, model, and "
            "base_url for an OpenAI-compatible server), set AF_LLM_BASE_URL and AF_LLM_MODEL "
            "where the API runs, or drop 'semantic'"
        )
    default_size = (
        settings.llm_batch_size if spec.generator == LLM_GENERATOR else settings.batch_size
    )
    batch_size = spec.batch_size or default_size
    stored = spec.model_copy(update={"batch_size": batch_size})
    job = JobRecord(
        id=uuid.uuid4().hex,
        catalog_id=catalog_id,
        spec=stored.model_dump(mode="json"),
        status=JobStatus.queued,
        counts=empty_counts(spec.verify),
    )
    session.add(job)
    session.flush()  # the job row first: the batches refer to it
    session.add_all(plan_batches(job.id, spec.n, batch_size, spec.seed))
    return job


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


def _with_llm_defaults(spec: JobSpec, settings: Settings) -> JobSpec:
    """The spec with the service's LLM (AF_LLM_BASE_URL, AF_LLM_MODEL) where an llm job names
    none, and as the judge of a semantic stage that has none; stored so, the job says what
    it used."""
    updates: dict[str, Any] = {}
    if spec.generator == LLM_GENERATOR:
        options = dict(spec.generator_options)
        if settings.llm_base_url and "backend" not in options:
            options["backend"] = "openai"
        if settings.llm_base_url and options.get("backend") == "openai":
            options.setdefault("base_url", settings.llm_base_url)
        if settings.llm_model:
            options.setdefault("model", settings.llm_model)
        updates["generator_options"] = options
    if (
        SEMANTIC_STAGE in spec.verify
        and spec.judge is None
        and settings.llm_base_url
        and settings.llm_model
    ):
        updates["judge"] = BackendConfig(
            backend="openai", base_url=settings.llm_base_url, model=settings.llm_model
        )
    return spec.model_copy(update=updates)


def _with_generation_stage(spec: JobSpec) -> JobSpec:
    """The llm generator keeps its failed generations as marked samples: put the stage that
    rejects them first, so none is ever accepted."""
    if spec.generator != LLM_GENERATOR or GENERATION_STAGE in spec.verify:
        return spec
    return spec.model_copy(update={"verify": [GENERATION_STAGE, *spec.verify]})


def _check_generator_options(spec: JobSpec) -> None:
    """Refuse options the generator does not take before anything is queued."""
    check = getattr(GENERATORS.get(spec.generator), "check_options", None)
    if check is None:
        if spec.generator_options:
            raise InvalidRequest(
                f"generator_options: generator '{spec.generator}' takes no options; remove them"
            )
        return
    if spec.generator == LLM_GENERATOR and "model" not in spec.generator_options:
        raise InvalidRequest(
            "generator_options: the llm generator needs 'model' (the name the server serves, "
            "or a local path for backend 'vllm'); give it, or set AF_LLM_MODEL (and "
            "AF_LLM_BASE_URL for a server) where the API runs"
        )
    try:
        check(spec.generator_options)
    except ActionForgeError as exc:
        raise InvalidRequest(f"generator_options: {exc}") from None


def enqueue_job(job_id: str, settings: Settings | None = None) -> None:
    """Send a generate task for each planned batch of the job. Call after committing the job."""
    from service.queue.app import GENERATE_TASK, celery_for, send_batches
    from service.queue.database import sessions_for

    settings = settings or get_settings()
    with sessions_for(settings.resolved_database_url())() as session:
        batch_ids = session.scalars(
            select(BatchRecord.id)
            .where(BatchRecord.job_id == job_id, BatchRecord.status == BatchStatus.planned)
            .order_by(BatchRecord.index)
        ).all()
    send_batches(celery_for(settings), GENERATE_TASK, batch_ids)


def cancel_job(session: Session, job_id: str) -> JobRecord:
    """Cancel a queued or running job: its open batches are cancelled, no new batch starts.

    Batches already being worked on find their batch cancelled and store nothing. Cancelling a
    cancelled job changes nothing; a succeeded or failed job raises `InvalidRequest`.
    """
    job = lock_job(session, job_id)
    if job is None:
        raise NotFound(f"job '{job_id}' does not exist; list the jobs with GET /v1/jobs")
    if job.status == JobStatus.cancelled:
        return job
    if job.status in FINISHED:
        raise InvalidRequest(
            f"job '{job_id}' already {job.status}; only queued or running jobs can be cancelled"
        )
    job.status = JobStatus.cancelled
    job.finished_at = utcnow()
    _close_open_batches(session, job_id)
    refresh_counts(session, job_id)
    return job


def lock_job(session: Session, job_id: str) -> JobRecord | None:
    """The job, freshly read, with its row locked until the transaction ends.

    Every transaction that changes a job and its batches takes this lock first: one lock order,
    no deadlocks. It is FOR NO KEY UPDATE, so rows that refer to the job (samples being stored)
    can still be inserted meanwhile. SQLite serialises writers anyway and ignores the clause.
    """
    return session.scalar(
        select(JobRecord)
        .where(JobRecord.id == job_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )


def compute_counts(session: Session, job_id: str, stages: list[str]) -> dict[str, Any]:
    """The job's funnel, counted from its sample, verdict and batch rows."""
    counts = empty_counts(stages)
    by_status = session.execute(
        select(SampleRecord.status, func.count())
        .where(SampleRecord.job_id == job_id)
        .group_by(SampleRecord.status)
    ).all()
    for status, n in by_status:
        counts["generated"] += n
        if status in (SampleStatus.accepted, SampleStatus.rejected):
            counts[status] = n
    by_stage = session.execute(
        select(VerdictRecord.stage, VerdictRecord.accepted, func.count())
        .join(SampleRecord, SampleRecord.id == VerdictRecord.sample_id)
        .where(SampleRecord.job_id == job_id)
        .group_by(VerdictRecord.stage, VerdictRecord.accepted)
        .order_by(VerdictRecord.stage, VerdictRecord.accepted)
    ).all()
    for stage, accepted, n in by_stage:
        entry = counts["by_stage"].setdefault(stage, {"passed": 0, "rejected": 0})
        entry["passed" if accepted else "rejected"] = n
    batches = session.execute(
        select(BatchRecord.status, func.count())
        .where(BatchRecord.job_id == job_id)
        .group_by(BatchRecord.status)
    )
    counts["batches"] = {status: n for status, n in batches}
    usage = generation_usage(
        session.scalars(
            select(BatchRecord.usage).where(
                BatchRecord.job_id == job_id, BatchRecord.usage.is_not(None)
            )
        )
    )
    counts["generation"] = usage
    counts["funnel"] = funnel_steps(counts["generated"], counts["by_stage"], counts["accepted"])
    counts["rejections"] = _rejections(session, job_id, stages)
    counts["by_reason"] = _by_reason(counts["rejections"])
    return counts


def _by_reason(rejections: list[dict[str, Any]]) -> dict[str | None, int]:
    """Rejected samples per reason code (summed over stages), most common first."""
    totals: dict[str | None, int] = {}
    for entry in rejections:
        totals[entry["reason"]] = totals.get(entry["reason"], 0) + entry["samples"]
    return dict(sorted(totals.items(), key=lambda item: (-item[1], item[0] or "")))


USAGE_FIELDS = ("requests", "prompt_tokens", "completion_tokens", "wall_s")


def generation_usage(per_batch: Iterable[dict[str, Any] | None]) -> dict[str, Any] | None:
    """The job's LLM usage summed over its generated batches, with the engine's completion
    tokens/s; None when no batch reported usage (generators without an LLM)."""
    total: dict[str, float] = dict.fromkeys(USAGE_FIELDS, 0)
    failures: dict[str, int] = {}
    seen = False
    for usage in per_batch:
        if not usage:
            continue
        seen = True
        for name in USAGE_FIELDS:
            total[name] += usage.get(name, 0) or 0
        for kind, n in (usage.get("failures") or {}).items():
            failures[kind] = failures.get(kind, 0) + n
    if not seen:
        return None
    wall = total["wall_s"]
    return {
        **{name: int(total[name]) for name in USAGE_FIELDS if name != "wall_s"},
        "wall_s": round(wall, 3),
        "completion_tokens_per_s": round(total["completion_tokens"] / wall, 1) if wall else 0.0,
        "failures": failures,
    }


def _rejections(session: Session, job_id: str, stages: list[str]) -> list[dict[str, Any]]:
    """Per stage and reason code: how many samples it rejected, and the ids of the first
    EXAMPLES_PER_REASON of them by position. Most common first."""
    rejected = (SampleRecord.job_id == job_id, SampleRecord.status == SampleStatus.rejected)
    groups = session.execute(
        select(SampleRecord.stage, SampleRecord.reason, func.count())
        .where(*rejected)
        .group_by(SampleRecord.stage, SampleRecord.reason)
    ).all()
    ranked = (
        select(
            SampleRecord.stage,
            SampleRecord.reason,
            SampleRecord.id,
            func.row_number()
            .over(
                partition_by=(SampleRecord.stage, SampleRecord.reason),
                order_by=SampleRecord.position,
            )
            .label("rank"),
        )
        .where(*rejected)
        .subquery()
    )
    examples: dict[tuple[str | None, str | None], list[str]] = {}
    for stage, reason, sample_id in session.execute(
        select(ranked.c.stage, ranked.c.reason, ranked.c.id)
        .where(ranked.c.rank <= EXAMPLES_PER_REASON)
        .order_by(ranked.c.stage, ranked.c.reason, ranked.c.rank)
    ):
        examples.setdefault((stage, reason), []).append(sample_id)
    order = {stage: i for i, stage in enumerate(stages)}
    entries = [
        {
            "stage": stage,
            "reason": reason,
            "samples": n,
            "examples": examples.get((stage, reason), []),
        }
        for stage, reason, n in groups
    ]

    def rank(entry: dict[str, Any]) -> tuple[int, int, str, str]:
        stage, reason = entry["stage"], entry["reason"]
        return (-entry["samples"], order.get(stage, len(order)), stage or "", reason or "")

    entries.sort(key=rank)
    return entries


def refresh_counts(session: Session, job_id: str) -> dict[str, Any]:
    """Recount the job's funnel from its rows and store it in the job; returns the counts."""
    job = session.get(JobRecord, job_id)
    if job is None:
        raise NotFound(f"job '{job_id}' does not exist; list the jobs with GET /v1/jobs")
    counts = compute_counts(session, job_id, _stages_of(job))
    job.counts = counts
    return counts


_last_progress: dict[str, float] = {}


def refresh_progress(session: Session, job_id: str) -> None:
    """Store fresh counts for a job still running, at most every PROGRESS_REFRESH_SECONDS.

    The write only applies while the job is active, so it never overwrites the final counts
    stored by whoever finished the job.
    """
    now = time.monotonic()
    if now - _last_progress.get(job_id, float("-inf")) < PROGRESS_REFRESH_SECONDS:
        return
    _last_progress[job_id] = now
    job = session.get(JobRecord, job_id)
    if job is None:
        return
    counts = compute_counts(session, job_id, _stages_of(job))
    session.execute(
        update(JobRecord)
        .where(JobRecord.id == job_id, JobRecord.status.in_(ACTIVE_JOB))
        .values(counts=counts, updated_at=utcnow())
    )


def finish_if_done(session: Session, job_id: str) -> bool:
    """Mark an active job succeeded when none of its batches is open; True if this call did.

    One conditional UPDATE decides, so of two workers finishing the last batches at once at
    least one sees the other's commit; doing it twice writes the same result.
    """
    open_batches = (
        select(BatchRecord.id)
        .where(BatchRecord.job_id == job_id, BatchRecord.status.in_(OPEN_BATCH))
        .exists()
    )
    done = session.execute(
        update(JobRecord)
        .where(JobRecord.id == job_id, JobRecord.status.in_(ACTIVE_JOB), ~open_batches)
        .values(status=JobStatus.succeeded, finished_at=utcnow(), updated_at=utcnow())
    )
    if not done.rowcount:  # type: ignore[attr-defined]
        return False
    _store_final_counts(session, job_id)
    return True


def fail_job(session: Session, job_id: str, error: str) -> None:
    """Fail an active job with `error` and cancel its open batches (no new batch starts)."""
    failed = session.execute(
        update(JobRecord)
        .where(JobRecord.id == job_id, JobRecord.status.in_(ACTIVE_JOB))
        .values(status=JobStatus.failed, error=error, finished_at=utcnow(), updated_at=utcnow())
    )
    if failed.rowcount:  # type: ignore[attr-defined]
        _close_open_batches(session, job_id)
        _store_final_counts(session, job_id)


def recover_unfinished(
    session_factory: sessionmaker[Session], settings: Settings | None = None
) -> int:
    """Re-enqueue the open batches of every active job; returns how many tasks were sent.

    Run when a worker or `serve` starts: messages of a queue that died with its process, or
    held by a worker that was killed, are lost, but the database still knows what is left.
    A batch that is also still queued runs once; its second copy finds nothing to do. Active
    jobs with no open batch left (their finisher died) are finished here.
    """
    from service.queue.app import GENERATE_TASK, VERIFY_TASK, celery_for, send_batches

    with session_factory() as session:
        rows = session.execute(
            select(BatchRecord.id, BatchRecord.status, BatchRecord.job_id)
            .join(JobRecord, JobRecord.id == BatchRecord.job_id)
            .where(JobRecord.status.in_(ACTIVE_JOB), BatchRecord.status.in_(OPEN_BATCH))
            .order_by(JobRecord.created_at, BatchRecord.index)
        ).all()
        with_open = {row.job_id for row in rows}
        active = session.scalars(select(JobRecord.id).where(JobRecord.status.in_(ACTIVE_JOB)))
        for job_id in set(active) - with_open:
            finish_if_done(session, job_id)
        session.commit()
    app = celery_for(settings or get_settings())
    planned = [row.id for row in rows if row.status == BatchStatus.planned]
    generated = [row.id for row in rows if row.status == BatchStatus.generated]
    return send_batches(app, GENERATE_TASK, planned) + send_batches(app, VERIFY_TASK, generated)


def _close_open_batches(session: Session, job_id: str) -> None:
    from service.pipeline import dedup  # here: it loads datasketch, which the API needs only now

    session.execute(
        update(BatchRecord)
        .where(BatchRecord.job_id == job_id, BatchRecord.status.in_(OPEN_BATCH))
        .values(status=BatchStatus.cancelled, updated_at=utcnow())
    )
    # Verified batches above a closed one were waiting for it to be de-duplicated first.
    dedup.advance(session, job_id)


def _store_final_counts(session: Session, job_id: str) -> None:
    job = session.get(JobRecord, job_id)
    if job is None:
        return
    counts = compute_counts(session, job_id, _stages_of(job))
    session.execute(update(JobRecord).where(JobRecord.id == job_id).values(counts=counts))
    _last_progress.pop(job_id, None)


def _stages_of(job: JobRecord) -> list[str]:
    stages = job.spec.get("verify", [])
    return [str(stage) for stage in stages] if isinstance(stages, list) else []
