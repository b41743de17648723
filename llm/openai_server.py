"""Any OpenAI-compatible chat server (vLLM's own server in the fleet) as an LLM backend.

Requests go out concurrently (at most `max_concurrency` in flight) and each one is retried with
exponential backoff and jitter on 429, 5xx, connection errors and timeouts. Every try is cut
off after `timeout_s`, so a request gives up after at most (max_retries + 1) x timeout_s plus
the waits between tries (at most RETRY_WAIT_MAX_S each), and the first request that gives up
stops the whole batch: `generate` never hangs on a dead server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

# httpx rather than the openai SDK: httpx is already a core dependency (the SDK would be a new
# one), and retries are tenacity's job here, so the SDK's own retry loop would only get in the way.
import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from llm import metrics
from llm.base import BackendConfig, BackendUnavailable, LLMRequest, LLMResult
from llm.prompt_tokens import Messages
from llm.server_tokens import ServerPromptMeasure
from unified.errors import ActionForgeError

# Waits between tries: 0.5 s, 1 s, 2 s, ... up to 8 s, each plus up to 0.5 s of jitter.
RETRY_WAIT_FIRST_S = 0.5
RETRY_WAIT_CAP_S = 8.0
RETRY_JITTER_S = 0.5
RETRY_WAIT_MAX_S = RETRY_WAIT_CAP_S + RETRY_JITTER_S
# Worth another try: the server is busy (429), timed out (408) or failing (5xx).
RETRY_STATUSES = frozenset({408, 429})
# Every request would get the same answer: stop the batch and say what to fix.
CONFIG_STATUSES = frozenset({401, 403, 404})
SCHEMA_NAME = "answer"

T = TypeVar("T")


class _TryAgain(Exception):
    """A failure another try may not see: transport error, timeout, 429 or 5xx."""


class OpenAIServerBackend:
    """Talks to an OpenAI-compatible server at `base_url` (`backend: openai`)."""

    name = "openai"

    def __init__(self, config: BackendConfig) -> None:
        if not config.base_url:
            raise ActionForgeError(
                "The 'openai' LLM backend needs base_url, the server's OpenAI-compatible root, "
                "e.g. http://vllm:8000/v1."
            )
        self.config = config
        self.url = config.base_url.rstrip("/") + "/chat/completions"
        self._headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._measure = ServerPromptMeasure(
            config.base_url, config.model, self._headers, config.timeout_s
        )

    def generate(self, requests: Sequence[LLMRequest]) -> list[LLMResult]:
        """One result per request, in order. Synchronous: runs its own event loop.

        Raises `BackendUnavailable` when the server cannot be reached or keeps failing after
        `max_retries` retries, or refuses the model or the key (401, 403, 404).
        """
        if not requests:
            return []
        return _run_sync(self._generate_all(list(requests)))

    def close(self) -> None:
        """Nothing to release: each `generate` opens and closes its own connections."""

    def context_length(self) -> int | None:
        """The model's context as the server lists it (`max_model_len` of GET /models, asked
        once), else the configured `max_model_len`, else None."""
        listed = self._measure.context_length()
        return listed if listed is not None else self.config.max_model_len

    def count_prompt_tokens(self, prompts: Sequence[Messages]) -> list[int]:
        """Each prompt's tokens from the server's POST /tokenize (as many calls in flight as
        generation requests), else the conservative estimate."""
        if not prompts:
            return []
        return _run_sync(self._count_all(list(prompts)))

    async def _count_all(self, prompts: list[Messages]) -> list[int]:
        async with self._client() as client:
            in_flight = asyncio.Semaphore(self.config.max_concurrency)
            return await self._measure.count(client, in_flight, prompts)

    def _client(self) -> httpx.AsyncClient:
        concurrency = self.config.max_concurrency
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        return httpx.AsyncClient(
            headers=self._headers, timeout=self.config.timeout_s, limits=limits
        )

    async def _generate_all(self, requests: list[LLMRequest]) -> list[LLMResult]:
        in_flight = asyncio.Semaphore(self.config.max_concurrency)
        async with self._client() as client:
            try:
                # A TaskGroup cancels the other requests as soon as one raises.
                async with asyncio.TaskGroup() as group:
                    tasks = [
                        group.create_task(self._one(client, in_flight, request))
                        for request in requests
                    ]
            except BaseExceptionGroup as failed:
                raise failed.exceptions[0] from None
        return [task.result() for task in tasks]

    async def _one(
        self, client: httpx.AsyncClient, in_flight: asyncio.Semaphore, request: LLMRequest
    ) -> LLMResult:
        body = self._body(request)
        tries = self.config.max_retries + 1
        retrying = AsyncRetrying(
            stop=stop_after_attempt(tries),
            wait=wait_exponential(multiplier=RETRY_WAIT_FIRST_S, max=RETRY_WAIT_CAP_S)
            + wait_random(0, RETRY_JITTER_S),
            retry=retry_if_exception_type(_TryAgain),
            reraise=True,
        )
        async with in_flight:
            try:
                return await retrying(self._post, client, body)
            except _TryAgain as exc:
                raise BackendUnavailable(
                    f"The LLM server at {self.url} did not answer after {tries} tries "
                    f"(last error: {exc}). Is the vLLM server running? Check base_url, and the "
                    "server's log if it is up."
                ) from exc

    def _body(self, request: LLMRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        if request.stop:
            body["stop"] = request.stop
        if request.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": SCHEMA_NAME, "schema": request.json_schema, "strict": True},
            }
        return body

    @metrics.observed  # requests, tokens, errors and seconds per try (llm/metrics.py)
    async def _post(self, client: httpx.AsyncClient, body: dict[str, Any]) -> LLMResult:
        """One try. Raises `_TryAgain` for what a retry may fix."""
        try:
            # httpx's timeout bounds each read; this bounds the whole exchange.
            async with asyncio.timeout(self.config.timeout_s):
                response = await client.post(self.url, json=body)
        except TimeoutError as exc:
            raise _TryAgain(f"no answer within timeout_s={self.config.timeout_s}") from exc
        except httpx.TransportError as exc:
            raise _TryAgain(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
        status = response.status_code
        if status in RETRY_STATUSES or status >= 500:
            raise _TryAgain(f"HTTP {status}: {_server_message(response)}")
        if status in CONFIG_STATUSES:
            raise BackendUnavailable(
                f"The LLM server at {self.url} refused the request with HTTP {status}: "
                f"{_server_message(response)}. Check base_url, model ('{self.config.model}') "
                "and api_key."
            )
        if status >= 400:
            return LLMResult(
                text="",
                finish_reason="error",
                error=f"The LLM server answered HTTP {status}: {_server_message(response)}",
            )
        return self._result(response)

    def _result(self, response: httpx.Response) -> LLMResult:
        try:
            data = response.json()
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
            reason = choice.get("finish_reason")
            usage = data.get("usage") or {}
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise BackendUnavailable(
                f"The server at {self.url} answered HTTP {response.status_code} with something "
                f"that is not a chat completion ({response.text[:200]!r}). Check that base_url "
                "points to an OpenAI-compatible API root (usually ending in /v1)."
            ) from exc
        tokens = {
            "prompt_tokens": int(usage.get("prompt_tokens") or 0),
            "completion_tokens": int(usage.get("completion_tokens") or 0),
        }
        if reason == "length":
            return LLMResult(text=text, finish_reason="length", **tokens)
        if reason in ("stop", "tool_calls", "function_call"):
            return LLMResult(text=text, finish_reason="stop", **tokens)
        return LLMResult(
            text=text,
            finish_reason="error",
            error=f"The server ended this answer with finish_reason {reason!r}.",
            **tokens,
        )


def _server_message(response: httpx.Response) -> str:
    """The error message of an OpenAI-style error body, else the start of the body."""
    try:
        data = response.json()
    except ValueError:  # not JSON (or not text)
        return response.text[:500] or response.reason_phrase
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if data.get("message"):
            return str(data["message"])
    return json.dumps(data)[:500]


def _run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` to its end, also when called from code that runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
