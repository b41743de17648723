"""One batch's way through a job: generate its samples, verify them, store what came out.

Each step is idempotent. A task first takes the batch step's lease (`service.pipeline.leases`),
so a second copy of the message arriving while the first runs does nothing; it then moves the
batch on with a conditional UPDATE (planned -> generated, generated -> verified, or planned ->
verified where one task does both) in the same transaction that writes its rows, so of two
copies only one commits; and it replaces the batch's rows (deterministic ids) instead of adding
to them. The slow part, calling the generator or the verifiers, runs outside any transaction.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select, text, update
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
from service.pipeline.tally import Outcome, generated_tally, verified_tally
from service.pipeline.templates_root import (
    DEFAULT_TEMPLATES_ROOT,
    with_templates_dir_resolved,
    without_server_paths,
)
from service.pipeline.tool_api import MockToolApi
from service.settings import Settings
from unified.errors import ActionForgeError
from unified.model import Sample, Tool
from unified.sample_json import SampleDumper, dump_layout
from verifiers.judge_calibration import DEFAULT_MIN_ACCURACY as DEFAULT_JUDGE_MIN_ACCURACY
from verifiers.stages import (
    PipelineResult,
    Stage,
    StageContext,
    check_stage_options,
    run_stages,
    stage_class,
)
from verifiers.verdict import Verdict

log = logging.getLogger(__name__)

DEFAULT_HELDOUT_FRACTION: float = Settings.model_fields["train_heldout_fraction"].default
# A batch started this many times without finishing (worker lost, time limit, errors) fails.
MAX_ATTEMPTS = 6


# The tables themselves, for rows written many at a time: an INSERT on a table skips the ORM's
# bulk insert, which adds per-row work these rows need none of.
_SAMPLES = cast(Table, SampleRecord.__table__)
_VERDICTS = cast(Table, VerdictRecord.__table__)


class BatchAbandoned(ActionForgeError):
    """A batch was started too often without finishing; retrying it again cannot help."""


_generators: dict[type[Generator], Generator] = {}
_stages: dict[type[Stage], Stage] = {}


def _generator(name: str) -> Generator:
    # One instance per worker process and class (a name registered anew gets its new class):
    # generators may load templates or models once.
    cls = load_generator(name)
    if cls not in _generators:
        generator = cls()
        # A generator that drafts conversations asks the catalog's mock API for the results
        # of their calls, one conversation state per conversation as execution plays them
        # (generators do not import verifiers: the API is handed down).
        use_tool_api = getattr(generator, "use_tool_api", None)
        if callable(use_tool_api):
            use_tool_api(MockToolApi)
        _generators[cls] = generator
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
    verify_at_once: bool = False,
    judge_min_accuracy: float = DEFAULT_JUDGE_MIN_ACCURACY,
) -> BatchStatus | None:
    """Generate a planned batch's samples and store them: `generated` when stored now (verify
    it next). Samples of the held-out split (`heldout_fraction`) are never given to the
    generator as examples; a `templates_dir` option names a folder under `templates_root`.

    With `verify_at_once`, the job's stages judge the samples first, as `verify_batch` would,
    and one transaction stores them with their verdicts: `verified` then. Written once, a
    sample costs the database one row instead of a row and its update, and the batch one step
    instead of two. Where the verification stops on an unexpected exception (a stage's bug, the
    soft time limit), the samples are stored `generated` all the same, for a verify task.

    Returns None without work when the batch is unknown, not planned any more, its job is
    finished (cancelled, failed), or another task holds its lease (`claim`); None too when
    verifying at once found the job's judge untrusted (the job is failed then). Raises
    `ActionForgeError` for a job that cannot be done (a catalog without tools, a generator
    refusing the spec) and whatever the generator raises.
    """
    with sessions() as session:
        loaded = _load(session, batch_id, BatchStatus.planned)
        if loaded is None:
            return None
        batch, job = loaded
        claim = claim or BatchClaim()
        if not _start_attempt(session, batch, BatchStatus.planned, claim):
            return None
        session.execute(
            update(JobRecord)
            .where(JobRecord.id == job.id, JobRecord.status == JobStatus.queued)
            .values(status=JobStatus.running, started_at=utcnow(), updated_at=utcnow())
        )
        _commit_without_waiting_for_disk(session)
        spec = JobSpec.model_validate(job.spec)
        catalog = _catalog(session, job)
        tools = _tools(job, catalog)
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
        samples = [_with_id(sample, f"{prefix}{i}") for i, sample in enumerate(samples)]
        if verify_at_once:
            try:
                verified = _verify_generated(
                    sessions,
                    session,
                    batch,
                    job,
                    spec,
                    catalog,
                    samples,
                    usage,
                    claim,
                    judge_min_accuracy,
                )
            except ActionForgeError:
                raise
            except Exception as exc:
                session.rollback()
                log.warning(
                    "batch %s: verification in the generate task stopped (%s: %s); storing "
                    "the samples for the verify queue",
                    batch.id,
                    type(exc).__name__,
                    exc,
                )
            else:
                return BatchStatus.verified if verified else None
        dumper = SampleDumper()
        rows = [_sample_row(batch, spec, sample, i, dumper) for i, sample in enumerate(samples)]
        if not _store_generated(session, batch, rows, usage):
            return None
        count_generated(spec.generator, len(rows))
        return BatchStatus.generated


def _verify_generated(
    sessions: Sessions,
    session: Session,
    batch: BatchRecord,
    job: JobRecord,
    spec: JobSpec,
    catalog: CatalogRecord,
    samples: list[Sample],
    usage: dict[str, Any] | None,
    claim: BatchClaim,
    judge_min_accuracy: float,
) -> bool:
    """Judge a batch just generated and store its samples with their verdicts (planned ->
    verified); True when stored now, False when another task stored the batch first or the
    job's judge is untrusted (the job failed)."""
    context = _stage_context(job, spec, catalog)
    with renewing(sessions, batch.id, claim):
        if not judge_trusted(session, job, spec, context, judge_min_accuracy):
            return False
        sample_ids = [sample.id for sample in samples]
        pipeline, waiting = _judge(spec, samples, sample_ids, context)
    return _store_verified_at_once(session, batch, spec, sample_ids, pipeline, waiting, usage)


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
        context = _stage_context(job, spec, _catalog(session, job))
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
            pipeline, waiting = _judge(spec, samples, sample_ids, context)
        return _store_verdicts(session, batch, sample_ids, pipeline, waiting, spec.generator)


