"""Request and response bodies shared by the REST API, the CLI and the tasks."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from generators.base import DEFAULT_STYLES
from llm.base import BackendConfig
from unified.model import QueryStyle
from verifiers.stages import DEFAULT_STAGES, SEMANTIC_STAGE

MAX_SAMPLES_PER_JOB = 1_000_000

StageList = Annotated[
    list[str],
    WithJsonSchema(
        {
            "type": "array",
            "items": {
                "anyOf": [
                    {"type": "string"},
                    {
                        "type": "object",
                        "minProperties": 1,
                        "maxProperties": 1,
                        "additionalProperties": {"type": "object"},
                    },
                ]
            },
        }
    ),
]
"""Stage names; on input an entry may also be `{name: {options}}` (moved to `stage_options`)."""


class JobSpec(BaseModel):
    """What a job generates and how it is verified."""

    model_config = ConfigDict(extra="forbid")

    n: int = Field(ge=1, le=MAX_SAMPLES_PER_JOB, description="Samples to generate.")
    styles: dict[QueryStyle, float] = Field(
        default_factory=lambda: dict(DEFAULT_STYLES),
        description="Relative weights of the query styles: "
        + ", ".join(QueryStyle)
        + " (a generator refuses a style it does not make).",
    )
    generator: str = Field(
        "template", description="Generator name: 'template', 'llm', or one a plug-in registers."
    )
    generator_options: dict[str, Any] = Field(
        default_factory=dict,
        description="The generator's options; for 'llm': backend ('vllm' or 'openai'), model, "
        "base_url, max_tokens, temperature, top_p, templates_dir, augment, ... (see the README).",
    )
    seed: int = Field(0, description="Same seed, same catalog, same samples.")
    verify: StageList = Field(
        default_factory=lambda: list(DEFAULT_STAGES),
        description="Verification stages, in order (default: query, format, grounding, coverage); "
        "e.g. format, execution, dedup (dedup last). "
        'An entry may carry the stage\'s options: {"semantic": {"judge": {...}}}.',
    )
    stage_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Options per stage name (what `verify` entries carry inline lands here).",
    )
    batch_size: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description="Samples per task; default AF_BATCH_SIZE (AF_LLM_BATCH_SIZE for a generator "
        "that uses an LLM, such as 'llm').",
    )
    judge: BackendConfig | None = Field(
        None,
        description="The LLM the 'semantic' stage asks: backend, model, base_url, ... "
        "(shorthand for the stage's 'judge' option).",
    )

    @model_validator(mode="before")
    @classmethod
    def _inline_stage_options(cls, data: Any) -> Any:
        """`{name: {options}}` entries of `verify` become a name and `stage_options[name]`."""
        if not isinstance(data, dict) or not isinstance(data.get("verify"), list):
            return data
        given = data.get("stage_options")
        if given is not None and not isinstance(given, dict):
            return data  # the field's own validation says what is wrong
        names: list[Any] = []
        options = dict(given or {})
        for entry in data["verify"]:
            if not isinstance(entry, dict):
                names.append(entry)
                continue
            if len(entry) != 1:
                raise ValueError(
                    "verify: an entry is a stage name or one {name: {options}}; got an object "
                    f"with {len(entry)} keys ({', '.join(map(str, entry))}); give one per entry"
                )
            ((name, inline),) = entry.items()
            if not isinstance(inline, dict):
                raise ValueError(
                    f"verify: the options of stage '{name}' must be an object "
                    f"{{option: value}}, not {type(inline).__name__}"
                )
            if name in options:
                raise ValueError(
                    f"verify: stage '{name}' has options inline and in stage_options; "
                    "give them once"
                )
            names.append(name)
            options[name] = inline
        return {**data, "verify": names, "stage_options": options}

    @model_validator(mode="after")
    def _judge_is_the_semantic_stages(self) -> JobSpec:
        """`judge` is shorthand for the semantic stage's `judge` option: either one fills the
        other, so jobs stored before stage options existed run as they did."""
        if SEMANTIC_STAGE not in self.verify:
            return self
        options = self.stage_options.get(SEMANTIC_STAGE, {})
        inline = options.get("judge")
        if inline is None:
            if self.judge is not None:
                judge = self.judge.model_dump(mode="json", exclude_unset=True)
                self.stage_options = {
                    **self.stage_options,
                    SEMANTIC_STAGE: {**options, "judge": judge},
                }
            return self
        try:
            stated = BackendConfig.model_validate(inline)
        except ValidationError:
            return self  # the stage's options check names the problem
        if self.judge is not None and self.judge != stated:
            raise ValueError(
                "judge and the semantic stage's judge option differ; give the judge once"
            )
        self.judge = stated
        return self

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
