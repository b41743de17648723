"""Where a process's metrics live, and reading them back for a scrape.

Workers count in their Celery pool processes, which a scrape of the API never reaches. With a
metrics folder (prometheus-client's multiprocess mode, `PROMETHEUS_MULTIPROC_DIR`) every process
writes its counters to files of its own there, and whoever serves /metrics adds them up: the API
for every process on its machine that shares the folder (`serve` and `run` give theirs to the
embedded workers), a worker's own metrics server (`AF_METRICS_PORT`) for its pool. Without a
folder a process serves what it counted itself.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server, values
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from service.settings import Settings
from unified.errors import ActionForgeError

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
EMBEDDED_METRICS_FOLDER = "metrics"
# prometheus-client names a process's files <kind>_<pid>.db (gauges: gauge_<mode>_<pid>.db).
_PROCESS_FILE = re.compile(r"^[a-z_]+_(?P<pid>\d+)\.db$")


def resolved_metrics_dir(settings: Settings) -> Path | None:
    """The metrics folder of `settings`: AF_METRICS_DIR, else PROMETHEUS_MULTIPROC_DIR, else
    `data_dir/metrics` with the embedded queue (its workers run on this machine); None when
    each process keeps its own."""
    if settings.metrics_dir is not None:
        return settings.metrics_dir
    if os.environ.get(MULTIPROC_ENV):
        return Path(os.environ[MULTIPROC_ENV])
    if settings.embedded_broker:
        return settings.data_dir / EMBEDDED_METRICS_FOLDER
    return None


def use_metrics_dir(path: Path) -> None:
    """Make this process, and the processes it starts or forks from now on, count into `path`,
    after removing the files of processes that are gone (`dead_process_files`).

    Call it before anything is counted: counts made before stay in this process only.
    """
    path = path.resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
        for stale in dead_process_files(path):
            stale.unlink(missing_ok=True)
    except OSError as exc:
        raise ActionForgeError(
            f"metrics folder {path}: {exc.strerror or exc}; set AF_METRICS_DIR to a folder "
            "this user can write"
        ) from None
    os.environ[MULTIPROC_ENV] = str(path)
    if not getattr(values.ValueClass, "_multiprocess", False):
        # prometheus-client reads the variable once, on import; the metrics of this project
        # all have labels, so none has a value yet and every one made from now on is a file.
        values.ValueClass = values.MultiProcessValue()


def start_metrics(settings: Settings) -> Path | None:
    """`use_metrics_dir` on the folder of `settings` when it has one; that folder."""
    path = resolved_metrics_dir(settings)
    if path is not None:
        use_metrics_dir(path)
    return path


def dead_process_files(path: Path, is_running: Callable[[int], bool] | None = None) -> list[Path]:
    """The metric files in `path` of processes that no longer run: left by a worker that was
    stopped or killed, or by an earlier run. Their counts leave the totals (a counter reset)."""
    running = is_running or process_is_running
    stale = []
    for entry in sorted(path.iterdir()):
        match = _PROCESS_FILE.match(entry.name)
        if match and not running(int(match["pid"])):
            stale.append(entry)
    return stale


def process_is_running(pid: int) -> bool:
    """Whether a process with id `pid` exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def multiprocess_dir() -> Path | None:
    """The folder this process counts into, or None when it counts in memory."""
    if not getattr(values.ValueClass, "_multiprocess", False):
        return None
    folder = os.environ.get(MULTIPROC_ENV)
    return Path(folder) if folder else None


class RecordedMetrics:
    """A collector of what the processes counted: every process's files in the metrics folder
    added up, or, without a folder, this process's own registry."""

    def collect(self) -> Iterable[Metric]:
        folder = multiprocess_dir()
        if folder is None:
            return REGISTRY.collect()
        return MultiProcessCollector.merge([str(f) for f in folder.glob("*.db")])


def serve_worker_metrics(settings: Settings) -> None:
    """When AF_METRICS_PORT is set, serve this worker's metrics (its pool's included) at
    http://AF_METRICS_HOST:port/metrics from a thread; a worker without a metrics folder gets a
    private one, removed when it exits."""
    if settings.metrics_port is None:
        return
    if multiprocess_dir() is None:
        private = Path(tempfile.mkdtemp(prefix="actionforge-metrics-"))
        use_metrics_dir(private)
        _remove_at_exit(private)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RecordedMetrics())
    try:
        start_http_server(settings.metrics_port, settings.metrics_host, registry=registry)
    except OSError as exc:
        raise ActionForgeError(
            f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port} "
            f"({exc.strerror or exc}); set AF_METRICS_PORT to a free port"
        ) from None


def _remove_at_exit(folder: Path) -> None:
    owner = os.getpid()

    def remove() -> None:
        if os.getpid() == owner:  # not in a forked pool process that runs exit handlers
            shutil.rmtree(folder, ignore_errors=True)

    atexit.register(remove)
