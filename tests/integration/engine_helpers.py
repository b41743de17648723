"""Helpers of the job-engine tests: catalogs in the database, real worker processes, waiting.

Workers are real `actionforge worker` processes, each in its own process group so that a test
can kill one together with its pool processes, as a lost machine would be.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from plugins_for_tests import register_test_plugins
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import FINISHED, BatchRecord, CatalogRecord, JobRecord
from service.metrics.multiprocess import MULTIPROC_ENV
from service.pipeline.spec import JobSpec
from service.settings import Settings
from unified.catalogs import load_catalog

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
TRAVEL_CATALOG = ROOT / "examples" / "travel_api.yaml"
# Generous bounds that only keep a broken run from hanging; no test asserts on time.
WORKER_READY_SECONDS = 60
JOB_GENERATOR = "template"
JOB_DONE_SECONDS = 300

register_test_plugins()


def insert_catalog(sessions: sessionmaker[Session], catalog_id: str, *, empty: bool = False) -> str:
    """Store the bundled travel catalog (or one without tools) under `catalog_id`."""
    catalog = load_catalog(TRAVEL_CATALOG)
    tools = [] if empty else [t.model_dump(mode="json", by_alias=True) for t in catalog.tools]
    with sessions() as session:
        session.add(
            CatalogRecord(
                id=catalog_id,
                name=TRAVEL_CATALOG.name,
                kind=catalog.kind,
                title=catalog.title,
                sha256=catalog.sha256,
                tools=tools,
            )
        )
        session.commit()
    return catalog_id


def submit(
    sessions: sessionmaker[Session], settings: Settings, catalog_id: str, spec: JobSpec
) -> str:
    """Create, commit and enqueue a job the way the API does; returns its id."""
    from service.pipeline.submit import create_job
    from service.queue.dispatch import enqueue_job

    with sessions() as session:
        job = create_job(session, catalog_id, spec, settings)
        session.commit()
    enqueue_job(job.id, settings)
    return job.id


class Worker:
    """One `actionforge worker` process (and its pool) in a process group of its own, logging
    to a file."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process = process
        self.log = log

    @classmethod
    def start(
        cls, settings: Settings, log: Path, queues: str, concurrency: int, test_generators: bool
    ) -> Worker:
        """Start `actionforge worker -Q queues` for `settings` (not waiting for it)."""
        if test_generators:  # the same CLI, with the test generators registered
            command = [sys.executable, str(HERE / "worker_with_test_plugins.py")]
        else:
            command = [str(Path(sys.executable).parent / "actionforge")]
        command += ["worker", "-Q", queues, "--concurrency", str(concurrency)]
        # The metrics folder and port `settings` say, none left in this process's environment.
        metrics = ("AF_METRICS_", MULTIPROC_ENV)
        env = {k: v for k, v in os.environ.items() if not k.startswith(metrics)}
        env.update(
            AF_DATABASE_URL=settings.resolved_database_url(),
            AF_BROKER_URL=settings.broker_url,
            AF_DATA_DIR=str(settings.data_dir),
            AF_BATCH_SIZE=str(settings.batch_size),
            AF_SWEEP_INTERVAL_SECONDS=str(settings.sweep_interval_seconds),
            AF_BATCH_LEASE_SECONDS=str(settings.batch_lease_seconds),
            # The checkout under test first, also where another one is installed.
            PYTHONPATH=os.pathsep.join([str(HERE), str(ROOT)]),
        )
        if settings.metrics_dir is not None:
            env["AF_METRICS_DIR"] = str(settings.metrics_dir)
        if settings.metrics_port is not None:
            env["AF_METRICS_PORT"] = str(settings.metrics_port)
        with log.open("ab") as sink:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=sink, stderr=sink, start_new_session=True
            )
        return cls(process, log)

    def wait_ready(self) -> None:
        """Wait until Celery says the worker is ready to take tasks."""
        deadline = time.monotonic() + WORKER_READY_SECONDS
        while time.monotonic() < deadline:
            if " ready." in self.log.read_text(errors="replace"):
                return
            if self.process.poll() is not None:
                pytest.fail(f"worker exited with {self.process.returncode}:\n{self.tail()}")
            time.sleep(0.1)
        pytest.fail(f"worker not ready after {WORKER_READY_SECONDS} s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once: nothing gets to clean up."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def request_stop(self) -> None:
        """Ask for a warm shutdown: SIGTERM to the main process, which stops its pool."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        """Warm shutdown, then SIGKILL whatever of the group is left after 30 s."""
        self.request_stop()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def wait_for_job(sessions: sessionmaker[Session], job_id: str, *workers: Worker) -> JobRecord:
    """Poll until the job is finished; fail with the workers' logs if it never is."""
    deadline = time.monotonic() + JOB_DONE_SECONDS
    while time.monotonic() < deadline:
        with sessions() as session:
            job = session.scalar(select(JobRecord).where(JobRecord.id == job_id))
            if job is not None and job.status in FINISHED:
                return job
        time.sleep(0.1)
    logs = "\n\n".join(worker.tail() for worker in workers)
    with sessions() as session:
        job = session.get(JobRecord, job_id)
        state = f"job: {job.status if job else None}, counts: {job.counts if job else None}"
        open_batches = session.execute(
            select(
                BatchRecord.id, BatchRecord.status, BatchRecord.attempts, BatchRecord.error
            ).where(BatchRecord.job_id == job_id, BatchRecord.status != "verified")
        ).all()
    pytest.fail(
        f"job {job_id} not finished after {JOB_DONE_SECONDS} s; {state}; "
        f"batches not verified: {open_batches}\n{logs}"
    )
