"""End-to-end job throughput of the service, and what the queue and the database cost per sample.

Run: python tests/bench/bench_service.py [--samples 10000,50000,200000] [--batch-size N]
    [--workers 2]

Runs the same job (the bundled travel catalog, the template generator, the format stage):
  - directly: the generator and the verifier called in a loop in this process, no queue, no
    database: the floor a worker cannot beat;
  - on the embedded default: SQLite database and SQLite queue, `actionforge worker` processes
    started the way `serve` starts them;
  - on Redis + PostgreSQL (127.0.0.1, a throwaway database): `--workers` worker processes.
Each service setup runs once with one worker of one pool process, to compare with the direct
loop (overhead = its seconds per sample minus the direct loop's), and once with every worker
and core, for throughput, each with a job of every size in `--samples` (is the overhead flat as
jobs grow?). Jobs use the product's default batch size unless `--batch-size` says otherwise.
Times run from job submission to the job's final status; workers are started and warmed up
beforehand. Needs PostgreSQL and Redis for the last rows (skipped with a
note when they do not answer).
"""

from __future__ import annotations

import argparse
import secrets
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil
import psycopg
import redis
from psycopg import sql
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from generators.base import GENERATORS, GenerationRequest
from service.db.engine import make_engine, session_factory
from service.db.migrate import upgrade_to_head
from service.db.models import FINISHED, CatalogRecord, JobRecord
from service.pipeline.spec import JobSpec
from service.pipeline.submit import create_job, plan_batches
from service.queue.dispatch import enqueue_job
from service.settings import Settings
from service.worker import (
    default_concurrency,
    start_embedded_workers,
    stop_workers,
    worker_command,
    worker_environment,
)
from unified.catalogs import load_catalog
from unified.model import Tool
from verifiers.stages import StageContext, build_stages, run_stages

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "examples" / "travel_api.yaml"
POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/15"  # not one the test suite uses
GENERATOR = "template"
# The direct loop and the jobs run the same stages, so the difference is the service's.
STAGES = ["format"]
console = Console()


@dataclass
class Run:
    """One measured setup."""

    setup: str
    processes: str
    samples: int
    seconds: float
    accepted: int
    cpu_seconds: float


def tree_cpu_seconds(processes: list[subprocess.Popen[bytes]]) -> float:
    """User + system CPU seconds of the processes and their pool processes so far."""
    total = 0.0
    for process in processes:
        root = psutil.Process(process.pid)
        for member in [root, *root.children(recursive=True)]:
            try:
                times = member.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
    return total


def tools() -> list[Tool]:
    return load_catalog(CATALOG).tools


def direct_loop(n: int, batch_size: int) -> Run:
    """The job's work with no queue and no database, batch by batch in this process."""
    generator = GENERATORS.get(GENERATOR)()
    stages = build_stages(STAGES)
    catalog = tools()
    plan = plan_batches("bench", n, batch_size, job_seed=1)
    accepted = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for batch in plan:
        request = GenerationRequest(n=batch.size, seed=batch.seed, id_prefix=f"{batch.id}-")
        samples = generator.generate(catalog, request)
        verdicts = run_stages(stages, samples, StageContext(catalog)).verdicts
        accepted += sum(1 for judged in verdicts if judged[-1].accepted)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return Run("direct", "1", n, seconds, accepted, cpu)


def store_catalog(sessions: sessionmaker[Session]) -> str:
    catalog = load_catalog(CATALOG)
    with sessions() as session:
        record = CatalogRecord(
            id=secrets.token_hex(8),
            name=CATALOG.name,
            kind=catalog.kind,
            title=catalog.title,
            sha256=catalog.sha256,
            tools=[t.model_dump(mode="json", by_alias=True) for t in catalog.tools],
        )
        session.add(record)
        session.commit()
        return record.id


def run_job(
    settings: Settings, sessions: sessionmaker[Session], catalog_id: str, n: int, batch_size: int
) -> tuple[float, int]:
    """Submit a job as the API does and wait for its end; (seconds, accepted)."""
    start = time.perf_counter()
    with sessions() as session:
        spec = JobSpec(
            n=n,
            generator=GENERATOR,
            seed=secrets.randbelow(2**31),
            batch_size=batch_size,
            verify=STAGES,
        )
        job = create_job(session, catalog_id, spec, settings)
        session.commit()
    enqueue_job(job.id, settings)
    while True:
        with sessions() as session:
            record = session.get(JobRecord, job.id)
            assert record is not None
            if record.status in FINISHED:
                break
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    if record.status != "succeeded" or record.counts["generated"] != n:
        raise SystemExit(f"job {job.id} ended {record.status}: {record.error} {record.counts}")
    return seconds, int(record.counts["accepted"])


def start_workers(
    settings: Settings, count: int, concurrency: int, log: IO[bytes]
) -> list[subprocess.Popen[bytes]]:
    """`actionforge worker` processes for an external broker, as an operator would run them."""
    command = worker_command(["generate", "verify"], concurrency)
    env = worker_environment(settings)
    return [
        subprocess.Popen(command, env=env, stdout=log, stderr=log, cwd=ROOT) for _ in range(count)
    ]


