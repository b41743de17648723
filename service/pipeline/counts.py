"""A job's funnel: counted from its sample, verdict and batch rows, refreshed while it runs and
stored when it ends."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from service.db.models import (
    ACTIVE_JOB,
    BatchRecord,
    JobRecord,
    SampleRecord,
    SampleStatus,
    VerdictRecord,
    utcnow,
)
from service.errors import NotFound
from service.pipeline.tally import sum_tallies
from verifiers.stages import stage_class

# Workers refresh a running job's counts at most this often (the query scans the job's rows).
PROGRESS_REFRESH_SECONDS = 2.0

# Sample ids shown per rejection reason in a job's counts.
EXAMPLES_PER_REASON = 5


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


SERVER_USAGE_FIELDS = ("requests", "prompt_tokens", "completion_tokens")


def generation_usage(per_batch: Iterable[dict[str, Any] | None]) -> dict[str, Any] | None:
    """The job's LLM usage summed over its generated batches, with the engine's completion
    tokens/s, in all and per server (each server's completion tokens over the same seconds, so
    the servers' figures add up to the job's); None when no batch reported usage (generators
    without an LLM)."""
    total: dict[str, float] = dict.fromkeys(USAGE_FIELDS, 0)
    failures: dict[str, int] = {}
    servers: dict[str, dict[str, int]] = {}
    seen = False
    for usage in per_batch:
        if not usage:
            continue
        seen = True
        for name in USAGE_FIELDS:
            total[name] += usage.get(name, 0) or 0
        for kind, n in (usage.get("failures") or {}).items():
            failures[kind] = failures.get(kind, 0) + n
        for url, answered in (usage.get("servers") or {}).items():
            server = servers.setdefault(url, dict.fromkeys(SERVER_USAGE_FIELDS, 0))
            for name in SERVER_USAGE_FIELDS:
                server[name] += answered.get(name, 0) or 0
    if not seen:
        return None
    wall = total["wall_s"]

    def per_s(tokens: float) -> float:
        return round(tokens / wall, 1) if wall else 0.0

    return {
        **{name: int(total[name]) for name in USAGE_FIELDS if name != "wall_s"},
        "wall_s": round(wall, 3),
        "completion_tokens_per_s": per_s(total["completion_tokens"]),
        "failures": failures,
        "servers": {
            url: {**server, "completion_tokens_per_s": per_s(server["completion_tokens"])}
            for url, server in sorted(servers.items())
        },
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
    entries = [
        {
            "stage": stage,
            "reason": reason,
            "samples": n,
            "examples": examples.get((stage, reason), []),
        }
        for stage, reason, n in groups
    ]
    return _ranked(entries, stages)


def _ranked(entries: list[dict[str, Any]], stages: list[str]) -> list[dict[str, Any]]:
    """Rejection entries, most common first, then in stage order."""
    order = {stage: i for i, stage in enumerate(stages)}

    def rank(entry: dict[str, Any]) -> tuple[int, int, str, str]:
        stage, reason = entry["stage"], entry["reason"]
        return (-entry["samples"], order.get(stage, len(order)), stage or "", reason or "")

    return sorted(entries, key=rank)


def progress_counts(session: Session, job_id: str, stages: list[str]) -> dict[str, Any]:
    """The job's funnel summed from its batches' tallies (`service.pipeline.tally`): the same
    figures as `compute_counts` for a job whose last stage is not ordered (dedup judges samples
    of batches stored earlier, which their tallies do not follow), at a cost that grows with
    the number of batches, not of samples."""
    rows = session.execute(
        select(BatchRecord.status, BatchRecord.tally, BatchRecord.usage)
        .where(BatchRecord.job_id == job_id)
        .order_by(BatchRecord.index)
    ).all()
    total = sum_tallies((tally for _, tally, _ in rows if tally), EXAMPLES_PER_REASON)
    counts = empty_counts(stages)
    for name in ("generated", "accepted", "rejected"):
        counts[name] = total[name]
    for stage, counted in total["by_stage"].items():
        counts["by_stage"].setdefault(stage, {"passed": 0, "rejected": 0}).update(counted)
    batches: dict[str, int] = {}
    for status, _, _ in rows:
        batches[status] = batches.get(status, 0) + 1
    counts["batches"] = batches
    counts["generation"] = generation_usage(usage for _, _, usage in rows)
    counts["funnel"] = funnel_steps(counts["generated"], counts["by_stage"], counts["accepted"])
    counts["rejections"] = _ranked(total["rejections"], stages)
    counts["by_reason"] = _by_reason(counts["rejections"])
    return counts


def refresh_counts(session: Session, job_id: str) -> dict[str, Any]:
    """Recount the job's funnel from its rows and store it in the job; returns the counts."""
    job = session.get(JobRecord, job_id)
    if job is None:
        raise NotFound(f"job '{job_id}' does not exist; list the jobs with GET /v1/jobs")
    counts = compute_counts(session, job_id, stages_of(job))
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
    stages = stages_of(job)
    ordered = bool(stages) and stage_class(stages[-1]).ordered
    count = compute_counts if ordered else progress_counts
    counts = count(session, job_id, stages)
    session.execute(
        update(JobRecord)
        .where(JobRecord.id == job_id, JobRecord.status.in_(ACTIVE_JOB))
        .values(counts=counts, updated_at=utcnow())
    )


def store_final_counts(session: Session, job_id: str) -> None:
    job = session.get(JobRecord, job_id)
    if job is None:
        return
    counts = compute_counts(session, job_id, stages_of(job))
    session.execute(update(JobRecord).where(JobRecord.id == job_id).values(counts=counts))
    _last_progress.pop(job_id, None)


def stages_of(job: JobRecord) -> list[str]:
    stages = job.spec.get("verify", [])
    return [str(stage) for stage in stages] if isinstance(stages, list) else []
