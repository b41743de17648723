"""Response bodies of the REST API: `XPublic` for one record, `XsPublic(data, count)` for a page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, computed_field, model_validator

from service.db.models import JobStatus, SampleStatus, as_utc
from service.pipeline.spec import JobSpec
from unified.model import Sample, Tool
from verifiers.judge_calibration import JudgeCalibration

UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]


class _Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Message(BaseModel):
    """An error or a notice: what happened and what to change."""

    detail: str


class Problem(BaseModel):
    """One problem of a request that was refused."""

    model_config = ConfigDict(populate_by_name=True)

    in_: str = Field(alias="in", description="Where: body, query, path or header.")
    field: str = Field(description="The field, dotted ('generator_options.model'); '' for all.")
    message: str = Field(description="What is wrong, where, and what to change.")


class RequestRefused(Message):
    """A request refused before it was carried out (400, 422): `detail` sums up, `errors` lists
    each problem of a request that failed validation (absent for other refusals)."""

    errors: list[Problem] = Field(default_factory=list)


class Health(BaseModel):
    """Whether the API answers and reaches its database and broker, and how the fleet does."""

    status: str = "ok"
    database: str = Field(description="The database's dialect: sqlite or postgresql.")
    broker: str = Field(description="'ok' for an external broker that answers, or 'embedded'.")
    workers: int = Field(
        description="Workers whose sweep timer reported within the last three sweep intervals."
    )
    waiting_messages: int = Field(description="Messages waiting in the generate and verify queues.")
    stranded_batches: int = Field(
        description="Open batches of active jobs idle past AF_BATCH_LEASE_SECONDS, which the "
        "next sweep sends again; more than zero for long means no worker sweeps."
    )
    version: str


class CatalogPublic(_Public):
    """A stored catalog and its normalised tools."""

    id: str
    name: str
    kind: str
    title: str | None
    sha256: str = Field(description="SHA-256 of the document as uploaded.")
    tools: list[Tool]
    created_at: UtcDatetime


class CatalogUploaded(CatalogPublic):
    """A catalog just uploaded, with what its loader skipped or renamed."""

    warnings: list[str] = Field(
        default_factory=list,
        description="What the loader skipped or renamed instead of refusing the document, "
        "one line each: the place (a JSON pointer), then what it did. Only the upload's "
        "answer carries them; they are not stored.",
    )


class CatalogsPublic(BaseModel):
    """A page of catalogs, newest first, and how many there are in all."""

    data: list[CatalogPublic]
    count: int


class StageCounts(BaseModel):
    """How many samples one verification stage passed and rejected."""

    passed: int = 0
    rejected: int = 0


class FunnelStep(BaseModel):
    """One step of a job's funnel: generated, a verification stage, or accepted."""

    step: str = Field(description="'generated', a stage name (in the job's order), 'accepted'.")
    samples: int = Field(
        description="Samples generated, passed by the stage, or accepted in the end."
    )
    rejected: int = Field(0, description="Samples the stage rejected (0 for the other steps).")


class Rejection(BaseModel):
    """The samples one stage rejected for one reason code: how many, and a few of their ids."""

    stage: str | None
    reason: str | None
    samples: int
    examples: list[str] = Field(
        default_factory=list, description="Ids of the first few such samples by position (<= 5)."
    )


class ServerUsage(BaseModel):
    """What one LLM server answered of the job's requests."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    completion_tokens_per_s: float = Field(
        0.0,
        description="completion_tokens over the job's wall_s: the servers' figures add up to "
        "the job's.",
    )


class GenerationUsage(BaseModel):
    """What the LLM generator's batches cost, summed over the job's generated batches."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    wall_s: float = Field(0.0, description="Seconds spent in the engine, summed over batches.")
    completion_tokens_per_s: float = Field(
        0.0, description="completion_tokens / wall_s: the engine's throughput."
    )
    failures: dict[str, int] = Field(
        default_factory=dict, description="Failed generations by kind (truncated, ...)."
    )
    servers: dict[str, ServerUsage] = Field(
        default_factory=dict,
        description="Per server (base URL) of the 'openai' backend: the requests it answered.",
    )


