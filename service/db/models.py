"""The database: catalogs, jobs, their batches, samples, verdicts and the dedup index.

The database is the source of truth; the queue only says which batch to work on next. Sample
ids are deterministic (job, batch, position), so a batch re-run after a crash overwrites its own
rows instead of adding new ones.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import DateTime

# Plain JSON, not JSONB: JSONB reorders object keys, and exports must give back the samples
# (schemas, arguments) exactly as they were written.
JsonType = JSON()


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """SQLite gives back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


FINISHED = {JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled}
ACTIVE_JOB = (JobStatus.queued, JobStatus.running)


class BatchStatus(StrEnum):
    planned = "planned"
    generated = "generated"
    verified = "verified"
    failed = "failed"
    cancelled = "cancelled"


OPEN_BATCH = (BatchStatus.planned, BatchStatus.generated)


class SampleStatus(StrEnum):
    generated = "generated"
    accepted = "accepted"
    rejected = "rejected"


class Base(DeclarativeBase):
    type_annotation_map = {  # noqa: RUF012
        dict[str, Any]: JsonType,
        list[Any]: JsonType,
        datetime: DateTime(timezone=True),
    }


class CatalogRecord(Base):
    """A loaded catalog: its normalised tools and the hash of the original document; for a
    Python module, also its source (`document`), which the execution stage runs."""

    __tablename__ = "catalogs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(512))
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str | None] = mapped_column(String(512))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    tools: Mapped[list[Any]]
    document: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class JobRecord(Base):
    """A generation job: its spec, status, error and the counts of its funnel."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    catalog_id: Mapped[str] = mapped_column(ForeignKey("catalogs.id"), index=True)
    spec: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.queued, index=True)
    error: Mapped[str | None] = mapped_column(Text)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Batches [0, dedup_frontier) are de-duplicated (see service.pipeline.dedup).
    dedup_frontier: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    judge_calibration: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    """How the semantic judge did on the job's calibration set
    (`verifiers.judge_calibration.JudgeCalibration`); None until it was calibrated, and for jobs
    without that stage."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BatchRecord(Base):
    """A slice of a job that one generate task and one verify task handle."""

    __tablename__ = "batches"
    __table_args__ = (UniqueConstraint("job_id", "index"),)

    id: Mapped[str] = mapped_column(String(48), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=BatchStatus.planned, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    usage: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    # What the batch added to its job's funnel (service.pipeline.tally), so a running job's
    # progress sums its batches instead of recounting its samples.
    tally: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    """What generating the batch cost (LLM requests, tokens, seconds); None for generators
    that report nothing."""
    sent_at: Mapped[datetime | None]
    """When a message for the batch's next step was last sent (or the step before it ended);
    the sweep re-sends a batch left idle past AF_BATCH_LEASE_SECONDS after it."""
    running_until: Mapped[datetime | None]
    """The lease of the task working on the batch's current step, renewed while it runs; a
    copy of the task arriving meanwhile does nothing."""
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    """The task (Celery task id, the same across its retries) holding that lease."""
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SampleRecord(Base):
    """One generated sample (unified JSON) and where verification left it."""

    __tablename__ = "samples"
    __table_args__ = (
        UniqueConstraint("job_id", "position"),
        Index("ix_samples_job_status_position", "job_id", "status", "position"),
        Index("ix_samples_job_reason", "job_id", "reason"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=SampleStatus.generated)
    stage: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]]
    # unified.sample_json.dump_layout() of the model that dumped `data`: the unified export
    # streams a row marked with the current one as it is stored, without a second look.
    layout: Mapped[str | None] = mapped_column(String(32))
    # verifiers.dedup.Fingerprint.to_bytes(), kept while the sample waits for the dedup stage.
    fingerprint: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class VerdictRecord(Base):
    """What one verification stage said about one sample."""

    __tablename__ = "verdicts"

    sample_id: Mapped[str] = mapped_column(
        ForeignKey("samples.id", ondelete="CASCADE"), primary_key=True
    )
    stage: Mapped[str] = mapped_column(String(32), primary_key=True)
    accepted: Mapped[bool]
    reason: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DedupKeyRecord(Base):
    """One lookup key of a sample the dedup stage kept (`DedupIndex.lookup_keys`: its exact key
    and one per MinHash band); later samples sharing a key are compared with it."""

    __tablename__ = "dedup_keys"
    __table_args__ = (Index("ix_dedup_keys_key", "key"),)

    sample_id: Mapped[str] = mapped_column(
        ForeignKey("samples.id", ondelete="CASCADE"), primary_key=True
    )
    slot: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    key: Mapped[int] = mapped_column(BigInteger)


class ModelVersionStatus(StrEnum):
    queued = "queued"
    training = "training"
    ready = "ready"
    failed = "failed"


ACTIVE_VERSION = (ModelVersionStatus.queued, ModelVersionStatus.training)
_ONE_ACTIVE_VERSION = text("status IN ('queued', 'training')")


class ModelVersionRecord(Base):
    """A LoRA adapter trained on a catalog's accepted samples, continuing its parent's adapter.

    At most one version of a catalog is queued or training (a partial unique index). The worker
    training it renews `lease_expires_at`; once that has passed, another worker may take the
    version over, and `attempt` (raised by each taker) fences off the one that lost it.
    """

    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("catalog_id", "version"),
        Index(
            "ix_model_versions_one_active",
            "catalog_id",
            unique=True,
            sqlite_where=_ONE_ACTIVE_VERSION,
            postgresql_where=_ONE_ACTIVE_VERSION,
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    catalog_id: Mapped[str] = mapped_column(ForeignKey("catalogs.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL")
    )
    base_model: Mapped[str] = mapped_column(Text)
    adapter_path: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=ModelVersionStatus.queued, index=True)
    error: Mapped[str | None] = mapped_column(Text)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    new_samples: Mapped[int] = mapped_column(Integer, default=0)
    replay_samples: Mapped[int] = mapped_column(Integer, default=0)
    heldout_samples: Mapped[int] = mapped_column(Integer, default=0)
    dropped_too_long: Mapped[int] = mapped_column(Integer, default=0)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ModelVersionSampleRecord(Base):
    """A sample a version was trained on as new data (replayed ones are not listed): later
    versions of the catalog count as new only samples that no ready version lists."""

    __tablename__ = "model_version_samples"

    version_id: Mapped[str] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    sample_id: Mapped[str] = mapped_column(
        ForeignKey("samples.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class LeaseRecord(Base):
    """A named lease one process holds at a time across the fleet (the batch sweep)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(128))
    expires_at: Mapped[datetime]


class WorkerSeenRecord(Base):
    """A worker process and when its sweep timer last said it was alive."""

    __tablename__ = "workers_seen"

    hostname: Mapped[str] = mapped_column(String(255), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(index=True)


class IdempotentRequestRecord(Base):
    """The first answer to a request that carried an Idempotency-Key, given again to a retry."""

    __tablename__ = "idempotent_requests"

    route: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]]
    location: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
