"""Any OpenAI-compatible chat server (vLLM's own server in the fleet), or several serving the same
model, as an LLM backend.

Requests go out concurrently from one event loop per process (`llm.event_loop`), so connections
and the in-flight limits are shared by every batch the process sends. Each server has its own
adaptive limit (`llm.concurrency`: it starts at `initial_concurrency` and moves with the load
the server reports and with 429/503s and latency), and each request goes to the server with the
fewest outstanding (`llm.server_pool`).

A try that fails on the server (connection error, 5xx other than 503) takes that server out
until a health check answers and goes at once to another server that is up; one the server
refuses for now (429, 503, 408) or that times out lowers that server's limit and waits before
the next try: 0.5 s, 1 s, 2 s, ... up to RETRY_WAIT_CAP_S, each plus up to RETRY_JITTER_S of
jitter. Every try is cut off after `timeout_s`, so with no server up a request gives up after
at most (max_retries + 1) x timeout_s plus the waits, and the first request that gives up
stops the whole batch: `generate` never hangs on a dead server.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import Future
from contextlib import asynccontextmanager
from typing import Any

# aiohttp rather than the openai SDK: retries and routing are this module's job, so the SDK's
# own would only get in the way (and its httpx client is slow at hundreds of requests in flight).
import aiohttp

from llm import metrics
from llm.base import BackendConfig, BackendUnavailable, LLMRequest, LLMResult
from llm.event_loop import background_loop
from llm.http_session import Answer, Unreachable, call, make_session
from llm.local_tokens import LocalPromptCounter
from llm.prompt_tokens import Messages
from llm.server_pool import PooledServer, ServerPool
from llm.server_tokens import ServerPromptMeasure, Slot
from unified.errors import ActionForgeError

# Waits between tries: 0.5 s, 1 s, 2 s, ... up to 8 s, each plus up to 0.5 s of jitter.
RETRY_WAIT_FIRST_S = 0.5
RETRY_WAIT_CAP_S = 8.0
RETRY_JITTER_S = 0.5
RETRY_WAIT_MAX_S = RETRY_WAIT_CAP_S + RETRY_JITTER_S
# The server is busy (429, 503) or timed out (408): worth another try, later.
BUSY_STATUSES = frozenset({408, 429, 503})
# Every request would get the same answer: stop the batch and say what to fix.
CONFIG_STATUSES = frozenset({401, 403, 404})
SCHEMA_NAME = "answer"


class _TryAgain(Exception):
    """A failure another try may not see."""


class _Busy(_TryAgain):
    """The server refused for now (429, 503, 408) or did not answer within timeout_s."""


class _ServerFailed(_TryAgain):
    """The server failed: connection error or a 5xx other than 503."""


class OpenAIServerBackend:
    """Talks to OpenAI-compatible servers at `base_url` (`backend: openai`)."""

    name = "openai"

    def __init__(self, config: BackendConfig) -> None:
        self.urls = config.base_urls()
        if not self.urls:
            raise ActionForgeError(
                "The 'openai' LLM backend needs base_url, the server's OpenAI-compatible root, "
                "e.g. http://vllm:8000/v1 (or a list of servers of the same model)."
            )
        self.config = config
        self._headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._measure = ServerPromptMeasure(
            self.urls, config.model, self._headers, config.timeout_s
        )
        self._local = LocalPromptCounter(config.model, config.tokenizer)
        self._state: tuple[int, aiohttp.ClientSession, ServerPool] | None = None

    def generate(self, requests: Sequence[LLMRequest]) -> list[LLMResult]:
        """One result per request, in order. Synchronous: waits on the process's LLM loop.

        Raises `BackendUnavailable` when no server can be reached, or they keep failing, after
        `max_retries` retries, or the server refuses the model or the key (401, 403, 404).
        """
        if not requests:
            return []
        return background_loop().run(self._generate_all(list(requests)))

    def submit(self, requests: Sequence[LLMRequest]) -> Future[list[LLMResult]]:
        """Start sending `requests` and return at once: the future gives what `generate` would
        return (or raises what it would raise); cancelling it cancels the requests. Batches
        submitted one after another share the servers' in-flight limits."""
        return background_loop().submit(self._generate_all(list(requests)))

    def close(self) -> None:
        """Close the connections and stop the servers' metrics readers and health checks."""
        state, self._state = self._state, None
        if state is not None and state[0] == os.getpid():
            background_loop().run(_close(state[1], state[2]))

    def pool(self) -> ServerPool:
        """The servers and their limits (made on first use in this process)."""
        return self._connections()[1]

    def context_length(self) -> int | None:
        """The model's context as the servers list it (`max_model_len` of GET /models, asked
        once), else the configured `max_model_len`, else None."""
        listed = self._measure.context_length()
        return listed if listed is not None else self.config.max_model_len

    def count_prompt_tokens(self, prompts: Sequence[Messages]) -> list[int]:
        """Each prompt's tokens: counted here with the model's tokenizer where its files are
        local (`llm.local_tokens`), else by the servers' POST /tokenize (within their in-flight
        limits), else the conservative estimate."""
        if not prompts:
            return []
        local = self._local.count(prompts, self._server_count, lambda: self._measure.tokenizes)
        left = [index for index, count in enumerate(local) if count is None]
        counted = background_loop().run(self._count_all([prompts[i] for i in left])) if left else []
        for index, count in zip(left, counted, strict=True):
            local[index] = count
        return [count or 0 for count in local]

    def _server_count(self, prompt: Messages) -> int | None:
        """One prompt's tokens as a server counts it, or None where none answers."""
        return background_loop().run(self._exact_count(prompt))

    async def _exact_count(self, prompt: Messages) -> int | None:
        client, pool = self._connections()
        return await self._measure.exact_count(client, self._slot(pool), prompt)

    async def _count_all(self, prompts: list[Messages]) -> list[int]:
        client, pool = self._connections()
        return await self._measure.count(client, self._slot(pool), prompts)

    @staticmethod
    def _slot(pool: ServerPool) -> Slot:
        @asynccontextmanager
        async def slot() -> AsyncIterator[str]:
            async with pool.slot() as server:
                yield server.base_url

        return slot

    def _connections(self) -> tuple[aiohttp.ClientSession, ServerPool]:
        """The session and the pool of this process (made anew in a forked child). Called on
        the loop's thread."""
        if self._state is None or self._state[0] != os.getpid():
            settings = self.config.concurrency()
            connections = (settings.maximum + 4) * len(self.urls)
            client = make_session(self._headers, connections)
            self._state = (os.getpid(), client, ServerPool(self.urls, client, settings))
        return self._state[1], self._state[2]

    async def _generate_all(self, requests: list[LLMRequest]) -> list[LLMResult]:
        client, pool = self._connections()
        try:
            # A TaskGroup cancels the other requests as soon as one raises.
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(self._one(client, pool, request)) for request in requests
                ]
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None
        return [task.result() for task in tasks]

    async def _one(
        self, client: aiohttp.ClientSession, pool: ServerPool, request: LLMRequest
    ) -> LLMResult:
        body = self._body(request)
        retries = 0
        failovers = 0
        most_failovers = len(self.urls) * (self.config.max_retries + 1)
        while True:
            async with pool.slot() as server:
                started = time.monotonic()
                try:
                    result = await self._post(client, server, body)
                except _Busy as exc:
                    pool.overloaded(server, str(exc))
                    failure: _TryAgain = exc
                except _ServerFailed as exc:
                    pool.take_out(server, str(exc))
                    failure = exc
                else:
                    pool.completed(server, time.monotonic() - started, result.completion_tokens)
                    return result
            if isinstance(failure, _ServerFailed) and pool.any_up() and failovers < most_failovers:
                failovers += 1
                continue  # at once, to a server that is up
            retries += 1
            if retries > self.config.max_retries:
                raise BackendUnavailable(
                    f"The LLM server at {server.base_url} did not answer after {retries} tries "
                    f"(last error: {failure}){self._others_note(pool, server)}. Is the vLLM server "
                    "running? Check base_url, and the server's log if it is up."
                ) from failure
            await asyncio.sleep(_retry_wait(retries))

    def _others_note(self, pool: ServerPool, server: PooledServer) -> str:
        others = [url for url in self.urls if url != server.base_url]
        if not others or pool.any_up(besides=server):
            return ""
        return f"; none of the others was up either ({', '.join(others)})"

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
    async def _post(
        self, client: aiohttp.ClientSession, server: PooledServer, body: dict[str, Any]
    ) -> LLMResult:
        """One try at `server`. Raises `_Busy` or `_ServerFailed` for what a retry may fix."""
        url = f"{server.base_url}/chat/completions"
        timeout_s = self.config.timeout_s
        try:
            try:
                response = await call(client, "POST", url, timeout_s, body)
            except Unreachable:
                # Once at once: a kept-alive connection the server closed just then.
                response = await call(client, "POST", url, timeout_s, body)
        except TimeoutError as exc:
            raise _Busy(f"no answer within timeout_s={timeout_s}") from exc
        except Unreachable as exc:
            raise _ServerFailed(str(exc)) from exc
        status = response.status
        if status in BUSY_STATUSES:
            raise _Busy(f"HTTP {status}: {_server_message(response)}")
        if status >= 500:
            raise _ServerFailed(f"HTTP {status}: {_server_message(response)}")
        if status in CONFIG_STATUSES:
            raise BackendUnavailable(
                f"The LLM server at {url} refused the request with HTTP {status}: "
                f"{_server_message(response)}. Check base_url, model ('{self.config.model}') "
                "and api_key."
            )
        if status >= 400:
            return LLMResult(
                text="",
                finish_reason="error",
                error=f"The LLM server answered HTTP {status}: {_server_message(response)}",
                server=server.base_url,
            )
        return self._result(response, server.base_url)

    def _result(self, response: Answer, server: str) -> LLMResult:
        try:
            data = response.json()
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
            reason = choice.get("finish_reason")
            usage = data.get("usage") or {}
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise BackendUnavailable(
                f"The server at {server} answered HTTP {response.status} with something "
                f"that is not a chat completion ({response.text[:200]!r}). Check that base_url "
                "points to an OpenAI-compatible API root (usually ending in /v1)."
            ) from exc
        tokens = {
            "prompt_tokens": int(usage.get("prompt_tokens") or 0),
            "completion_tokens": int(usage.get("completion_tokens") or 0),
            "server": server,
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


def _server_message(response: Answer) -> str:
    """The error message of an OpenAI-style error body, else the start of the body."""
    try:
        data = response.json()
    except ValueError:  # not JSON (or not text)
        return response.text[:500] or response.reason
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if data.get("message"):
            return str(data["message"])
    return json.dumps(data)[:500]


def _retry_wait(retries: int) -> float:
    """Seconds before the next try after `retries` failed ones."""
    wait = min(RETRY_WAIT_FIRST_S * 2 ** (retries - 1), RETRY_WAIT_CAP_S)
    return wait + random.uniform(0, RETRY_JITTER_S)


async def _close(client: aiohttp.ClientSession, pool: ServerPool) -> None:
    await pool.close()
    await client.close()