class JobCounts(BaseModel):
    """A job's funnel: samples generated, accepted and rejected, per stage and per reason."""

    model_config = ConfigDict(extra="allow")

    generated: int = 0
    accepted: int = 0
    rejected: int = 0
    by_stage: dict[str, StageCounts] = Field(
        default_factory=dict, description="Per verification stage, in the job's stage order."
    )
    by_reason: dict[str, int] = Field(
        default_factory=dict, description="Rejected samples per reason code, most common first."
    )
    batches: dict[str, int] = Field(default_factory=dict, description="Batches per status.")
    funnel: list[FunnelStep] = Field(
        default_factory=list,
        description="generated -> each stage the job runs, in its order -> accepted.",
    )
    rejections: list[Rejection] = Field(
        default_factory=list,
        description="Per stage and reason code, most common first, with example sample ids.",
    )
    generation: GenerationUsage | None = Field(
        None, description="LLM requests, tokens and throughput (generator 'llm' only)."
    )

    @model_validator(mode="after")
    def _funnel_of_older_jobs(self) -> JobCounts:
        # Counts stored before the funnel existed: it follows from the other fields.
        if not self.funnel:
            self.funnel = [
                FunnelStep(step="generated", samples=self.generated),
                *(
                    FunnelStep(step=stage, samples=c.passed, rejected=c.rejected)
                    for stage, c in self.by_stage.items()
                ),
                FunnelStep(step="accepted", samples=self.accepted),
            ]
        return self


class JobPublic(_Public):
    """A job: its spec, where it stands, its error if it failed, and its counts."""

    id: str
    catalog_id: str
    status: JobStatus
    error: str | None
    spec: JobSpec
    counts: JobCounts
    judge_calibration: JudgeCalibration | None = Field(
        None,
        description="How the semantic judge did on a calibration set made from the job's "
        "catalog before it judged the job; null without that stage, or before it ran.",
    )
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    updated_at: UtcDatetime


class JobProgress(JobPublic):
    """A job with how fast it goes: what `GET /v1/jobs/{id}/events` sends."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def progress(self) -> float:
        """Samples judged (accepted or rejected) over the samples requested, 0 to 1."""
        return min(1.0, (self.counts.accepted + self.counts.rejected) / self.spec.n)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def samples_per_s(self) -> float | None:
        """Samples generated per second since the job started (until it finished); null
        before it starts."""
        seconds = self._seconds_running()
        return round(self.counts.generated / seconds, 2) if seconds else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tokens_per_s(self) -> float | None:
        """LLM completion tokens per second since the job started; null without LLM usage."""
        seconds = self._seconds_running()
        usage = self.counts.generation
        return round(usage.completion_tokens / seconds, 1) if seconds and usage else None

    def _seconds_running(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or datetime.now(UTC)
        seconds = (end - self.started_at).total_seconds()
        return seconds if seconds > 0 else None


class JobsPublic(BaseModel):
    """A page of jobs, newest first, and how many match in all."""

    data: list[JobPublic]
    count: int


class VerdictPublic(_Public):
    """What one verification stage said about a sample."""

    stage: str
    accepted: bool
    reason: str | None
    detail: str | None


class SamplePublic(BaseModel):
    """A sample of a job: where verification left it, each stage's verdict, and the sample."""

    id: str
    position: int
    status: SampleStatus
    stage: str | None = Field(description="The last stage that judged the sample.")
    reason: str | None = Field(description="Why it was rejected; null when it was not.")
    verdicts: list[VerdictPublic]
    sample: Sample


class SamplesPublic(BaseModel):
    """A page of samples in position order; pass `next_cursor` as `cursor` for the next page."""

    data: list[SamplePublic]
    count: int = Field(description="How many samples match the filters in all.")
    next_cursor: str | None = Field(description="Null on the last page.")
