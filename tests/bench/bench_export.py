"""REST export throughput and memory, and what two exports cost the API's status requests.

Run: python tests/bench/bench_export.py [--rows 200000] [--database sqlite|postgresql]
     [--formats unified,parquet] [--starvation-rows 50000] [--rounds 3] [--before DIR]

Seeds a database directly (bulk inserts, no job run) with a job of `--rows` accepted samples —
a template job's samples on the bundled travel catalog after the execution stage, copied under
new ids — and a job of `--starvation-rows`. Then, for each version (this tree, and with
`--before DIR` the source tree of another version, e.g. `git archive <rev> | tar -x -C DIR`),
starts `actionforge serve` (API only: a broker URL is set, so no embedded workers) on that
database and measures:
  - per format, `curl` downloading `GET /v1/jobs/{id}/export?format=F` of the big job: rows/s
    (wall), rows per CPU second of the API process, and the API process's peak RSS (VmHWM; a
    fresh server per format, its idle RSS given beside it); the sha256 of the bytes, compared
    between versions;
  - status requests (`GET /v1/jobs/{id}`, one after another, 10 ms apart) idle, and while two
    `curl`s download the `--starvation-rows` job at once (`--rounds` times): p50, p99, max.
The issue's floors: 50,000 rows/s for unified JSON Lines with peak API RSS < 300 MB, 20,000 rows/s
for Parquet (1M rows); status p99 < 200 ms during two 50k exports on 2 cores. The machine's
other work shares its cores with the API, curl and this script: wall rates move with it, the
rows per API CPU second much less.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from rich.console import Console
from rich.table import Table
from sqlalchemy import insert, text
from sqlalchemy.orm import Session, sessionmaker

from generators.base import GENERATORS, GenerationRequest
from service.db.engine import make_engine, session_factory
from service.db.migrate import upgrade_to_head
from service.db.models import (
    BatchRecord,
    BatchStatus,
    CatalogRecord,
    JobRecord,
    JobStatus,
    SampleRecord,
    SampleStatus,
)
from unified.catalogs import load_catalog
from unified.sample_json import dump_layout
from verifiers.stages import StageContext, build_stages, run_stages

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "examples" / "travel_api.yaml"
POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432"
BROKER_URL = "redis://127.0.0.1:6379/14"  # set so that serve starts no embedded workers
BASE_SAMPLES = 1000
INSERT_BATCH = 5000
STATUS_GAP = 0.01
console = Console()


def base_rows() -> list[dict[str, Any]]:
    """The stored JSON of a template job's samples on the travel catalog, executed."""
    tools = load_catalog(CATALOG).tools
    samples = GENERATORS.get("template")().generate(
        tools, GenerationRequest(n=BASE_SAMPLES, seed=5)
    )
    executed = run_stages(build_stages(["execution"]), samples, StageContext(tools)).samples
    return [sample.model_dump(mode="json", by_alias=True) for sample in executed]


def seed_job(sessions: sessionmaker[Session], rows: int, base: list[dict[str, Any]]) -> str:
    """A succeeded job of `rows` accepted samples, inserted in bulk; its id."""
    catalog = load_catalog(CATALOG)
    job_id = secrets.token_hex(16)
    with sessions() as session, session.begin():
        catalog_id = secrets.token_hex(16)
        session.add(
            CatalogRecord(
                id=catalog_id,
                name=CATALOG.name,
                kind=catalog.kind,
                title=catalog.title,
                sha256=catalog.sha256,
                tools=[t.model_dump(mode="json", by_alias=True) for t in catalog.tools],
            )
        )
        session.flush()
        session.add(
            JobRecord(
                id=job_id, catalog_id=catalog_id, spec={"n": rows}, status=JobStatus.succeeded
            )
        )
        session.flush()
        session.add(
            BatchRecord(
                id=f"{job_id}-0",
                job_id=job_id,
                index=0,
                size=rows,
                seed=0,
                status=BatchStatus.verified,
            )
        )
    for start in range(0, rows, INSERT_BATCH):
        records = []
        for position in range(start, min(rows, start + INSERT_BATCH)):
            sample_id = f"{job_id}-{position:07d}"
            data = {**base[position % len(base)], "id": sample_id}
            records.append(
                {
                    "id": sample_id,
                    "job_id": job_id,
                    "batch_id": f"{job_id}-0",
                    "position": position,
                    "status": SampleStatus.accepted,
                    "stage": "format",
                    "data": data,
                    "layout": dump_layout(),
                }
            )
        with sessions() as session, session.begin():
            session.execute(insert(SampleRecord), records)
    return job_id


