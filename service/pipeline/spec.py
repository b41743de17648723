"""Request and response bodies shared by the REST API, the CLI and the tasks."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from generators.base import DEFAULT_STYLES
from llm.base import BackendConfig
from unified.model import QueryStyle

MAX_SAMPLES_PER_JOB = 1_000_000


class JobSpec(BaseModel):
    """What a job generates and how it is verified."""

    model_config = ConfigDict(extra="forbid")

    n: int = Field(ge=1, le=MAX_SAMPLES_PER_JOB, description="Samples to generate.")
    styles: dict[QueryStyle, float] = Field(
        default_factory=lambda: dict(DEFAULT_STYLES),
        description="Relative weights of the query styles.",
    )
    generator: str = Field("template", description="Generator name: 'template' or 'llm'.")
    generator_options: dict[str, Any] = Field(
        default_factory=dict,
        description="The generator's options; for 'llm': backend ('vllm' or 'openai'), model, "
        "base_url, max_tokens, temperature, top_p, templates_dir, augment, ... (see the README).",
    )
    seed: int = Field(0, description="Same seed, same catalog, same samples.")
    verify: list[str] = Field(
        default_factory=lambda: ["format"],
        description="Verification stages, in order, e.g. format, execution, dedup (dedup last).",
    )
    batch_size: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description="Samples per task; default AF_BATCH_SIZE (AF_LLM_BATCH_SIZE for 'llm').",
    )
    judge: BackendConfig | None = Field(
        None, description="The LLM the 'semantic' stage asks: backend, model, base_url, ..."
    )

    @field_validator("styles")
    @classmethod
    def _some_weight(cls, value: dict[QueryStyle, float]) -> dict[QueryStyle, float]:
        if any(weight < 0 for weight in value.values()):
            raise ValueError("style weights must be zero or more")
        if not value or sum(value.values()) <= 0:
            raise ValueError("give at least one style a weight above zero")
        return value


class JobCreate(JobSpec):
    """`POST /v1/jobs`: a job spec plus the catalog it draws tools from."""

    catalog_id: str


ExportFormat = Literal["unified", "xlam", "openai", "sharegpt", "parquet", "dpo"]
