"""Starting and stopping worker processes (what `serve` and `run` do on the embedded queue),
without importing the worker's own side (Celery's worker, the tasks): a process that starts
workers need not load what they run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import IO

from service.metrics.multiprocess import resolved_metrics_dir
from service.queue.sending import QUEUES
from service.settings import Settings


def worker_environment(settings: Settings) -> dict[str, str]:
    """This process's environment plus the settings a worker needs, spelled as `AF_*`."""
    env = dict(os.environ)
    env.update(
        AF_DATA_DIR=str(settings.data_dir.resolve()),
        AF_DATABASE_URL=settings.resolved_database_url(),
        AF_BROKER_URL=settings.broker_url,
        AF_BATCH_SIZE=str(settings.batch_size),
        AF_TASK_TIME_LIMIT=str(settings.task_time_limit),
        AF_TEMPLATES_ROOT=str(settings.resolved_templates_root().resolve()),
        AF_SWEEP_INTERVAL_SECONDS=str(settings.sweep_interval_seconds),
        AF_BATCH_LEASE_SECONDS=str(settings.batch_lease_seconds),
    )
    metrics_dir = resolved_metrics_dir(settings)
    if metrics_dir is not None:
        env["AF_METRICS_DIR"] = str(metrics_dir.resolve())
    env.pop("AF_METRICS_PORT", None)  # the API that starts these workers serves their metrics
    return env


def worker_command(queues: Sequence[str], concurrency: int | None = None) -> list[str]:
    """The command line of an `actionforge worker` process run by this Python (through
    `service.worker_main`, which skips loading the rest of the CLI)."""
    command = [sys.executable, "-m", "service.worker_main", "-Q", ",".join(queues)]
    if concurrency is not None:
        command += ["--concurrency", str(concurrency)]
    return command


def start_embedded_workers(
    settings: Settings, concurrency: int | None = None, output: IO[bytes] | None = None
) -> list[subprocess.Popen[bytes]]:
    """Start the `actionforge worker` processes that work every queue of the embedded broker
    (one, with a pool of `concurrency` processes; see `start_embedded_worker`)."""
    return [start_embedded_worker(settings, concurrency, output)]


def start_embedded_worker(
    settings: Settings, concurrency: int | None = None, output: IO[bytes] | None = None
) -> subprocess.Popen[bytes]:
    """Start an `actionforge worker` process that works every queue of the embedded broker.

    Its output goes to `output` (default: this process's). It runs in a session of its own, so
    a Ctrl-C meant for the caller does not reach it (or its pool processes, which would die
    holding the pool's locks): the caller stops it with `stop_workers` as it exits.
    """
    command = worker_command(QUEUES, concurrency)
    env = worker_environment(settings)
    return subprocess.Popen(command, env=env, stdout=output, stderr=output, start_new_session=True)


def stop_workers(processes: Sequence[subprocess.Popen[bytes]], timeout: float = 30.0) -> None:
    """Ask workers to finish their current tasks and stop; kill those still running after
    `timeout` seconds (the sweep sends their batches again).

    SIGTERM goes to each worker's main process only, which stops its own pool.
    """
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
