"""Starting the service on this machine: `actionforge serve`, and the service `run` starts.

Both apply the migrations, start the embedded queue's workers when no broker is configured,
serve `create_app(settings)` with uvicorn, and stop the workers when they exit.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

from pydantic import ValidationError

from service.cli.console import err_console, fail, readable_errors
from service.db.migrate import upgrade_to_head
from service.metrics.multiprocess import start_metrics
from service.settings import Settings, settings_error_line


def load_settings() -> Settings:
    """The settings from the environment and `.env`; exits with a readable line when invalid."""
    try:
        return Settings()
    except ValidationError as exc:
        fail(settings_error_line(exc))


def prepare(settings: Settings) -> None:
    """Create the data directory and the embedded queue's file with its queues, and migrate the
    database: all before the API takes a request or a worker starts."""
    from service.queue.declare import declare_embedded_queues, prepare_embedded_queue

    prepare_embedded_queue(settings)
    declare_embedded_queues(settings)
    upgrade_to_head(settings.resolved_database_url())


@contextmanager
def embedded_workers(settings: Settings, log_path: Path | None = None) -> Iterator[None]:
    """Run worker processes on the embedded queue while inside, replacing any that dies;
    nothing with a real broker.

    Their output goes to this terminal, or to `log_path` when given.
    """
    if not settings.embedded_broker:
        yield
        return
    from service.worker_processes import start_embedded_worker
    from service.worker_supervisor import WorkerSupervisor

    with ExitStack() as stack:
        log = stack.enter_context(log_path.open("ab")) if log_path is not None else None
        supervisor = WorkerSupervisor(lambda: start_embedded_worker(settings, output=log))
        stack.enter_context(supervisor)
        where = f", logging to {log_path}" if log_path else ""
        err_console.print(
            f"embedded queue in {settings.data_dir}: {len(supervisor.processes)} worker "
            f"process(es){where}",
            highlight=False,
        )
        yield


def stop_on_sigterm() -> None:
    """Make SIGTERM stop this process the way Ctrl-C does, so worker processes are stopped on
    the way out (uvicorn passes a signal it handled on to the previous handler)."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def serve_api(host: str, port: int) -> None:
    """Run the REST API on `host:port` until stopped; with the embedded queue, its workers too."""
    import uvicorn

    from service.api import create_app
    from service.api.server import ApiServer

    settings = load_settings()
    with readable_errors():
        start_metrics(settings)  # this process's and the embedded workers' metrics folder
        prepare(settings)
        app = create_app(settings)
    stop_on_sigterm()
    with embedded_workers(settings), suppress(KeyboardInterrupt):
        ApiServer(uvicorn.Config(app, host=host, port=port, log_level="info")).run()
