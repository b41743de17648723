"""Worker processes: `actionforge worker` itself, and the ones `serve` starts on the embedded queue.

Both run the same code: apply migrations, then work the queues in this process with Celery's
prefork pool, while a timer thread sends again what a lost message, queue or worker left
unfinished (`service.queue.sweep`).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import IO

from celery.signals import worker_process_shutdown, worker_ready, worker_shutdown
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from service.db.migrate import upgrade_to_head
from service.errors import InvalidRequest
from service.metrics.multiprocess import resolved_metrics_dir, serve_worker_metrics, start_metrics
from service.queue.app import QUEUES, ActionForgeCelery, celery_for, prepare_embedded_queue
from service.queue.sending import VERIFY_QUEUE
from service.queue.sweep import SweepTimer
from service.settings import Settings

log = logging.getLogger(__name__)


def parse_queues(text: str) -> list[str]:
    """`generate,verify` -> ["generate", "verify"]; raises `InvalidRequest` for unknown names."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in QUEUES]
    if unknown or not names:
        shown = f"unknown queue '{unknown[0]}'" if unknown else "no queue given"
        raise InvalidRequest(f"-Q: {shown}; give a comma-separated list of {', '.join(QUEUES)}")
    return list(dict.fromkeys(names))


def default_concurrency() -> int:
    """One pool process per CPU core this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def _close_llm_backends(**_: object) -> None:
    # Engines hold subprocesses and GPU memory; a pool process that exits lets them go first.
    from llm.shared import close_shared_backends

    close_shared_backends()


def _run_sweep_while_working(app: ActionForgeCelery) -> None:
    """Start the sweep timer once the worker is ready (its pool forked), stop it as it stops."""
    timers: list[SweepTimer] = []

    def start(sender: object = None, **_: object) -> None:
        hostname = getattr(sender, "hostname", None) or f"actionforge-{os.getpid()}"
        timers.append(SweepTimer(app, str(hostname)))
        timers[-1].start()

    def stop(**_: object) -> None:
        for timer in timers:
            timer.stop()

    worker_ready.connect(start, weak=False)
    worker_shutdown.connect(stop, weak=False)


def run_worker(queues: Sequence[str], concurrency: int, settings: Settings) -> None:
    """Migrate the database, then work `queues` until stopped, sweeping for lost batches.
    Its pool counts into the metrics folder, if any, and is served at AF_METRICS_PORT, if set."""
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s: %(levelname)s] %(message)s")
    start_metrics(settings)  # before the pool forks: its processes inherit the folder
    serve_worker_metrics(settings)
    prepare_embedded_queue(settings)
    upgrade_to_head(settings.resolved_database_url())
    app = celery_for(settings)
    app.verifies_here = VERIFY_QUEUE in queues
    _run_sweep_while_working(app)
    worker_process_shutdown.connect(_close_llm_backends, weak=False)
    app.worker_main(
        [
            "worker",
            f"--queues={','.join(queues)}",
            f"--concurrency={concurrency}",
            "--prefetch-multiplier=1",
            "--loglevel=INFO",
            f"--hostname=actionforge-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )


def worker_cli(queues: str, concurrency: int | None) -> None:
    """`actionforge worker`: read the settings, then run a worker; bad input exits 2 with one
    readable line."""
    from pydantic import ValidationError

    from service.cli.console import fail, readable_errors
    from service.settings import get_settings, settings_error_line

    try:
        settings = get_settings()
    except ValidationError as exc:
        fail(settings_error_line(exc))
    with readable_errors():
        names = parse_queues(queues)
        try:
            run_worker(names, concurrency or default_concurrency(), settings)
        except OperationalError as exc:
            url = make_url(settings.resolved_database_url()).render_as_string(hide_password=True)
            reason = str(exc.orig or exc).strip().splitlines()[0]
            fail(
                f"cannot use the database {url}: {reason}; check AF_DATABASE_URL and that the "
                "database server runs"
            )


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
