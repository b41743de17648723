"""One event loop per process, on a thread of its own, for the LLM server backends.

A worker's generate task is synchronous, but the requests of every batch it sends belong on one
loop: connections stay open from batch to batch, and one in-flight limit per server covers all
batches that call at the same time (threads of one process). The loop thread starts on first
use and again in a forked child (the parent's thread does not survive a fork).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_current: tuple[int, BackgroundLoop] | None = None


class BackgroundLoop:
    """An asyncio loop running for ever on a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="llm-requests", daemon=True
        )
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the loop and wait for its result in the calling thread. An
        exception in the caller while it waits (a Ctrl-C, a task's time limit) cancels it."""
        future = self.submit(coroutine)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        """Start `coroutine` on the loop; its future's `cancel()` cancels it."""
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError("a synchronous LLM call was made from the LLM loop's own thread")
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)


def background_loop() -> BackgroundLoop:
    """This process's loop, started on first use (and anew after a fork)."""
    global _current
    with _lock:
        if _current is None or _current[0] != os.getpid():
            _current = (os.getpid(), BackgroundLoop())
        return _current[1]
