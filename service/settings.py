"""Service settings, read from `AF_*` environment variables and a `.env` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from unified.catalogs import DEFAULT_MAX_BYTES

EMBEDDED = "embedded"


class Settings(BaseSettings):
    """Everything the API, the workers and the CLI read from the environment.

    With nothing set, the service runs embedded: a SQLite database and a SQLite-backed queue in
    `data_dir`, no external service.
    """

    model_config = SettingsConfigDict(env_prefix="AF_", env_file=".env", extra="ignore")

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
    api_keys: list[str] = Field(
        default_factory=list,
        description="Keys accepted in the X-API-Key header; empty: the API is open.",
    )
    batch_size: int = Field(50, ge=1, le=10_000, description="Samples per generate/verify task.")
    max_catalog_bytes: int = Field(DEFAULT_MAX_BYTES, ge=1, description="Largest catalog accepted.")
    task_time_limit: int = Field(600, ge=10, description="Hard time limit of one task, seconds.")

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite", "postgresql")):
            raise ValueError(
                f"AF_DATABASE_URL must be a sqlite:// or postgresql:// URL, got {value!r}"
            )
        return value

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

    def resolved_broker_url(self) -> str:
        if self.embedded_broker:
            return f"sqla+sqlite:///{(self.data_dir / 'queue.db').resolve()}"
        return self.broker_url


@lru_cache
def get_settings() -> Settings:
    return Settings()