@contextmanager
def database(kind: str, work: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{work / 'bench.db'}"
        return
    name = f"af_bench_{secrets.token_hex(6)}"
    with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{POSTGRES_SERVER}/{name}"
    finally:
        with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory_mb(self, field: str) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        return float("nan")


def stamp_with_head_of(tree: Path, database_url: str) -> None:
    """Mark the database as migrated to `tree`'s newest revision: an older version refuses a
    database a newer one migrated, and the columns added since, which it never reads, do not
    matter to it."""
    head = subprocess.run(
        [
            sys.executable,
            "-c",
            "from alembic.script import ScriptDirectory\n"
            "from service.db.migrate import alembic_config\n"
            "print(ScriptDirectory.from_config(alembic_config()).get_current_head())",
        ],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})
    engine.dispose()


@contextmanager
def serving(tree: Path, database_url: str, work: Path, job_id: str) -> Iterator[Server]:
    """`actionforge serve` from source tree `tree`, API only, ready to answer."""
    stamp_with_head_of(tree, database_url)
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(tree),
        "AF_DATABASE_URL": database_url,
        "AF_BROKER_URL": BROKER_URL,
        "AF_DATA_DIR": str(work / "data"),
    }
    log = (work / f"serve-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli.app", "serve", "--port", str(port)],
        cwd=tree,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/v1/jobs/{job_id}", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not start; see {log.name}")
            time.sleep(0.2)
        yield Server(url, process)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def download(url: str) -> tuple[float, int, str]:
    """Wall seconds, bytes and sha256 of one download by curl."""
    start = time.perf_counter()
    done = subprocess.run(
        ["bash", "-c", f"set -o pipefail; curl -sSf -w '%{{stderr}}%{{size_download}}' '{url}'"
         " | sha256sum"],
        capture_output=True,
        check=True,
    )  # fmt: skip
    return time.perf_counter() - start, int(done.stderr), done.stdout.split()[0].decode()


@dataclass
class ExportRun:
    rows_per_s: float
    rows_per_cpu_s: float
    peak_mb: float
    idle_mb: float
    megabytes: float
    sha256: str


def measure_export(
    tree: Path, database_url: str, work: Path, job_id: str, rows: int, fmt: str
) -> ExportRun:
    with serving(tree, database_url, work, job_id) as server:
        idle = server.memory_mb("VmRSS")
        cpu = server.cpu_seconds()
        seconds, size, digest = download(f"{server.url}/v1/jobs/{job_id}/export?format={fmt}")
        used = server.cpu_seconds() - cpu
        return ExportRun(
            rows / seconds, rows / used, server.memory_mb("VmHWM"), idle, size / 1e6, digest
        )


def status_latencies(server: Server, job_id: str, until: Any, least: int) -> list[float]:
    """Milliseconds of GET /v1/jobs/{id}, one after another, until `until()` is true and at
    least `least` were made."""
    times = []
    with httpx.Client(base_url=server.url, timeout=30) as http:
        while len(times) < least or not until():
            start = time.perf_counter()
            response = http.get(f"/v1/jobs/{job_id}")
            times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, response.text
            time.sleep(STATUS_GAP)
    return times


def percentiles(times: list[float]) -> str:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return (
        f"p50 {statistics.median(ordered):.0f}, p99 {p99:.0f}, max {ordered[-1]:.0f} ms "
        f"({len(ordered)})"
    )


