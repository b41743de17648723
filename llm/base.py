"""The LLM backend interface, its configuration and the registry of backends by name.

A backend takes a batch of chat requests and returns one result per request, in order. Heavy
imports (vllm, the HTTP client) happen inside the backend's constructor, so that choosing a
backend whose extra is not installed fails with a message that names the extra.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from llm.concurrency import ConcurrencySettings
from unified.errors import ActionForgeError
from unified.registry import Registry

FinishReason = Literal["stop", "length", "error"]


class BackendUnavailable(ActionForgeError):
    """The LLM cannot be reached or loaded (server down after retries, engine failed to start)."""


class LLMRequest(BaseModel):
    """One chat completion: messages, an optional JSON Schema the answer must fit, sampling."""

    model_config = ConfigDict(extra="forbid")

    messages: list[dict[str, str]] = Field(description="Chat messages: {'role', 'content'}.")
    json_schema: dict[str, Any] | None = Field(
        None, description="Constrain the answer to this JSON Schema (structured outputs)."
    )
    max_tokens: int = Field(512, ge=1)
    temperature: float = Field(0.7, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    seed: int | None = None
    stop: list[str] | None = Field(None, description="Stop when the answer produces any of these.")


class LLMResult(BaseModel):
    """What the model answered, why it stopped, and what it cost in tokens."""

    model_config = ConfigDict(extra="forbid")

    text: str
    finish_reason: FinishReason
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = Field(None, description="Why this one request failed (finish 'error').")
    server: str | None = Field(None, description="The server that answered ('openai' only).")


class LlmDefaults(NamedTuple):
    """The LLM a deployment offers to jobs that name none (AF_LLM_BASE_URL, AF_LLM_MODEL);
    either may be missing."""

    base_url: str | None = None
    model: str | None = None


class BackendConfig(BaseModel):
    """Which backend, which model, and how to talk to it."""

    model_config = ConfigDict(extra="forbid")

    backend: str = Field("vllm", description="Backend name: 'vllm' (in-process) or 'openai'.")
    model: str = Field(description="Model name or local path.")
    base_url: str | list[str] | None = Field(
        None,
        description="OpenAI-compatible server, e.g. http://vllm:8000/v1, or several serving the "
        "same model (a list, or URLs separated by commas) ('openai' only).",
    )
    api_key: str | None = Field(None, description="Bearer token for the server ('openai' only).")
    initial_concurrency: int = Field(
        256,
        ge=1,
        description="Requests in flight per server at first; the limit then moves with the "
        "server's load ('openai' only).",
    )
    min_concurrency: int = Field(
        4, ge=1, description="The least the in-flight limit per server goes down to ('openai')."
    )
    max_concurrency: int = Field(
        1024,
        ge=1,
        description="The most requests in flight per server; equal to min_concurrency, the "
        "limit is fixed ('openai' only).",
    )
    timeout_s: float = Field(120.0, gt=0, description="Per request ('openai' only).")
    max_retries: int = Field(4, ge=0, description="On 429, 5xx and connection errors.")
    tokenizer: str | None = Field(
        None,
        description="The model's tokenizer files on the worker: a folder, or a Hugging Face "
        "model id in the local cache, where `model` is a name the server gives the model rather "
        "than one of these ('openai' only). Prompts are then measured in the worker instead of "
        "by the server.",
    )
    max_model_len: int | None = Field(
        None,
        ge=1,
        description="The model's context in tokens, where the backend cannot tell it (a server "
        "that does not list it): prompts are trimmed to fit it with room for max_tokens.",
    )
    engine_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra keyword arguments for vllm.LLM, e.g. max_model_len, dtype ('vllm').",
    )

    @field_validator("base_url")
    @classmethod
    def _server_urls(cls, value: str | list[str] | None) -> str | list[str] | None:
        if value is None:
            return None
        urls = split_base_urls(value)
        if not urls:
            raise ValueError("give at least one server URL, e.g. http://vllm:8000/v1")
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"'{url}' is not an http:// or https:// URL")
        if len(set(urls)) < len(urls):
            raise ValueError("a server URL is listed twice; list each server once")
        return urls if isinstance(value, list) or len(urls) > 1 else value

    def base_urls(self) -> list[str]:
        """The servers of `base_url`, one URL each (none without base_url)."""
        return split_base_urls(self.base_url) if self.base_url is not None else []

    def concurrency(self) -> ConcurrencySettings:
        """The in-flight limit's bounds per server."""
        maximum = self.max_concurrency
        minimum = min(self.min_concurrency, maximum)
        return ConcurrencySettings(
            initial=min(max(self.initial_concurrency, minimum), maximum),
            minimum=minimum,
            maximum=maximum,
        )


def split_base_urls(value: str | list[str]) -> list[str]:
    """Server URLs from a list, or from one string of URLs separated by commas."""
    parts = value.split(",") if isinstance(value, str) else value
    return [part.strip().rstrip("/") for part in parts if part.strip()]


class LLMBackend(Protocol):
    """Answers batches of chat requests."""

    name: str

    def generate(self, requests: Sequence[LLMRequest]) -> list[LLMResult]:
        """One result per request, in the order of `requests`.

        A request that fails on its own (a 400 for it alone) gets finish_reason 'error' and its
        message; a backend that cannot answer at all raises `BackendUnavailable`.
        """
        ...

    def close(self) -> None:
        """Release the engine or the connections."""
        ...


@runtime_checkable
class SubmittingBackend(LLMBackend, Protocol):
    """A backend that can start a batch and return at once (the server backend): a caller may
    prepare its next requests while the server works on these."""

    def submit(self, requests: Sequence[LLMRequest]) -> Future[list[LLMResult]]:
        """What `generate` would return, as a future; cancelling it cancels the requests."""
        ...


BACKENDS = Registry(
    "LLM backend",
    {
        "vllm": "llm.vllm_engine:VllmEngineBackend",
        "openai": "llm.openai_server:OpenAIServerBackend",
    },
    "actionforge.llm_backends",
)


def load_backend(config: BackendConfig) -> LLMBackend:
    """Build the backend named in `config` (loads the model for 'vllm')."""
    backend: LLMBackend = BACKENDS.get(config.backend)(config)
    return backend
