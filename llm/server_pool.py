"""The servers one backend talks to: who takes the next request, and who is out.

Each request takes a slot at the server with the fewest requests outstanding among those that
are up and below their in-flight limit (`llm.concurrency.AimdLimit`, one per server); requests
that find no slot wait in order of arrival. While a server has requests outstanding (once they
reach half its limit, or requests wait), its load is read from `GET /metrics` every
`metrics_interval_s` and moves its limit.

A server that fails (connection error, 5xx other than 503) is taken out: no request goes there
until a health check (`GET /health`, else `GET {base_url}/models`) answers 200, tried every
`health_interval_s` and then less often. While no server is up, requests still go to the server
tried longest ago, so that a backend whose only server is down fails within its retries instead
of waiting for ever.

Runs on one event loop (`llm.event_loop`): nothing here locks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field

import aiohttp

from llm.concurrency import AimdLimit, ConcurrencySettings
from llm.http_session import Unreachable, call
from llm.server_metrics import read_load
from llm.server_tokens import server_root

log = logging.getLogger(__name__)

METRICS_INTERVAL_S = 1.0
HEALTH_INTERVAL_S = 1.0
HEALTH_INTERVAL_MAX_S = 10.0
NO_METRICS_STATUSES = frozenset({401, 403, 404, 405, 501})


@dataclass(eq=False)
class PooledServer:
    """One server's state in the pool."""

    base_url: str
    limit: AimdLimit
    outstanding: int = 0
    up: bool = True
    last_error: str | None = None
    tried_at: float = 0.0
    has_metrics: bool = True
    taken_out: int = 0
    _poller: asyncio.Task[None] | None = field(default=None, repr=False)
    _checker: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def root(self) -> str:
        """The server's root URL (without the /v1 API prefix)."""
        return server_root(self.base_url)