def measure_starvation(
    tree: Path, database_url: str, work: Path, job_id: str, rounds: int, fmt: str
) -> tuple[list[float], list[float], float]:
    """Status latencies idle and during two concurrent exports; the exports' mean seconds."""
    with serving(tree, database_url, work, job_id) as server:
        idle = status_latencies(server, job_id, lambda: True, 100)
        busy: list[float] = []
        export_seconds = []
        for _ in range(rounds):
            url = f"{server.url}/v1/jobs/{job_id}/export?format={fmt}"
            start = time.perf_counter()
            exports = [subprocess.Popen(["curl", "-sSf", "-o", "/dev/null", url]) for _ in range(2)]
            busy += status_latencies(
                server,
                job_id,
                lambda exports=exports: all(p.poll() is not None for p in exports),
                1,
            )
            for process in exports:
                process.wait()
            export_seconds.append(time.perf_counter() - start)
        return idle, busy, statistics.mean(export_seconds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--formats", default="unified,parquet")
    parser.add_argument("--starvation-rows", type=int, default=50_000)
    parser.add_argument("--starvation-format", default="unified")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", type=Path, help="source tree of a version to compare with")
    args = parser.parse_args()
    trees = {"before": args.before.resolve()} if args.before else {}
    trees["this tree"] = ROOT
    formats = [fmt.strip() for fmt in args.formats.split(",") if fmt.strip()]
    with (
        tempfile.TemporaryDirectory(prefix="af-bench-export-") as tmp,
        database(args.database, Path(tmp)) as database_url,
    ):
        work = Path(tmp)
        upgrade_to_head(database_url)
        engine = make_engine(database_url)
        sessions = session_factory(engine)
        base = base_rows()
        start = time.perf_counter()
        big = seed_job(sessions, args.rows, base)
        small = seed_job(sessions, args.starvation_rows, base)
        engine.dispose()
        console.print(
            f"seeded {args.rows + args.starvation_rows:,} rows in "
            f"{time.perf_counter() - start:.0f} s ({args.database})"
        )
        table = Table(title=f"REST export of {args.rows:,} rows ({args.database}, 2 cores shared)")
        table.add_column("format / measure")
        for label in trees:
            table.add_column(label, justify="right")
        if len(trees) == 2:
            table.add_column("after / before", justify="right")
        digests: dict[str, set[str]] = {}
        for fmt in formats:
            runs = {
                label: measure_export(tree, database_url, work, big, args.rows, fmt)
                for label, tree in trees.items()
            }
            digests[fmt] = {run.sha256 for run in runs.values()}
            for measure, attribute, shown in [
                ("rows/s (wall)", "rows_per_s", "{:,.0f}"),
                ("rows per API CPU second", "rows_per_cpu_s", "{:,.0f}"),
                ("API peak RSS, MB", "peak_mb", "{:,.0f}"),
                ("API RSS before, MB", "idle_mb", "{:,.0f}"),
                ("MB sent", "megabytes", "{:,.0f}"),
            ]:
                values = [getattr(run, attribute) for run in runs.values()]
                cells = [shown.format(value) for value in values]
                if len(values) == 2:
                    cells.append(f"{values[1] / values[0]:.2f}")
                table.add_row(f"{fmt}: {measure}", *cells)
        console.print(table)
        for fmt, found in digests.items():
            if len(trees) == 2:
                console.print(
                    f"{fmt}: the versions' exports are "
                    + ("identical (sha256)" if len(found) == 1 else "DIFFERENT")
                )
        starvation = Table(
            title=f"GET /v1/jobs/{{id}} idle and during two concurrent {args.starvation_rows:,}-"
            f"row {args.starvation_format} exports ({args.rounds} rounds)"
        )
        starvation.add_column("version")
        starvation.add_column("idle")
        starvation.add_column("during two exports")
        starvation.add_column("export s", justify="right")
        for label, tree in trees.items():
            idle, busy, seconds = measure_starvation(
                tree, database_url, work, small, args.rounds, args.starvation_format
            )
            starvation.add_row(label, percentiles(idle), percentiles(busy), f"{seconds:.1f}")
        console.print(starvation)
        console.print(json.dumps({"load average": os.getloadavg()}))


if __name__ == "__main__":
    main()