def _stage_context(job: JobRecord, spec: JobSpec, catalog: CatalogRecord) -> StageContext:
    context = StageContext.for_catalog(_tools(job, catalog), catalog.document)
    context.options = {
        name: check_stage_options(name, options) for name, options in spec.stage_options.items()
    }
    return context


def _judge(
    spec: JobSpec, samples: list[Sample], sample_ids: Sequence[str], context: StageContext
) -> tuple[PipelineResult, dict[str, bytes] | None]:
    """The job's stages over the samples; and for a job whose last stage is dedup, the
    fingerprints of the samples that passed every other stage (None for other jobs)."""
    names = list(spec.verify)
    ordered = dedup.ordered_stage(names)
    stages = [_stage(name) for name in (names[:-1] if ordered else names)]
    pipeline = run_stages(stages, samples, context)
    observe_stage_seconds(pipeline.seconds)
    if ordered is None:
        return pipeline, None
    survivors = pipeline.survivors()
    return pipeline, {sample_ids[i]: ordered.prepare(pipeline.samples[i]) for i in survivors}


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


def _with_id(sample: Sample, sample_id: str) -> Sample:
    return sample if sample.id == sample_id else sample.model_copy(update={"id": sample_id})


def _sample_row(
    batch: BatchRecord,
    spec: JobSpec,
    sample: Sample,
    index: int,
    dumper: SampleDumper,
    outcome: Outcome = (SampleStatus.generated, None, None),
    fingerprint: bytes | None = None,
) -> dict[str, Any]:
    """The row of the batch's `index`-th sample (generated, unless an outcome is given)."""
    status, stage, reason = outcome
    return {
        "id": sample.id,
        "job_id": batch.job_id,
        "batch_id": batch.id,
        "position": batch_position_offset(spec, batch) + index,
        "status": status,
        "stage": stage,
        "reason": reason,
        "fingerprint": fingerprint,
        "data": dumper.dump(sample),
        "layout": dump_layout(),
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
    tally = generated_tally(len(rows))
    if not _move_batch(session, batch, BatchStatus.generated, usage=usage, tally=tally):
        return False
    _delete_batch_rows(session, batch)
    if rows:
        session.execute(insert(_SAMPLES), rows)
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
    outcomes = _sample_outcomes(sample_ids, pipeline, waiting)
    tally = verified_tally(sample_ids, pipeline.verdicts, outcomes, EXAMPLES_PER_REASON)
    # Holding the job's row while storing makes the batches of a job store one at a time, so
    # whoever stores the last open batch sees every other batch's commit and finishes the job.
    lock_job(session, batch.job_id)
    if not _move_batch(session, batch, BatchStatus.verified, tally=tally):
        return False
    in_batch = select(SampleRecord.id).where(SampleRecord.batch_id == batch.id)
    session.execute(delete(VerdictRecord).where(VerdictRecord.sample_id.in_(in_batch)))
    if waiting is not None:
        dedup.forget(session, batch.id)  # keys of an earlier verification of this batch
    _insert_verdicts(session, sample_ids, pipeline)
    dumper = SampleDumper()
    changed = [
        {"id": sid, "data": dumper.dump(sample), "layout": dump_layout()}
        for sid, sample, is_changed in zip(
            sample_ids, pipeline.samples, pipeline.changed, strict=True
        )
        if is_changed
    ]
    if changed:  # by primary key: one statement, executed for each row
        session.execute(update(SampleRecord), changed)
    # One UPDATE per outcome (accepted, or rejected by a stage for a reason), not one per sample.
    by_outcome: dict[Outcome, list[str]] = {}
    for sample_id, outcome in zip(sample_ids, outcomes, strict=True):
        by_outcome.setdefault(outcome, []).append(sample_id)
    for (status, stage, reason), ids in by_outcome.items():
        session.execute(
            update(SampleRecord)
            .where(SampleRecord.id.in_(ids))
            .values(status=status, stage=stage, reason=reason, fingerprint=None)
            .execution_options(synchronize_session=False)
        )
    if waiting:
        session.execute(
            update(SampleRecord),
            [{"id": sid, "fingerprint": fingerprint} for sid, fingerprint in waiting.items()],
        )
    _count_and_move_on(session, batch, pipeline, outcomes, generator)
    session.commit()
    return True


def _store_verified_at_once(
    session: Session,
    batch: BatchRecord,
    spec: JobSpec,
    sample_ids: Sequence[str],
    pipeline: PipelineResult,
    waiting: dict[str, bytes] | None,
    usage: dict[str, Any] | None,
) -> bool:
    """Store a planned batch's samples (`sample_ids`) as the stages left them, with their
    outcomes and verdicts, in one transaction (planned -> verified); False when another task
    stored it."""
    outcomes = _sample_outcomes(sample_ids, pipeline, waiting)
    tally = verified_tally(sample_ids, pipeline.verdicts, outcomes, EXAMPLES_PER_REASON)
    lock_job(session, batch.job_id)  # as in _store_verdicts
    if not _move_batch(session, batch, BatchStatus.verified, tally=tally, usage=usage):
        return False
    _delete_batch_rows(session, batch)
    if waiting is not None:
        dedup.forget(session, batch.id)
    dumper = SampleDumper()
    fingerprints = waiting or {}
    rows = [
        {
            **_sample_row(batch, spec, sample, i, dumper, outcome, fingerprints.get(sample_id)),
            "id": sample_id,  # the row's id, whatever a stage did to the sample's
        }
        for i, (sample_id, sample, outcome) in enumerate(
            zip(sample_ids, pipeline.samples, outcomes, strict=True)
        )
    ]
    if rows:
        session.execute(insert(_SAMPLES), rows)
    _insert_verdicts(session, sample_ids, pipeline)
    _count_and_move_on(session, batch, pipeline, outcomes, spec.generator)
    session.commit()
    count_generated(spec.generator, len(rows))
    return True


def _move_batch(session: Session, batch: BatchRecord, to: BatchStatus, **values: Any) -> bool:
    """Move the batch on from the status it was loaded in to `to`, its lease let go, with
    `values` (tally, usage); False, rolled back, when it left that status meanwhile (another
    copy of the task stored it, or the job was cancelled)."""
    moved = session.execute(
        update(BatchRecord)
        .where(BatchRecord.id == batch.id, BatchRecord.status == batch.status)
        .values(status=to, attempts=0, error=None, updated_at=utcnow(), **values)
        .values(step_done_values())
    )
    if not moved.rowcount:  # type: ignore[attr-defined]
        session.rollback()
        return False
    return True


def _delete_batch_rows(session: Session, batch: BatchRecord) -> None:
    # Replace, never add: a re-run writes the same ids and leaves no stale verdicts behind.
    in_batch = select(SampleRecord.id).where(SampleRecord.batch_id == batch.id)
    session.execute(delete(VerdictRecord).where(VerdictRecord.sample_id.in_(in_batch)))
    session.execute(delete(SampleRecord).where(SampleRecord.batch_id == batch.id))


def _sample_outcomes(
    sample_ids: Sequence[str], pipeline: PipelineResult, waiting: dict[str, bytes] | None
) -> list[Outcome]:
    waiting = waiting or {}
    return [
        _WAITING if sample_id in waiting else _outcome(judged)
        for sample_id, judged in zip(sample_ids, pipeline.verdicts, strict=True)
    ]


def _insert_verdicts(session: Session, sample_ids: Sequence[str], pipeline: PipelineResult) -> None:
    now = utcnow()
    rows = [
        {
            **v.model_dump(include={"stage", "accepted", "reason", "detail"}),
            "sample_id": sid,
            "created_at": now,
        }
        for sid, judged in zip(sample_ids, pipeline.verdicts, strict=True)
        for v in judged
    ]
    if rows:
        session.execute(insert(_VERDICTS), rows)


def _count_and_move_on(
    session: Session,
    batch: BatchRecord,
    pipeline: PipelineResult,
    outcomes: Sequence[Outcome],
    generator: str,
) -> None:
    """After a batch's verdicts: count them (on commit), let dedup judge the batches whose
    turn came, finish the job when this was its last open batch, else refresh its progress."""
    count_verdicts(session, (verdict for judged in pipeline.verdicts for verdict in judged))
    counted = Counter(outcomes)
    count_outcomes(session, generator, ((*outcome, n) for outcome, n in counted.items()))
    dedup.advance(session, batch.job_id, batch)
    if not finish_if_done(session, batch.job_id):
        refresh_progress(session, batch.job_id)


# A sample that passed every stage before a last dedup stage: undecided until dedup judges it.
_WAITING: Outcome = (SampleStatus.generated, None, None)


def _outcome(verdicts: list[Verdict]) -> Outcome:
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
