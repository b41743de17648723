"""One batch's way through a job: generate its samples, verify them, store what came out.

Each step is idempotent. A task first takes the batch step's lease (`service.pipeline.leases`),
so a second copy of the message arriving while the first runs does nothing; it then moves the
batch on with a conditional UPDATE (planned -> generated, generated -> verified) in the same
transaction that writes its rows, so of two copies only one commits; and it replaces the
batch's rows (deterministic ids) instead of adding to them. The slow part, calling the
generator or the verifiers, runs outside any transaction.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.orm import Session

from generators.base import GenerationRequest, Generator, load_generator
from service.db.engine import Sessions
from service.db.models import (
    ACTIVE_JOB,
    OPEN_BATCH,
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
from service.errors import InvalidRequest
from service.metrics.recorded import (
    count_generated,
    count_outcomes,
    count_verdicts,
    observe_generation_seconds,
    observe_stage_seconds,
)
from service.pipeline import dedup
from service.pipeline.catalog_examples import with_catalog_examples
from service.pipeline.counts import EXAMPLES_PER_REASON, refresh_progress
from service.pipeline.judge_calibration import judge_trusted
from service.pipeline.leases import BatchClaim, claim_step, renewing, step_done_values
from service.pipeline.lifecycle import fail_job, finish_if_done, lock_job
from service.pipeline.spec import JobSpec
from service.pipeline.tally import generated_tally, verified_tally
from service.pipeline.templates_root import (
    DEFAULT_TEMPLATES_ROOT,
    with_templates_dir_resolved,
    without_server_paths,
)
from service.settings import Settings
from unified.errors import ActionForgeError
from unified.model import Sample, Tool
from verifiers.judge_calibration import DEFAULT_MIN_ACCURACY as DEFAULT_JUDGE_MIN_ACCURACY
from verifiers.mock_api import MockApi
from verifiers.stages import (
    PipelineResult,
    Stage,
    StageContext,
    check_stage_options,
    run_stages,
    stage_class,
)
from verifiers.verdict import Verdict

DEFAULT_HELDOUT_FRACTION: float = Settings.model_fields["train_heldout_fraction"].default
# A batch started this many times without finishing (worker lost, time limit, errors) fails.
MAX_ATTEMPTS = 6


class BatchAbandoned(ActionForgeError):
    """A batch was started too often without finishing; retrying it again cannot help."""


_generators: dict[type[Generator], Generator] = {}
_stages: dict[type[Stage], Stage] = {}


def _generator(name: str) -> Generator:
    # One instance per worker process and class (a name registered anew gets its new class):
    # generators may load templates or models once.
    cls = load_generator(name)
    if cls not in _generators:
        # Generators do not import verifiers: one that runs calls (the llm generator's
        # multi_turn style) is given the catalog's mock API here.
        takes_api = getattr(cls, "takes_tool_api", False)
        _generators[cls] = cls(tool_api=MockApi) if takes_api else cls()  # type: ignore[call-arg]
    return _generators[cls]


def _stage(name: str) -> Stage:
    # One instance per worker process and class: the format stage caches compiled schemas.
    cls = stage_class(name)
    if cls not in _stages:
        _stages[cls] = cls()
    return _stages[cls]


def batch_position_offset(spec: JobSpec, batch: BatchRecord) -> int:
    """Position in the job of the batch's first sample (every batch but the last is full)."""
    return batch.index * (spec.batch_size or batch.size)


