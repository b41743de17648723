"""Ordered stages in the job engine (dedup): the same samples are kept however workers share a
job.

An ordered stage (`verifiers.stages.OrderedStage`; dedup is the built-in one) is run here, not in
the batch's pipeline: the registered stage's `prepare`, `lookup_keys` and `judge_in_order` do the
judging, this module keeps their state in the database (the `fingerprint` column holds what
`prepare` made, `dedup_keys` the keys, `dedup_frontier` how far the job got) and decides the
order. What follows describes dedup; any ordered stage runs the same way.

The rule: a sample is a duplicate when it matches (`verifiers.dedup.DedupIndex`: exact, or near
with the same calls) a sample kept before it, where "before" means in an earlier job on the same
catalog (the same document, by SHA-256, however often it was uploaded; jobs ordered by creation)
or at a lower position in the same job. Judging the samples one by one in that order and keeping
each sample that matches nothing kept gives one answer, whatever order the batches are verified
in. The engine computes exactly that answer:

- Dedup runs last (`verifiers.stages.check_stage_order`), so it judges only samples that passed
  every other stage. Those stages run outside any transaction, as before; the verify step also
  computes each surviving sample's fingerprint there and stores it with the sample, which stays
  `generated` (waiting for dedup).
- The job row holds a frontier: batches below it are de-duplicated. Whoever stores a batch's
  verdicts holds the job's lock (`lock_job`), and in the same transaction moves the frontier on
  over every batch that is verified (or failed, or cancelled: nothing to judge), judging each
  batch's waiting samples in position order. A batch verified before the batches below it waits
  for them; the worker that stores the last of those judges it. So batches are judged strictly in
  position order, each against everything kept before it, as the rule says. Cancelling or failing
  a job moves the frontier past the closed batches, so no verified sample is left waiting.
- The kept samples are not held in memory: each kept sample's lookup keys (`dedup_keys`: its
  exact key and one key per MinHash LSH band) are stored. To judge a batch, the kept samples of
  the scope that share a key with any of its samples are fetched with their fingerprints, a small
  index is rebuilt from them in order (earlier jobs first, then position), and the batch's
  samples are offered to it in position order. Samples the whole index would compare always
  share a key, so the small index decides as the whole one would.

Earlier jobs still running when a later job is judged contribute the samples they had kept by
then; jobs that did not run the dedup stage stored no keys and are not compared against.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from service.db.models import (
    BatchRecord,
    BatchStatus,
    DedupKeyRecord,
    JobRecord,
    SampleRecord,
    SampleStatus,
    VerdictRecord,
    utcnow,
)
from service.metrics.recorded import count_outcomes, count_verdicts, observe_stage_seconds
from service.pipeline.counts import stages_of
from service.pipeline.history import earlier_jobs_on_same_document
from verifiers.stages import OrderedStage, Stage, check_stage_options, stage_class
from verifiers.verdict import Verdict

# Batches read per query while moving the frontier, and lookup keys per IN (...) list.
_BATCH_PAGE = 64
_KEYS_PER_QUERY = 2000
_PASSABLE = (BatchStatus.verified, BatchStatus.failed, BatchStatus.cancelled)


_ordered: dict[type[Stage], OrderedStage] = {}


def ordered_stage(stages: Sequence[str]) -> OrderedStage | None:
    """The job's last stage when it is ordered (this module runs it), else None; one instance
    per process and class."""
    if not stages:
        return None
    cls = stage_class(stages[-1])
    if not cls.ordered:
        return None
    if cls not in _ordered:
        _ordered[cls] = cls()  # type: ignore[assignment]
    return _ordered[cls]


def advance(session: Session, job_id: str, stored: BatchRecord | None = None) -> int:
    """De-duplicate every batch of the job whose turn has come, in batch order; the new
    frontier. Call while holding the job's lock, after storing a batch's verdicts (`stored`)
    or closing batches; a job whose last stage is not dedup is left alone."""
    job = session.get(JobRecord, job_id)
    stage = ordered_stage(stages_of(job)) if job is not None else None
    if job is None or stage is None:
        return 0
    # Read again inside this transaction: another worker may have moved it since.
    frontier = session.scalar(select(JobRecord.dedup_frontier).where(JobRecord.id == job_id)) or 0
    if stored is not None and stored.index < frontier:
        # Verified again after its turn (only by hand: a verified batch is never claimed again).
        judge_batch(session, job, stage, stored.id)
    start = frontier
    while True:
        rows = session.execute(
            select(BatchRecord.id, BatchRecord.index, BatchRecord.status)
            .where(BatchRecord.job_id == job_id, BatchRecord.index >= frontier)
            .order_by(BatchRecord.index)
            .limit(_BATCH_PAGE)
        ).all()
        blocked = not rows
        for batch_id, _index, status in rows:
            if status not in _PASSABLE:
                blocked = True
                break
            if status == BatchStatus.verified:
                judge_batch(session, job, stage, batch_id)
            frontier += 1
        if blocked:
            break
    if frontier != start:
        session.execute(
            update(JobRecord).where(JobRecord.id == job_id).values(dedup_frontier=frontier)
        )
    return frontier


def judge_batch(session: Session, job: JobRecord, stage: OrderedStage, batch_id: str) -> None:
    """Judge the batch's samples waiting for the ordered stage against everything kept before
    them."""
    rows = session.execute(
        select(SampleRecord.id, SampleRecord.position, SampleRecord.fingerprint)
        .where(
            SampleRecord.batch_id == batch_id,
            SampleRecord.status == SampleStatus.generated,
            SampleRecord.fingerprint.is_not(None),
        )
        .order_by(SampleRecord.position)
    ).all()
    waiting = [(sample_id, raw) for sample_id, _, raw in rows if raw is not None]
    if not waiting:
        return
    keys = {sample_id: stage.lookup_keys(raw) for sample_id, raw in waiting}
    kept = _kept_before(session, job, stage.name, rows[0].position, keys)
    given = job.spec.get("stage_options", {}).get(stage.name, {})
    options = check_stage_options(stage.name, given)
    started = time.perf_counter()
    verdicts = stage.judge_in_order(waiting, kept, options)
    observe_stage_seconds({stage.name: time.perf_counter() - started})
    if len(verdicts) != len(waiting):
        raise RuntimeError(
            f"stage '{stage.name}' returned {len(verdicts)} verdicts for {len(waiting)} samples"
        )
    _store(session, stage.name, list(zip((i for i, _ in waiting), verdicts, strict=True)), keys)
    _count(session, job, stage.name, verdicts)


def _count(session: Session, job: JobRecord, stage: str, verdicts: Sequence[Verdict]) -> None:
    """Count the stage's verdicts and the samples they decided, once `session` commits."""
    count_verdicts(session, verdicts)
    kept = sum(1 for verdict in verdicts if verdict.accepted)
    rejected = Counter(str(verdict.reason) for verdict in verdicts if not verdict.accepted)
    outcomes: list[tuple[str, str | None, str | None, int]] = [
        (SampleStatus.accepted.value, stage, None, kept)
    ]
    outcomes += [(SampleStatus.rejected.value, stage, reason, n) for reason, n in rejected.items()]
    count_outcomes(session, str(job.spec.get("generator", "")), outcomes)


