"""How many requests one client keeps in flight at one server: an AIMD limit.

The limit starts high (enough to fill a GPU server's batch) and moves with what the server says:

- **decrease** (multiply by `backoff`) on a 429, 503 or a timeout; when the server's own queue
  holds more than `queue_headroom` of what it runs (`vllm:num_requests_waiting` against
  `vllm:num_requests_running`: the server already has more than it can batch, so more from us
  only waits there), once our requests in flight came down to the last limit; when it preempted
  requests or its KV cache is full (work would be redone); and when the time per completion
  token grows past `latency_tolerance` times the best seen (another client took the server,
  or it slows down);
- **increase** (by `growth` of the limit) while the server runs all it is sent, queues nothing
  and has KV cache to spare, and there are more requests than the limit lets out.

At most one decrease per `cooldown_s`: a burst of 429s, or many readings of one full queue, are
one signal. Pure logic: the caller passes the clock and the readings (see `llm.server_pool`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LATENCY_SMOOTHING = 0.1
"""Weight of a new request in the moving average of seconds per completion token."""
LATENCY_WARMUP = 16
"""Requests seen before the latency signal counts (the first ones set the baseline)."""
BASELINE_DRIFT = 1.002
"""The best time per token seen rises by this factor per request, so that a baseline from a
quiet moment long ago does not keep the limit down for ever."""


@dataclass(frozen=True)
class ConcurrencySettings:
    """Bounds and gains of the limit (`BackendConfig` fills them from a job's options)."""

    initial: int = 256
    minimum: int = 4
    maximum: int = 1024
    backoff: float = 0.75
    growth: float = 0.1
    queue_headroom: float = 0.25
    min_queue: int = 8
    kv_cache_full: float = 0.95
    latency_tolerance: float = 2.5
    cooldown_s: float = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.minimum <= self.maximum:
            raise ValueError("concurrency bounds need 1 <= minimum <= maximum")
        if not 0 < self.backoff < 1 or self.growth <= 0:
            raise ValueError("backoff must lie in (0, 1) and growth above 0")


@dataclass(frozen=True)
class ServerLoad:
    """One reading of the server's metrics. `kv_cache_usage` is a fraction (0..1) and
    `preemptions` a running total; None where the server does not report them."""

    running: float
    waiting: float
    kv_cache_usage: float | None = None
    preemptions: float | None = None


class AimdLimit:
    """The in-flight limit for one server, moved by `on_*` signals."""

    def __init__(self, settings: ConcurrencySettings | None = None) -> None:
        self.settings = settings or ConcurrencySettings()
        s = self.settings
        self._limit = float(min(max(s.initial, s.minimum), s.maximum))
        self._last_decrease = -math.inf
        self._latency: float | None = None  # moving average, seconds per completion token
        self._best_latency: float | None = None
        self._completed = 0
        self._preemptions: float | None = None
        self.decreases = 0
        self.last_reason: str | None = None

    @property
    def value(self) -> int:
        """Requests that may be in flight now."""
        return max(self.settings.minimum, int(self._limit))

    def on_overloaded(self, now: float, reason: str = "overloaded") -> bool:
        """A 429, 503 or timeout; True when the limit went down."""
        return self._decrease(now, reason)

    def on_completed(self, seconds: float, completion_tokens: int, now: float) -> bool:
        """A request answered after `seconds` with `completion_tokens`; True when latency growth
        took the limit down."""
        if completion_tokens <= 0 or seconds <= 0:
            return False
        per_token = seconds / completion_tokens
        self._completed += 1
        if self._latency is None:
            self._latency = per_token
        else:
            self._latency += LATENCY_SMOOTHING * (per_token - self._latency)
        if self._completed < LATENCY_WARMUP:
            return False
        best = self._best_latency
        self._best_latency = (
            self._latency if best is None else min(self._latency, best * BASELINE_DRIFT)
        )
        grown = self._latency > self.settings.latency_tolerance * self._best_latency
        if grown and self._decrease(now, "latency"):
            # Start over from the slower level: one growth is one signal, not one per reply.
            self._best_latency = self._latency
            return True
        return False

    def on_load(self, load: ServerLoad, outstanding: int, queued: bool, now: float) -> int:
        """A reading of the server's metrics while we have `outstanding` requests there and
        (`queued`) more waiting for the limit. Returns the change of the limit (+, -, or 0)."""
        before = self.value
        s = self.settings
        preempted = (
            load.preemptions is not None
            and self._preemptions is not None
            and load.preemptions > self._preemptions
        )
        if load.preemptions is not None:
            self._preemptions = load.preemptions
        kv_full = load.kv_cache_usage is not None and load.kv_cache_usage >= s.kv_cache_full
        queue_long = load.waiting > max(s.min_queue, s.queue_headroom * load.running)
        if preempted or kv_full:
            self._decrease(now, "preempted" if preempted else "kv_cache_full")
        elif queue_long and outstanding <= self.value:
            # Only once the last decrease has taken effect (our requests drained down to the
            # limit): requests take seconds, and a queue still full of ones sent before it
            # says nothing new.
            self._decrease(now, "server_queue")
        elif queued and outstanding >= self.value and load.waiting == 0:
            self._limit = min(float(s.maximum), self._limit + max(1.0, s.growth * self._limit))
        return self.value - before

    def _decrease(self, now: float, reason: str) -> bool:
        if now - self._last_decrease < self.settings.cooldown_s:
            return False
        lowered = max(float(self.settings.minimum), self._limit * self.settings.backoff)
        if lowered >= self._limit:
            return False
        self._limit = lowered
        self._last_decrease = now
        self.decreases += 1
        self.last_reason = reason
        return True
