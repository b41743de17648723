"""Worker processes: `actionforge worker` itself, and the ones `serve` and `run` start on the
embedded queue (started and stopped by `service.worker_processes`, re-exported here).

Both run the same code: apply migrations, then work the queues in this process with Celery's
prefork pool, while a timer thread sends again what a lost message, queue or worker left
unfinished (`service.queue.sweep`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from celery.signals import worker_process_shutdown, worker_ready, worker_shutdown
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from service.db.migrate import upgrade_to_head
from service.errors import InvalidRequest
from service.metrics.multiprocess import serve_worker_metrics, start_metrics
from service.queue.app import QUEUES, ActionForgeCelery, celery_for, prepare_embedded_queue
from service.queue.embedded import prefetch_multiplier
from service.queue.sending import VERIFY_QUEUE
from service.queue.sweep import SweepTimer
from service.settings import Settings
from service.worker_processes import (
    start_embedded_worker,
    start_embedded_workers,
    stop_workers,
    worker_command,
    worker_environment,
)

__all__ = [
    "parse_queues",
    "run_worker",
    "start_embedded_worker",
    "start_embedded_workers",
    "stop_workers",
    "worker_cli",
    "worker_command",
    "worker_environment",
]

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
            f"--prefetch-multiplier={prefetch_multiplier(settings)}",
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
