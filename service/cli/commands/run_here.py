"""`actionforge run`: start the service here, run one job through it, write its dataset.

The order is chosen for start-up time: the database is migrated, the embedded queue's workers are
started, and the catalog and the job go straight into the database and the queue
(`local_submit`, with the API's checks); only then is the web stack imported and the API
started, to follow the job and export its dataset as `submit --wait` and `export` do. The
workers' own start (a process each) runs beside the job's submission and the API's start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from service.cli.commands.local import embedded_workers, load_settings, prepare, stop_on_sigterm
from service.cli.commands.options import export_suffix
from service.cli.console import fail, readable_errors
from service.metrics.multiprocess import start_metrics
from unified.errors import ActionForgeError


def run_here(
    catalog: Path, spec: dict[str, Any], kind: str | None, fmt: str, out: Path | None
) -> None:
    """Start the embedded workers and the API here, run one job, print its funnel, export its
    dataset in `fmt` to `out` (default: the catalog's name), and stop everything."""
    settings = load_settings()
    with readable_errors():
        suffix = export_suffix(fmt)
        target = out or Path(catalog.stem + suffix)
        if not catalog.is_file():
            raise ActionForgeError(f"{catalog}: no such file; give the path of a catalog file")
        start_metrics(settings)
        prepare(settings)
    stop_on_sigterm()
    with embedded_workers(settings, settings.data_dir / "workers.log"):
        from service.cli.commands.local_submit import submit_here

        with readable_errors():
            job = submit_here(settings, catalog, spec, kind)
        from service.api import create_app
        from service.api.server import BackgroundServer
        from service.cli.client import client_for
        from service.cli.commands.display import print_funnel
        from service.cli.commands.jobs import export_to_file, follow_or_cancel
        from service.db.models import JobStatus

        with readable_errors():
            app = create_app(settings)
            with BackgroundServer(app) as server, client_for(settings, server.url) as client:
                job = follow_or_cancel(client, job)
                print_funnel(job)
                if job.status != JobStatus.succeeded:
                    fail(f"job {job.id} {job.status}; nothing exported")
                export_to_file(client, job.id, fmt, target)
