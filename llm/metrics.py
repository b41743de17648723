"""Prometheus metrics of the LLM servers the backends talk to: requests, tokens, errors and
seconds per request, labelled by the server's `base_url` (without credentials or query).

Every try counts as a request, retries included. The backend calls `record_result` or
`record_failure` once per try (`observed` wraps a coroutine that makes one try and does that).
Nothing here knows where the metrics go: the service exports them (`service.metrics`).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

from prometheus_client import Counter, Histogram

from llm.base import BackendUnavailable, LLMResult
from llm.http_session import Unreachable

REQUESTS = Counter(
    "actionforge_llm_requests",
    "Chat completion requests sent to an LLM server, each try counted, by how the try ended: "
    "stop or length (answered), error (answered without a usable answer, e.g. HTTP 400), "
    "failed (no answer: timeout, connection, HTTP 408/429/5xx, refused, not a completion).",
    ["base_url", "outcome"],
)
TOKENS = Counter(
    "actionforge_llm_tokens",
    "Tokens of answered requests as the server reported them, by kind: prompt or completion.",
    ["base_url", "kind"],
)
ERRORS = Counter(
    "actionforge_llm_errors",
    "Tries that got no usable answer, by kind: timeout, connection, http_status (408, 429, "
    "5xx: retried), refused (401, 403, 404), invalid_response (not a chat completion), "
    "answer_error (an answer with an error, e.g. HTTP 400 for a prompt too long).",
    ["base_url", "kind"],
)
SECONDS = Histogram(
    "actionforge_llm_request_duration_seconds",
    "Seconds one try of a chat completion request took, answered or not.",
    ["base_url"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300),
)


@functools.lru_cache(maxsize=64)
def server_label(base_url: str) -> str:
    """`base_url` as a label: scheme, host, port and path only (a user, password, query or
    fragment in the URL never reaches the metrics)."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def error_kind(exc: BaseException) -> str:
    """What kind of failure an exception from one try of the OpenAI-compatible backend is."""
    cause = exc.__cause__
    if isinstance(exc, TimeoutError) or isinstance(cause, TimeoutError):
        return "timeout"
    if isinstance(exc, Unreachable) or isinstance(cause, Unreachable):
        return "connection"
    if isinstance(exc, BackendUnavailable):
        # Refusals (401/403/404) are raised without a cause; an unreadable answer with one.
        return "refused" if cause is None else "invalid_response"
    return "http_status"


def record_result(base_url: str, result: LLMResult, seconds: float) -> None:
    """Count one answered try."""
    server = server_label(base_url)
    REQUESTS.labels(server, result.finish_reason).inc()
    if result.finish_reason == "error":
        ERRORS.labels(server, "answer_error").inc()
    if result.prompt_tokens:
        TOKENS.labels(server, "prompt").inc(result.prompt_tokens)
    if result.completion_tokens:
        TOKENS.labels(server, "completion").inc(result.completion_tokens)
    SECONDS.labels(server).observe(seconds)


def record_failure(base_url: str, exc: BaseException, seconds: float) -> None:
    """Count one try that raised `exc`."""
    server = server_label(base_url)
    REQUESTS.labels(server, "failed").inc()
    ERRORS.labels(server, error_kind(exc)).inc()
    SECONDS.labels(server).observe(seconds)


class _Server(Protocol):
    base_url: str


B = TypeVar("B")
C = TypeVar("C")
S = TypeVar("S", bound=_Server)


def observed(
    one_try: Callable[[B, C, S, dict[str, Any]], Awaitable[LLMResult]],
) -> Callable[[B, C, S, dict[str, Any]], Coroutine[Any, Any, LLMResult]]:
    """Wrap a backend method that makes one try, `(self, client, server, body)`, so that every
    try is counted under its server's base_url (a try cancelled because another request of its
    batch failed is not)."""

    @functools.wraps(one_try)
    async def counted(backend: B, client: C, server: S, body: dict[str, Any]) -> LLMResult:
        started = time.perf_counter()
        try:
            result = await one_try(backend, client, server, body)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            record_failure(server.base_url, exc, time.perf_counter() - started)
            raise
        record_result(server.base_url, result, time.perf_counter() - started)
        return result

    return counted
