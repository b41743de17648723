"""Service settings, read from `AF_*` environment variables and a `.env` file."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from unified.catalogs import DEFAULT_MAX_BYTES
from verifiers.judge_calibration import DEFAULT_MIN_ACCURACY

EMBEDDED = "embedded"
ENV_PREFIX = "AF_"

# Never echoed back in error messages: URLs may carry passwords, keys are secrets.
_SECRET_SETTINGS = {"api_keys", "database_url", "broker_url"}


class Settings(BaseSettings):
    """Everything the API, the workers and the CLI read from the environment.

    With nothing set, the service runs embedded: a SQLite database and a SQLite-backed queue in
    `data_dir`, no external service.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    data_dir: Path = Field(
        Path("data"), description="Where the embedded database, queue and exports live."
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: a SQLite file in data_dir."
    )
    broker_url: str = Field(
        EMBEDDED,
        description="Celery broker URL (redis://..., amqp://...); 'embedded': a SQLite-backed "
        "queue in data_dir, worked by `actionforge serve` itself.",
    )
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Keys accepted in the X-API-Key header, comma-separated or a JSON list; "
        "empty: the API is open.",
    )
    templates_root: Path | None = Field(
        None,
        description="The folder a job's generator_options.templates_dir is a name under "
        "(a client cannot point a worker anywhere else); default: data_dir/templates.",
    )
    batch_size: int = Field(
        200,
        ge=1,
        le=10_000,
        description="Samples per generate/verify task of a generator without an LLM: each task "
        "costs a queue round trip and a few transactions, so larger batches cost less per sample.",
    )
    llm_batch_size: int = Field(
        256,
        ge=1,
        le=10_000,
        description="Samples per generate task of a generator that uses an LLM (such as 'llm'): "
        "one engine call each, large enough to keep the engine's batch full.",
    )
    llm_base_url: str | None = Field(
        None,
        description="OpenAI-compatible server (e.g. http://vllm:8000/v1), or several serving the "
        "same model separated by commas, for llm jobs that name no backend, and for their "
        "semantic judge when they give none.",
    )
    llm_model: str | None = Field(
        None, description="Model of llm jobs (and of that judge) that name none."
    )
    judge_min_accuracy: float = Field(
        DEFAULT_MIN_ACCURACY,
        ge=0.0,
        le=1.0,
        description="Balanced accuracy a job's semantic judge needs on a calibration set made "
        "from the job's catalog before it judges the job (the job fails with "
        "judge_uncalibrated below it); a job's semantic option min_accuracy overrides it, 0 "
        "skips calibration.",
    )
    max_catalog_bytes: int = Field(DEFAULT_MAX_BYTES, ge=1, description="Largest catalog accepted.")
    task_time_limit: int = Field(600, ge=10, description="Hard time limit of one task, seconds.")
    sweep_interval_seconds: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="How often one worker of the fleet looks for batches left idle past their "
        "lease and sends them again (lost messages, broker restarts, database outages).",
    )
    batch_lease_seconds: float = Field(
        30.0,
        ge=1,
        le=86_400,
        description="A batch sent this long ago and not yet started, or whose task stopped "
        "renewing its lease (every third of it) this long ago, is sent again by the sweep.",
    )
    idempotency_key_hours: float = Field(
        24.0,
        gt=0,
        le=24 * 365,
        description="How long the first answer to an Idempotency-Key is kept for retries; "
        "after it the key creates anew, and the sweep deletes the stored answer.",
    )
    api_url: str = Field(
        "http://127.0.0.1:8000",
        description="Where `actionforge submit`, `status` and `export` reach the API.",
    )

    # --- Prometheus metrics (service/metrics/) -------------------------------------------------
    metrics_dir: Path | None = Field(
        None,
        description="Folder where every process writes its metrics (prometheus-client's "
        "multiprocess mode), so that the API's /metrics counts the workers on its machine too; "
        "PROMETHEUS_MULTIPROC_DIR is read when unset; default with the embedded queue: "
        "data_dir/metrics; otherwise each process keeps its own.",
    )
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65_535,
        description="`actionforge worker` serves its metrics (its pool's included) at "
        "http://AF_METRICS_HOST:port/metrics: for workers that do not share a machine (and "
        "metrics_dir) with the API, as in the compose fleet.",
    )
    metrics_host: str = Field(
        "127.0.0.1", description="Address the worker's metrics server listens on."
    )
    metrics_public: bool = Field(
        False,
        description="Serve the API's /metrics without a key even when AF_API_KEYS is set "
        "(for a scraper on a private network).",
    )

    # --- continual training (service/training/runs.py) ------------------------------------------
    train_enabled: bool = Field(
        False,
        description="Train a new model version of a catalog automatically once it has "
        "AF_TRAIN_MIN_NEW_SAMPLES new accepted samples (needs a worker on the train queue).",
    )
    train_base_model: str = Field(
        "", description="Base model folder (or cached name) the versions are LoRA adapters of."
    )
    train_config: Path | None = Field(
        None, description="YAML or JSON file of training settings (trainer.config.TrainConfig)."
    )
    train_min_new_samples: int = Field(
        500, ge=1, description="New accepted samples of a catalog that start a training run."
    )
    train_heldout_fraction: float = Field(
        0.1,
        gt=0.0,
        lt=0.5,
        description="Share of each catalog's accepted samples held out (by a hash of the "
        "sample id) to evaluate every version; never trained on.",
    )
    train_eval_samples: int = Field(
        200, ge=1, description="Held-out samples each version is evaluated on, at most."
    )
    train_eval_max_new_tokens: int = Field(
        256, ge=1, description="Longest answer, in tokens, generated per held-out sample."
    )
    train_lease_seconds: int = Field(
        600,
        ge=10,
        description="A version whose worker has not renewed its lease for this long is taken "
        "over by the next training run (the worker renews it every tenth of it).",
    )
    train_time_limit: int = Field(
        6 * 3600, ge=60, description="Hard time limit of one training task, seconds."
    )

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                "AF_DATABASE_URL is not a URL; give e.g. postgresql://user:password@host/db "
                "or sqlite:////absolute/path.db"
            ) from None
        if url.get_backend_name() not in {"sqlite", "postgresql"}:
            shown = url.render_as_string(hide_password=True)
            raise ValueError(
                f"AF_DATABASE_URL must be a sqlite:// or postgresql:// URL, got {shown!r}"
            )
        return value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"AF_API_KEYS starts with '[' but is not a JSON list ({exc.msg}); "
                    "give a JSON list of strings or comma-separated keys"
                ) from None
        return [key.strip() for key in text.split(",") if key.strip()]

    @field_validator("api_keys")
    @classmethod
    def _no_placeholder_keys(cls, value: list[str]) -> list[str]:
        for key in value:
            if key.lower() in {"changeme", "change-me", "secret", "xxx"} or len(key) < 16:
                raise ValueError(
                    "AF_API_KEYS holds a placeholder or a key shorter than 16 characters; "
                    "set real keys, e.g. from `python -c 'import secrets; "
                    "print(secrets.token_urlsafe())'`"
                )
        return value

    @property
    def embedded_broker(self) -> bool:
        return self.broker_url == EMBEDDED

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'actionforge.db').resolve()}"

    def resolved_templates_root(self) -> Path:
        return self.templates_root or self.data_dir / "templates"

    def resolved_broker_url(self) -> str:
        if self.embedded_broker:
            return f"sqla+sqlite:///{(self.data_dir / 'queue.db').resolve()}"
        return self.broker_url


@lru_cache
def get_settings() -> Settings:
    return Settings()


def settings_error_line(exc: ValidationError) -> str:
    """One line naming each refused `AF_*` setting and why, for the CLI and the logs."""
    problems = []
    for error in exc.errors(include_url=False):
        field = str(error["loc"][0]) if error["loc"] else ""
        name = ENV_PREFIX + field.upper()
        message = error["msg"].removeprefix("Value error, ")
        if not message.startswith(name):
            message = f"{name}: {message}"
        if field not in _SECRET_SETTINGS and "input" in error:
            message += f" (got {error['input']!r})"
        problems.append(message)
    return "invalid settings: " + "; ".join(problems)