def generate_batch(
    sessions: Sessions,
    batch_id: str,
    heldout_fraction: float = DEFAULT_HELDOUT_FRACTION,
    templates_root: Path = DEFAULT_TEMPLATES_ROOT,
    claim: BatchClaim | None = None,
) -> bool:
    """Generate and store a planned batch's samples; True when stored now (verify it next).
    Samples of the held-out split (`heldout_fraction`) are never given to the generator as
    examples; a `templates_dir` option names a folder under `templates_root`.

    Returns False without work when the batch is unknown, not planned any more, its job is
    finished (cancelled, failed), or another task holds its lease (`claim`). Raises
    `ActionForgeError` for a job that cannot be done (a catalog without tools, a generator
    refusing the spec) and whatever the generator raises.
    """
    with sessions() as session:
        loaded = _load(session, batch_id, BatchStatus.planned)
        if loaded is None:
            return False
        batch, job = loaded
        claim = claim or BatchClaim()
        if not _start_attempt(session, batch, BatchStatus.planned, claim):
            return False
        session.execute(
            update(JobRecord)
            .where(JobRecord.id == job.id, JobRecord.status == JobStatus.queued)
            .values(status=JobStatus.running, started_at=utcnow(), updated_at=utcnow())
        )
        _commit_without_waiting_for_disk(session)
        spec = JobSpec.model_validate(job.spec)
        tools = _catalog_tools(session, job)
        options = with_catalog_examples(session, job, spec.generator_options, heldout_fraction)
        options = with_templates_dir_resolved(options, templates_root)
        session.commit()  # end the read transaction before the slow part (keeps objects loaded)

        prefix = f"{batch.id}-"
        request = GenerationRequest(
            n=batch.size,
            seed=batch.seed,
            styles=spec.styles,
            id_prefix=prefix,
            options=options,
        )
        try:
            with renewing(sessions, batch.id, claim):
                started = time.perf_counter()
                samples, usage = _generate(_generator(spec.generator), tools, request)
                observe_generation_seconds(spec.generator, time.perf_counter() - started)
        except ActionForgeError as exc:  # the job fails with this: say it without server paths
            exc.args = (without_server_paths(str(exc), templates_root),)
            raise
        if len(samples) > batch.size:
            raise RuntimeError(
                f"generator '{spec.generator}' returned {len(samples)} samples for a batch "
                f"of {batch.size}"
            )
        offset = batch_position_offset(spec, batch)
        rows = [
            _sample_row(batch, sample, f"{prefix}{i}", offset + i)
            for i, sample in enumerate(samples)
        ]
        stored = _store_generated(session, batch, rows, usage)
        if stored:
            count_generated(spec.generator, len(rows))
        return stored


def verify_batch(
    sessions: Sessions,
    batch_id: str,
    judge_min_accuracy: float = DEFAULT_JUDGE_MIN_ACCURACY,
    claim: BatchClaim | None = None,
) -> bool:
    """Run the job's stages over a generated batch and store the verdicts, and the samples as
    the stages left them (the execution stage adds the results of their calls), in one
    transaction; True when stored now.

    A job with the semantic stage has its judge calibrated first (`judge_calibration`); a judge
    below `judge_min_accuracy` (or the job's own min_accuracy) fails the job instead.

    A last dedup stage is left to `service.pipeline.dedup`, which judges batches in position order
    while the job's lock is held. Finishes the job when this was its last open batch, else refreshes
    its counts now and then.
    """
    with sessions() as session:
        loaded = _load(session, batch_id, BatchStatus.generated)
        if loaded is None:
            _finish_after_duplicate(session, batch_id)
            return False
        batch, job = loaded
        claim = claim or BatchClaim()
        if not _start_attempt(session, batch, BatchStatus.generated, claim):
            return False
        _commit_without_waiting_for_disk(session)
        spec = JobSpec.model_validate(job.spec)
        catalog = _catalog(session, job)
        context = StageContext.for_catalog(_tools(job, catalog), catalog.document)
        context.options = {
            name: check_stage_options(name, options) for name, options in spec.stage_options.items()
        }
        records = session.scalars(
            select(SampleRecord)
            .where(SampleRecord.batch_id == batch.id)
            .order_by(SampleRecord.position)
        ).all()
        samples = [Sample.model_validate(record.data) for record in records]
        sample_ids = [record.id for record in records]
        session.commit()
        with renewing(sessions, batch.id, claim):
            if not judge_trusted(session, job, spec, context, judge_min_accuracy):
                return False
            names = list(spec.verify)
            ordered = dedup.ordered_stage(names)
            stages = [_stage(name) for name in (names[:-1] if ordered else names)]
            pipeline = run_stages(stages, samples, context)
            observe_stage_seconds(pipeline.seconds)
            waiting: dict[str, bytes] = {}
            if ordered is not None:
                survivors = pipeline.survivors()
                waiting = {sample_ids[i]: ordered.prepare(pipeline.samples[i]) for i in survivors}
        return _store_verdicts(
            session,
            batch,
            sample_ids,
            pipeline,
            waiting if ordered is not None else None,
            spec.generator,
        )


def fail_batch(sessions: Sessions, batch_id: str, error: str) -> None:
    """Mark an open batch failed for good, and fail its job with the batch's error."""
    with sessions() as session:
        batch = session.get(BatchRecord, batch_id)
        if batch is None:
            return
        lock_job(session, batch.job_id)
        failed = session.execute(
            update(BatchRecord)
            .where(BatchRecord.id == batch_id, BatchRecord.status.in_(OPEN_BATCH))
            .values(
                status=BatchStatus.failed, error=error, updated_at=utcnow(), **step_done_values()
            )
        )
        if failed.rowcount:  # type: ignore[attr-defined]
            fail_job(session, batch.job_id, f"batch {batch.index} failed: {error}")
        session.commit()


