"""Request and response bodies of `/v1/models`: model versions and training requests."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

from service.api.schemas import UtcDatetime
from service.db.models import ModelVersionStatus

OVERALL = "overall"


class TrainRequest(BaseModel):
    """Ask for a training run of a catalog's next model version."""

    model_config = ConfigDict(extra="forbid")

    catalog_id: str = Field(description="The catalog whose accepted samples to train on.")
    force: bool = Field(
        False, description="Train even with fewer new samples than AF_TRAIN_MIN_NEW_SAMPLES."
    )
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="Training settings over the service's (TrainConfig fields such as "
        "max_steps, learning_rate, replay_ratio); not output_dir or eval_fraction.",
    )


class ModelSummary(BaseModel):
    """A version's headline numbers on the held-out samples (overall), and how its accuracy
    moved against its parent version and against the base model."""

    accuracy: float | None = None
    tool_name_accuracy: float | None = None
    exact_call_accuracy: float | None = None
    irrelevance_accuracy: float | None = None
    format_pass_rate: float | None = None
    turn_accuracy: float | None = Field(
        None, description="Right turns of the multi-turn held-out samples; null without one."
    )
    conversation_accuracy: float | None = Field(
        None,
        description="Multi-turn held-out samples with every turn right; null without one.",
    )
    accuracy_vs_parent: float | None = Field(
        None, description="Change of overall accuracy against the parent version."
    )
    accuracy_vs_base: float | None = Field(
        None, description="Change of overall accuracy against the base model."
    )


class ModelVersionPublic(BaseModel):
    """A model version: a LoRA adapter of `base_model` trained on a catalog's samples."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    catalog_id: str
    version: int = Field(description="1, 2, ... per catalog.")
    parent_id: str | None = Field(description="The version whose adapter this one continued.")
    base_model: str
    adapter_path: str | None = Field(description="The adapter folder once ready.")
    status: ModelVersionStatus
    error: str | None
    config: dict[str, Any] = Field(description="The training settings it was trained with.")
    new_samples: int = Field(description="New accepted samples it trained on.")
    replay_samples: int = Field(description="Samples of earlier versions replayed with them.")
    heldout_samples: int = Field(description="Held-out samples it was evaluated on.")
    dropped_too_long: int = Field(description="Samples left out: longer than max_length.")
    metrics: dict[str, Any] = Field(
        description="train (the trainer's metrics), heldout, eval (per style), base and parent "
        "(their reports on the same samples), compare (deltas against each)."
    )
    attempt: int = Field(description="How many times a worker started training it.")
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    updated_at: UtcDatetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def summary(self) -> ModelSummary:
        """The overall rates of `metrics.eval` and the accuracy deltas of `metrics.compare`."""
        report = self.metrics.get("eval") or {}
        overall = report.get(OVERALL) or {}
        compare = self.metrics.get("compare") or {}
        return ModelSummary(
            **{name: overall.get(name) for name in ModelSummary.model_fields if name in overall},
            accuracy_vs_parent=_accuracy_change(compare.get("parent")),
            accuracy_vs_base=_accuracy_change(compare.get("base")),
        )


def _accuracy_change(deltas: list[dict[str, Any]] | None) -> float | None:
    for delta in deltas or []:
        if delta.get("group") == OVERALL and delta.get("metric") == "accuracy":
            change = delta.get("change")
            return float(change) if change is not None else None
    return None


class ModelVersionsPublic(BaseModel):
    """A page of model versions, newest first, and how many match in all."""

    data: list[ModelVersionPublic]
    count: int
