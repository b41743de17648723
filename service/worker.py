"""Worker processes: `actionforge worker` itself, and the ones `serve` starts on the embedded queue.

Both run the same code: apply migrations, recover what a lost queue or worker left unfinished,
then work the queues in this process with Celery's prefork pool.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import IO

from celery.signals import worker_process_shutdown
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from service.db.engine import make_engine, session_factory
from service.db.migrate import upgrade_to_head
from service.errors import InvalidRequest
from service.queue.app import QUEUES, celery_for, prepare_embedded_queue
from service.queue.dispatch import recover_unfinished
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


def run_worker(queues: Sequence[str], concurrency: int, settings: Settings) -> None:
    """Migrate the database, recover unfinished batches, then work `queues` until stopped."""
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s: %(levelname)s] %(message)s")
    prepare_embedded_queue(settings)
    database_url = settings.resolved_database_url()
    upgrade_to_head(database_url)
    engine = make_engine(database_url)
    try:
        recovered = recover_unfinished(session_factory(engine), settings)
    finally:
        engine.dispose()  # no pooled connection may cross the fork into pool processes
    log.info("re-enqueued %d unfinished batch tasks", recovered)
    app = celery_for(settings)
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
    )
    return env


def worker_command(queues: Sequence[str], concurrency: int | None = None) -> list[str]:
    """The command line of an `actionforge worker` process run by this Python."""
    command = [sys.executable, "-m", "service.cli.app", "worker", "-Q", ",".join(queues)]
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
    `timeout` seconds (their batches are recovered on the next start).

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
