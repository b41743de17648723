"""The embedded queue's worker processes, kept running while `serve` or `run` runs.

A worker that dies (killed, out of memory, a crash in a native library) is reaped with whatever
is left of its process group and replaced within about `CHECK_SECONDS`; the batches the dead one
held are sent again by the sweep (`service.queue.sweep`) once their lease runs out. A worker that
keeps dying right after its start is restarted less and less often, so a broken setup does not
spin.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from contextlib import suppress

from service.worker_processes import stop_workers

log = logging.getLogger(__name__)

StartWorker = Callable[[], "subprocess.Popen[bytes]"]

CHECK_SECONDS = 0.5
QUICK_DEATH_SECONDS = 10.0
MAX_RESTART_DELAY_SECONDS = 30.0


class WorkerSupervisor:
    """Runs `count` processes from `start_worker` and replaces any that exits before `stop`."""

    def __init__(self, start_worker: StartWorker, count: int = 1) -> None:
        self._start_worker = start_worker
        self._count = count
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._processes: list[subprocess.Popen[bytes]] = []
        self._started_at: list[float] = []
        self._quick_deaths: list[int] = []
        self._watcher = threading.Thread(target=self._watch, name="worker-supervisor", daemon=True)
        self.replaced = 0

    @property
    def processes(self) -> list[subprocess.Popen[bytes]]:
        """The worker processes running now (a copy)."""
        with self._lock:
            return list(self._processes)

    def start(self) -> None:
        with self._lock:
            for _ in range(self._count):
                self._processes.append(self._start_worker())
                self._started_at.append(time.monotonic())
                self._quick_deaths.append(0)
        self._watcher.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop watching, then stop the workers (see `service.worker.stop_workers`)."""
        self._stopping.set()
        if self._watcher.is_alive():
            self._watcher.join()
        with self._lock:
            stop_workers(self._processes, timeout)

    def __enter__(self) -> WorkerSupervisor:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _watch(self) -> None:
        while not self._stopping.wait(CHECK_SECONDS):
            for index in range(self._count):
                self._check(index)

    def _check(self, index: int) -> None:
        with self._lock:
            process = self._processes[index]
            code = process.poll()
            if code is None or self._stopping.is_set():
                return
            _reap_group(process)
            lived = time.monotonic() - self._started_at[index]
            quick = lived < QUICK_DEATH_SECONDS
            self._quick_deaths[index] = self._quick_deaths[index] + 1 if quick else 0
            delay = min(2.0 ** (self._quick_deaths[index] - 1), MAX_RESTART_DELAY_SECONDS)
        log.warning(
            "worker process %d exited with %s after %.0f s; starting another%s",
            process.pid,
            code,
            lived,
            f" in {delay:.0f} s" if quick else "",
        )
        if quick and self._stopping.wait(delay):
            return
        with self._lock:
            if self._stopping.is_set():
                return
            self._processes[index] = self._start_worker()
            self._started_at[index] = time.monotonic()
            self.replaced += 1


def _reap_group(process: subprocess.Popen[bytes]) -> None:
    """Kill what is left of a dead worker's process group (its pool processes, which would go
    on working batches the sweep sends again). Workers lead their own group."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
