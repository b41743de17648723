"""What the job engine counts as it works: samples generated, accepted and rejected (by stage and
reason), each stage's verdicts, the seconds generation and each stage take per batch, and the
rows exports write.

Counts are made per batch, from counts the engine has anyway, never per sample. Outcomes are
counted when the transaction that stores them commits (`count_on_commit`), so a step that rolls
back (another copy of its task stored first) counts nothing, and a sample is counted once.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable, Sequence

from prometheus_client import Counter, Histogram
from sqlalchemy import event
from sqlalchemy.orm import Session

from verifiers.verdict import Verdict

# Seconds, for a batch: from a format check of a few samples to a slow LLM judge.
_BATCH_SECONDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

GENERATED = Counter(
    "actionforge_samples_generated",
    "Samples generated and stored, by generator.",
    ["generator"],
)
ACCEPTED = Counter(
    "actionforge_samples_accepted",
    "Samples that passed every verification stage of their job, by generator.",
    ["generator"],
)
REJECTED = Counter(
    "actionforge_samples_rejected",
    "Samples rejected, by the stage that rejected them and its reason code.",
    ["stage", "reason"],
)
STAGE_VERDICTS = Counter(
    "actionforge_stage_verdicts",
    "Verdicts of each verification stage on the samples that reached it: passed or rejected.",
    ["stage", "outcome"],
)
STAGE_SECONDS = Histogram(
    "actionforge_stage_duration_seconds",
    "Seconds a verification stage took over one batch (the samples of the batch that reached it).",
    ["stage"],
    buckets=_BATCH_SECONDS,
)
GENERATION_SECONDS = Histogram(
    "actionforge_generation_duration_seconds",
    "Seconds the generator took to write one batch, by generator.",
    ["generator"],
    buckets=_BATCH_SECONDS,
)
EXPORT_ROWS = Counter(
    "actionforge_export_rows",
    "Rows written by dataset exports (GET /v1/jobs/{id}/export), by export format.",
    ["format"],
)

_PENDING = "actionforge_metrics_pending"
Key = tuple[Counter, tuple[str, ...]]


def count_on_commit(session: Session, metric: Counter, labels: Sequence[str], amount: int) -> None:
    """Add `amount` to `metric{labels}` when `session` next commits; nothing if it rolls back."""
    if amount:
        pending: Tally[Key] = session.info.setdefault(_PENDING, Tally())
        pending[(metric, tuple(labels))] += amount


@event.listens_for(Session, "after_commit")
def _publish(session: Session) -> None:
    pending: Tally[Key] | None = session.info.pop(_PENDING, None)
    for (metric, labels), amount in (pending or {}).items():
        metric.labels(*labels).inc(amount)


@event.listens_for(Session, "after_soft_rollback")
def _discard(session: Session, _previous_transaction: object) -> None:
    session.info.pop(_PENDING, None)


def count_generated(generator: str, samples: int) -> None:
    """A batch of `samples` samples stored (counted after its commit)."""
    if samples:
        GENERATED.labels(generator).inc(samples)


def count_outcomes(
    session: Session, generator: str, outcomes: Iterable[tuple[str, str | None, str | None, int]]
) -> None:
    """Samples decided in `session`'s transaction: (status, stage, reason, samples) each, as the
    engine stores them; samples still undecided (waiting for dedup) are left out."""
    for status, stage, reason, samples in outcomes:
        if status == "accepted":
            count_on_commit(session, ACCEPTED, (generator,), samples)
        elif status == "rejected":
            count_on_commit(session, REJECTED, (stage or "", reason or ""), samples)


def count_verdicts(session: Session, verdicts: Iterable[Verdict]) -> None:
    """Every stage's verdicts stored in `session`'s transaction, by stage and outcome."""
    tally = Tally((verdict.stage, verdict.accepted) for verdict in verdicts)
    for (stage, accepted), samples in tally.items():
        outcome = "passed" if accepted else "rejected"
        count_on_commit(session, STAGE_VERDICTS, (stage, outcome), samples)


def observe_stage_seconds(seconds: dict[str, float]) -> None:
    """The seconds each stage took over one batch."""
    for stage, taken in seconds.items():
        STAGE_SECONDS.labels(stage).observe(taken)


def observe_generation_seconds(generator: str, seconds: float) -> None:
    """The seconds the generator took over one batch."""
    GENERATION_SECONDS.labels(generator).observe(seconds)


def count_export_rows(export_format: str, rows: int) -> None:
    """Rows an export wrote (one chunk's)."""
    if rows:
        EXPORT_ROWS.labels(export_format).inc(rows)