def _load(
    session: Session, batch_id: str, expected: BatchStatus
) -> tuple[BatchRecord, JobRecord] | None:
    batch = session.get(BatchRecord, batch_id)
    if batch is None or batch.status != expected:
        return None
    job = session.get(JobRecord, batch.job_id)
    if job is None or job.status not in ACTIVE_JOB:
        return None
    return batch, job


def _start_attempt(
    session: Session, batch: BatchRecord, expected: BatchStatus, claim: BatchClaim
) -> bool:
    """Claim the batch step and count the attempt (not yet committed); False when another task
    holds it. Raises `BatchAbandoned` past MAX_ATTEMPTS."""
    attempts = claim_step(session, batch.id, expected, claim)
    if attempts is None:
        session.rollback()
        return False
    if attempts > MAX_ATTEMPTS:
        session.rollback()
        raise BatchAbandoned(
            f"batch {batch.index} was started {attempts - 1} times without finishing (its "
            "worker was lost, it ran past AF_TASK_TIME_LIMIT, or it kept failing); raise "
            "AF_TASK_TIME_LIMIT or lower the batch size, then submit the job again"
        )
    return True


def _commit_without_waiting_for_disk(session: Session) -> None:
    # Only a claim and counters live in this transaction: after a database crash a lost one
    # costs nothing (the status update that stores a step decides who stored it), and not
    # waiting for the WAL flush saves a disk sync per task on PostgreSQL.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))
    session.commit()


def _catalog(session: Session, job: JobRecord) -> CatalogRecord:
    catalog = session.get(CatalogRecord, job.catalog_id)
    if catalog is None:
        raise InvalidRequest(
            f"job {job.id}: its catalog '{job.catalog_id}' no longer exists; upload the catalog "
            "again and submit a new job"
        )
    return catalog


def _tools(job: JobRecord, catalog: CatalogRecord) -> list[Tool]:
    if not catalog.tools:
        raise InvalidRequest(
            f"job {job.id}: catalog '{catalog.id}' ({catalog.name}) has no tools to generate "
            "calls for; upload a catalog with at least one tool and submit the job again"
        )
    return [Tool.model_validate(tool) for tool in catalog.tools]


def _catalog_tools(session: Session, job: JobRecord) -> list[Tool]:
    return _tools(job, _catalog(session, job))


def _sample_row(
    batch: BatchRecord, sample: Sample, sample_id: str, position: int
) -> dict[str, Any]:
    if sample.id != sample_id:
        sample = sample.model_copy(update={"id": sample_id})
    return {
        "id": sample_id,
        "job_id": batch.job_id,
        "batch_id": batch.id,
        "position": position,
        "status": SampleStatus.generated,
        "stage": None,
        "reason": None,
        "data": sample.model_dump(mode="json", by_alias=True),
        "created_at": utcnow(),
    }


def _generate(
    generator: Generator, tools: Sequence[Tool], request: GenerationRequest
) -> tuple[list[Sample], dict[str, Any] | None]:
    """The generator's samples, and what they cost where the generator says (the llm
    generator: requests, tokens, seconds in the engine)."""
    samples, usage = generator.generate_with_usage(tools, request)
    return samples, usage.model_dump(mode="json") if usage is not None else None