def measure(
    label: str,
    settings: Settings,
    start: Callable[[int, int], list[subprocess.Popen[bytes]]],
    shapes: list[tuple[int, int]],
    sizes: list[int],
    batch_size: int,
) -> Iterator[Run]:
    """For each (workers, pool processes) shape: start the workers, warm them up, run a job of
    each size."""
    database_url = settings.resolved_database_url()
    upgrade_to_head(database_url)
    engine = make_engine(database_url)
    sessions = session_factory(engine)
    catalog_id = store_catalog(sessions)
    try:
        for workers, concurrency in shapes:
            processes = start(workers, concurrency)
            try:
                run_job(settings, sessions, catalog_id, 4 * batch_size, batch_size)  # warm up
                for n in sizes:
                    cpu_before = tree_cpu_seconds(processes)
                    seconds, accepted = run_job(settings, sessions, catalog_id, n, batch_size)
                    cpu = tree_cpu_seconds(processes) - cpu_before
                    yield Run(label, f"{workers} x {concurrency}", n, seconds, accepted, cpu)
            finally:
                stop_workers(processes)
    finally:
        engine.dispose()


@contextmanager
def throwaway_postgres() -> Iterator[str | None]:
    name = f"af_bench_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True, connect_timeout=3)
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except (psycopg.OperationalError, redis.ConnectionError) as exc:
        console.print(f"[yellow]Redis + PostgreSQL skipped: {exc}[/]")
        yield None
        return
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{POSTGRES_SERVER}/{name}"
    finally:
        with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--samples", default="10000,50000,200000", help="Job sizes, separated by commas."
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="Default: the product's (AF_BATCH_SIZE)."
    )
    parser.add_argument("--workers", type=int, default=2, help="Workers on Redis + PostgreSQL.")
    args = parser.parse_args()
    sizes = [int(size) for size in args.samples.split(",")]
    batch_size = args.batch_size or Settings.model_fields["batch_size"].default
    cores = default_concurrency()
    runs = [direct_loop(n, batch_size) for n in sizes]

    with tempfile.TemporaryDirectory() as tmp, (Path(tmp) / "workers.log").open("wb") as log:
        embedded = Settings(data_dir=Path(tmp) / "embedded")

        def embedded_workers(_workers: int, concurrency: int) -> list[subprocess.Popen[bytes]]:
            return start_embedded_workers(embedded, concurrency, output=log)

        runs += measure(
            "embedded",
            embedded,
            embedded_workers,
            [(1, 1), (1, cores)],
            sizes,
            batch_size,
        )
        with throwaway_postgres() as postgres_url:
            if postgres_url is not None:
                redis.Redis.from_url(REDIS_URL).flushdb()
                fleet = Settings(
                    data_dir=Path(tmp) / "fleet", database_url=postgres_url, broker_url=REDIS_URL
                )

                def fleet_workers(workers: int, concurrency: int) -> list[subprocess.Popen[bytes]]:
                    return start_workers(fleet, workers, concurrency, log)

                runs += measure(
                    "Redis+PG",
                    fleet,
                    fleet_workers,
                    [(1, 1), (args.workers, cores)],
                    sizes,
                    batch_size,
                )
                redis.Redis.from_url(REDIS_URL).flushdb()
    print_table(runs, batch_size, cores)


def print_table(runs: list[Run], batch_size: int, cores: int) -> None:
    direct = {run.samples: run for run in runs if run.setup == "direct"}
    table = Table(
        title=f"Jobs in batches of {batch_size}, template generator + format stage, {cores} cores"
    )
    columns = ("setup", "workers", "samples", "seconds", "samples/s", "µs/sample", "overhead")
    for column in (*columns, "CPU µs/sample", "CPU overhead", "accepted"):
        table.add_column(column, justify="left" if column == "setup" else "right")
    for run in runs:
        floor = direct[run.samples]
        per_sample = run.seconds / run.samples
        direct_per_sample = floor.seconds / floor.samples
        single = run.processes == "1 x 1"
        overhead = f"{(per_sample - direct_per_sample) * 1e6:,.0f}" if single else ""
        cpu_per_sample = run.cpu_seconds / run.samples
        direct_cpu = floor.cpu_seconds / floor.samples
        cpu_overhead = f"{(cpu_per_sample - direct_cpu) * 1e6:,.0f}" if run is not floor else ""
        table.add_row(
            run.setup,
            run.processes,
            f"{run.samples:,}",
            f"{run.seconds:.2f}",
            f"{run.samples / run.seconds:,.0f}",
            f"{per_sample * 1e6:,.0f}",
            overhead,
            f"{cpu_per_sample * 1e6:,.0f}",
            cpu_overhead,
            f"{run.accepted:,}",
        )
    console.print(table)
    console.print(
        "workers: worker processes x pool processes each. overhead: µs per sample of one "
        "worker with one pool process minus the direct loop's (same job size): the queue round "
        "trips and the database writes. embedded: SQLite database and "
        "SQLite queue in a temporary data directory. CPU: user + system seconds of the worker "
        "processes and their pools (the direct loop's own), per sample; CPU overhead: the "
        "same minus the direct loop's, which a busy machine changes far less than wall time "
        "(the database and broker servers' own CPU is not in it)."
    )


if __name__ == "__main__":
    main()