def _kept_before(
    session: Session,
    job: JobRecord,
    stage: str,
    position: int,
    keys: dict[str, list[tuple[int, int]]],
) -> list[tuple[str, bytes]]:
    """(id, fingerprint) of the kept samples before `position` of the job, or in an earlier job
    on the same catalog, that share a lookup key with any of `keys`: earlier jobs first, then
    by position."""
    earlier_jobs = earlier_jobs_on_same_document(job)
    scope = and_(
        # Kept by this stage (the keys of every ordered stage share one table).
        SampleRecord.stage == stage,
        or_(
            SampleRecord.job_id.in_(earlier_jobs),
            and_(SampleRecord.job_id == job.id, SampleRecord.position < position),
        ),
    )
    wanted = sorted({key for pairs in keys.values() for _, key in pairs})
    found: dict[str, tuple[Any, ...]] = {}
    for start in range(0, len(wanted), _KEYS_PER_QUERY):
        rows = session.execute(
            select(
                SampleRecord.id,
                SampleRecord.fingerprint,
                JobRecord.created_at,
                JobRecord.id,
                SampleRecord.position,
            )
            .join(DedupKeyRecord, DedupKeyRecord.sample_id == SampleRecord.id)
            .join(JobRecord, JobRecord.id == SampleRecord.job_id)
            .where(DedupKeyRecord.key.in_(wanted[start : start + _KEYS_PER_QUERY]), scope)
        ).all()
        for sample_id, stored, created_at, job_id, sample_position in rows:
            if stored is not None:
                found[sample_id] = (job_id == job.id, created_at, job_id, sample_position, stored)
    ordered = sorted(found.items(), key=lambda item: item[1][:4])
    return [(sample_id, row[4]) for sample_id, row in ordered]


def _store(
    session: Session,
    stage: str,
    verdicts: list[tuple[str, Verdict]],
    keys: dict[str, list[tuple[int, int]]],
) -> None:
    now = utcnow()
    session.execute(
        insert(VerdictRecord).execution_options(render_nulls=True),
        [
            {
                "sample_id": sample_id,
                "stage": stage,
                "accepted": verdict.accepted,
                "reason": verdict.reason,
                "detail": verdict.detail,
                "created_at": now,
            }
            for sample_id, verdict in verdicts
        ],
    )
    kept = [sample_id for sample_id, verdict in verdicts if verdict.accepted]
    by_reason: dict[str, list[str]] = {}
    for sample_id, verdict in verdicts:
        if not verdict.accepted:
            by_reason.setdefault(str(verdict.reason), []).append(sample_id)
    outcomes = [(SampleStatus.accepted, None, kept)] + [
        (SampleStatus.rejected, reason, ids) for reason, ids in by_reason.items()
    ]
    for status, reason, ids in outcomes:
        # Rejected samples keep no fingerprint: only kept ones are ever compared with again.
        dropped = {} if status == SampleStatus.accepted else {"fingerprint": None}
        if ids:
            session.execute(
                update(SampleRecord)
                .where(SampleRecord.id.in_(ids))
                .values(status=status, stage=stage, reason=reason, **dropped)
                .execution_options(synchronize_session=False)
            )
    rows = [
        {"sample_id": sample_id, "slot": slot, "key": key}
        for sample_id in kept
        for slot, key in keys[sample_id]
    ]
    if rows:
        session.execute(insert(DedupKeyRecord), rows)


def forget(session: Session, batch_id: str) -> None:
    """Drop the lookup keys of a batch's samples (before its verdicts are stored again)."""
    in_batch = select(SampleRecord.id).where(SampleRecord.batch_id == batch_id)
    session.execute(delete(DedupKeyRecord).where(DedupKeyRecord.sample_id.in_(in_batch)))