class ServerPool:
    """Slots at a set of servers, routed by least outstanding requests."""

    def __init__(
        self,
        base_urls: Sequence[str],
        client: aiohttp.ClientSession,
        settings: ConcurrencySettings,
        metrics_interval_s: float = METRICS_INTERVAL_S,
        health_interval_s: float = HEALTH_INTERVAL_S,
    ) -> None:
        self.servers = [PooledServer(url.rstrip("/"), AimdLimit(settings)) for url in base_urls]
        self._client = client
        self._waiters: deque[asyncio.Future[PooledServer]] = deque()
        self._metrics_interval_s = metrics_interval_s
        self._health_interval_s = health_interval_s
        self._closed = False

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[PooledServer]:
        """A server to send one request to, held until the block ends."""
        server = await self.acquire()
        try:
            yield server
        finally:
            self.release(server)

    async def acquire(self) -> PooledServer:
        """Take a slot; waits while every server is at its limit."""
        if not self._waiters:
            server = self._pick()
            if server is not None:
                return self._take(server)
        waiter: asyncio.Future[PooledServer] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(waiter.result())
            raise

    def release(self, server: PooledServer) -> None:
        """Give a slot back."""
        server.outstanding -= 1
        self._wake()

    def any_up(self, besides: PooledServer | None = None) -> bool:
        """Whether a server (other than `besides`) is up."""
        return any(s.up for s in self.servers if s is not besides)

    def overloaded(self, server: PooledServer, reason: str) -> None:
        """The server answered 429 or 503, or a request timed out: lower its limit."""
        if server.limit.on_overloaded(time.monotonic(), reason):
            log.info("%s: %s, in-flight limit now %d", server.base_url, reason, server.limit.value)

    def completed(self, server: PooledServer, seconds: float, completion_tokens: int) -> None:
        """A request was answered: its latency per token feeds the server's limit, and a
        server that was out is back in."""
        if not server.up:
            self._back_in(server)
        if server.limit.on_completed(seconds, completion_tokens, time.monotonic()):
            log.info(
                "%s: time per token grew, in-flight limit now %d",
                server.base_url,
                server.limit.value,
            )

    def take_out(self, server: PooledServer, error: str) -> None:
        """Send nothing more to `server` until a health check answers."""
        server.last_error = error
        if not server.up:
            return
        server.up = False
        server.taken_out += 1
        log.warning("LLM server %s taken out: %s", server.base_url, error)
        if server._checker is None or server._checker.done():
            server._checker = asyncio.get_running_loop().create_task(self._check_health(server))

    async def close(self) -> None:
        """Stop the metrics readers and health checks (the client is the caller's)."""
        self._closed = True
        tasks = [t for s in self.servers for t in (s._poller, s._checker) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError, Exception):
                await task
        while self._waiters:
            self._waiters.popleft().cancel()

    def _pick(self) -> PooledServer | None:
        up = [s for s in self.servers if s.up]
        if up:
            free = [s for s in up if s.outstanding < s.limit.value]
            if not free:
                return None
            return min(free, key=lambda s: (s.outstanding, s.outstanding / s.limit.value))
        # Nothing is up: try the server tried longest ago; its failure counts as a retry.
        free = [s for s in self.servers if s.outstanding < s.limit.value]
        return min(free, key=lambda s: s.tried_at) if free else None

    def _take(self, server: PooledServer) -> PooledServer:
        server.outstanding += 1
        server.tried_at = time.monotonic()
        # The load only matters near the limit: below half of it, nothing would change it
        # (and each reading costs the server a few milliseconds of its CPU).
        near_limit = 2 * server.outstanding >= server.limit.value or bool(self._waiters)
        idle = server._poller is None or server._poller.done()
        if server.has_metrics and near_limit and idle:
            server._poller = asyncio.get_running_loop().create_task(self._read_load(server))
        return server

    def _wake(self) -> None:
        while self._waiters:
            if self._waiters[0].done():  # cancelled while waiting
                self._waiters.popleft()
                continue
            server = self._pick()
            if server is None:
                return
            self._waiters.popleft().set_result(self._take(server))

    async def _read_load(self, server: PooledServer) -> None:
        """Read the server's metrics while it has requests of ours, and move its limit."""
        url = f"{server.root}/metrics"
        while server.outstanding > 0 and not self._closed:
            await asyncio.sleep(self._metrics_interval_s)
            try:
                response = await call(self._client, "GET", url, self._metrics_interval_s * 5)
            except (Unreachable, TimeoutError):
                continue  # the requests themselves tell whether the server is gone
            if response.status in NO_METRICS_STATUSES:
                server.has_metrics = False
                return
            load = read_load(response.text) if response.status == 200 else None
            if load is None:
                continue
            change = server.limit.on_load(
                load, server.outstanding, bool(self._waiters), time.monotonic()
            )
            if change > 0:
                self._wake()
            elif change < 0:
                log.info(
                    "%s: %s, in-flight limit now %d",
                    server.base_url,
                    server.limit.last_reason,
                    server.limit.value,
                )

    async def _check_health(self, server: PooledServer) -> None:
        wait = self._health_interval_s
        while not server.up and not self._closed:
            await asyncio.sleep(wait)
            if await self._healthy(server):
                if not server.up:  # a request may have found it answering meanwhile
                    self._back_in(server)
                return
            wait = min(wait * 1.5, HEALTH_INTERVAL_MAX_S)

    def _back_in(self, server: PooledServer) -> None:
        server.up = True
        server.last_error = None
        log.warning("LLM server %s is back in", server.base_url)
        self._wake()

    async def _healthy(self, server: PooledServer) -> bool:
        for url in (f"{server.root}/health", f"{server.base_url}/models"):
            try:
                response = await call(self._client, "GET", url, 5.0)
            except (Unreachable, TimeoutError):
                return False
            if response.status == 200:
                return True
            if response.status not in NO_METRICS_STATUSES:
                return False  # the route exists and says the server is not well
        return False
