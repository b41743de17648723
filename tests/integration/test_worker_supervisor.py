"""The embedded queue's worker processes under `serve` and `run` are supervised: a worker killed
with SIGKILL mid-job is reaped and replaced without anyone restarting anything, and the job ends
with every sample accounted for."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from engine_helpers import Worker
from jobs_over_http import submit_job, upload_travel_catalog, wait_for_job_over_http
from served_api import Api
from test_job_workers import (
    ServeApi,
    Sessions,
    assert_every_sample_accounted_for,
    verified_batches,
    wait_until,
)

from service.pipeline.spec import JobSpec
from service.settings import Settings
from service.worker_supervisor import WorkerSupervisor

pytestmark = pytest.mark.slow


def running_in_group(pgid: int) -> list[int]:
    """The processes of group `pgid` that are not zombies (an orphan's zombie waits for init)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # pid (comm) state ppid pgrp ...: split after the command, which may hold spaces
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_killed_embedded_worker_is_replaced_and_the_job_finishes(
    migrated_database_url: str, sessions: Sessions, serve_api: ServeApi, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=migrated_database_url)
    assert settings.embedded_broker
    log = tmp_path / "workers.log"
    started: list[Worker] = []

    def start_worker() -> subprocess.Popen[bytes]:
        # The worker `serve` starts, with the test generators (a slow one) registered.
        started.append(Worker.start(settings, log, "generate,verify", 2, test_generators=True))
        return started[-1].process

    with WorkerSupervisor(start_worker) as supervisor:
        started[0].wait_ready()
        api: Api = serve_api(settings)
        spec = JobSpec(n=1000, generator="slow", seed=5, batch_size=50)
        job_id = submit_job(api.http, upload_travel_catalog(api.http), spec)
        wait_until(lambda: verified_batches(sessions, job_id) >= 3, "3 batches verified", *started)

        doomed = started[0].process
        os.kill(doomed.pid, signal.SIGKILL)  # the main process only: its pool is orphaned
        deadline = time.monotonic() + 30
        while supervisor.replaced == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert supervisor.replaced == 1, started[0].tail()
        # Nothing of the dead worker (its orphaned pool processes) is left running.
        wait_until(lambda: not running_in_group(doomed.pid), "the dead worker's pool gone")
        assert supervisor.processes == [started[1].process]

        job = wait_for_job_over_http(api.http, job_id, *started)
    assert_every_sample_accounted_for(sessions, job, 1000)
    assert all(worker.process.poll() is not None for worker in started)