def _store_generated(
    session: Session,
    batch: BatchRecord,
    rows: list[dict[str, Any]],
    usage: dict[str, Any] | None = None,
) -> bool:
    claimed = session.execute(
        update(BatchRecord)
        .where(BatchRecord.id == batch.id, BatchRecord.status == BatchStatus.planned)
        .values(
            status=BatchStatus.generated,
            attempts=0,
            error=None,
            usage=usage,
            tally=generated_tally(len(rows)),
            updated_at=utcnow(),
            **step_done_values(),
        )
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        session.rollback()  # another copy of this task stored it, or the job was cancelled
        return False
    # Replace, never add: a re-run writes the same ids and leaves no stale verdicts behind.
    session.execute(delete(SampleRecord).where(SampleRecord.batch_id == batch.id))
    if rows:
        session.execute(insert(SampleRecord).execution_options(render_nulls=True), rows)
    session.commit()
    return True


def _store_verdicts(
    session: Session,
    batch: BatchRecord,
    sample_ids: Sequence[str],
    pipeline: PipelineResult,
    waiting: dict[str, bytes] | None,
    generator: str,
) -> bool:
    """Store the verdicts and the changed samples. For a job whose last stage is dedup,
    `waiting` holds the fingerprints of the samples that passed every other stage, which
    `dedup.advance` judges; None for other jobs. Counted (`service.metrics`) on commit."""
    ordered = waiting is not None
    waiting = waiting or {}
    sample_outcomes = [
        _WAITING if sample_id in waiting else _outcome(judged)
        for sample_id, judged in zip(sample_ids, pipeline.verdicts, strict=True)
    ]
    tally = verified_tally(sample_ids, pipeline.verdicts, sample_outcomes, EXAMPLES_PER_REASON)
    # Holding the job's row while storing makes the batches of a job store one at a time, so
    # whoever stores the last open batch sees every other batch's commit and finishes the job.
    lock_job(session, batch.job_id)
    claimed = session.execute(
        update(BatchRecord)
        .where(BatchRecord.id == batch.id, BatchRecord.status == BatchStatus.generated)
        .values(
            status=BatchStatus.verified,
            attempts=0,
            error=None,
            tally=tally,
            updated_at=utcnow(),
            **step_done_values(),
        )
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        session.rollback()
        return False
    in_batch = select(SampleRecord.id).where(SampleRecord.batch_id == batch.id)
    session.execute(delete(VerdictRecord).where(VerdictRecord.sample_id.in_(in_batch)))
    if ordered:
        dedup.forget(session, batch.id)  # keys of an earlier verification of this batch
    now = utcnow()
    verdict_rows = [
        {
            **v.model_dump(include={"stage", "accepted", "reason", "detail"}),
            "sample_id": sid,
            "created_at": now,
        }
        for sid, judged in zip(sample_ids, pipeline.verdicts, strict=True)
        for v in judged
    ]
    if verdict_rows:
        session.execute(insert(VerdictRecord).execution_options(render_nulls=True), verdict_rows)
    changed = [
        {"id": sid, "data": sample.model_dump(mode="json", by_alias=True)}
        for sid, sample, is_changed in zip(
            sample_ids, pipeline.samples, pipeline.changed, strict=True
        )
        if is_changed
    ]
    if changed:  # by primary key: one statement, executed for each row
        session.execute(update(SampleRecord), changed)
    # One UPDATE per outcome (accepted, or rejected by a stage for a reason), not one per sample.
    outcomes: dict[tuple[str, str | None, str | None], list[str]] = {}
    for sample_id, outcome in zip(sample_ids, sample_outcomes, strict=True):
        outcomes.setdefault(outcome, []).append(sample_id)
    for (status, stage, reason), ids in outcomes.items():
        session.execute(
            update(SampleRecord)
            .where(SampleRecord.id.in_(ids))
            .values(status=status, stage=stage, reason=reason, fingerprint=None)
            .execution_options(synchronize_session=False)
        )
    count_verdicts(session, (verdict for judged in pipeline.verdicts for verdict in judged))
    count_outcomes(session, generator, ((*outcome, len(ids)) for outcome, ids in outcomes.items()))
    if waiting:
        session.execute(
            update(SampleRecord),
            [{"id": sid, "fingerprint": fingerprint} for sid, fingerprint in waiting.items()],
        )
    dedup.advance(session, batch.job_id, batch)
    if not finish_if_done(session, batch.job_id):
        refresh_progress(session, batch.job_id)
    session.commit()
    return True


# A sample that passed every stage before a last dedup stage: undecided until dedup judges it.
_WAITING: tuple[str, str | None, str | None] = (SampleStatus.generated, None, None)


def _outcome(verdicts: list[Verdict]) -> tuple[str, str | None, str | None]:
    """(status, stage, reason) of a sample from the verdicts of the stages it reached."""
    last = verdicts[-1] if verdicts else None
    if last is None:
        return SampleStatus.accepted, None, None
    if last.accepted:
        return SampleStatus.accepted, last.stage, None
    return SampleStatus.rejected, last.stage, last.reason


def _finish_after_duplicate(session: Session, batch_id: str) -> None:
    # A copy of a verify task whose batch is already verified: the first copy may have died
    # between storing the verdicts and finishing the job.
    batch = session.get(BatchRecord, batch_id)
    if batch is not None and batch.status == BatchStatus.verified:
        finish_if_done(session, batch.job_id)
        session.commit()
