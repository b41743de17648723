"""How long the dashboard's job page takes as a job grows, beside the REST reads it is made of.

Run: python tests/bench/bench_dashboard.py [--small 1000] [--large 50000] [--requests 20]

Stores two finished jobs of real xlam samples (tests/data), one of `--small` and one of
`--large` samples, a third of them rejected for two reasons, every sample with a verdict, in a
SQLite file and (when it answers) a throwaway PostgreSQL database; serves the API over real HTTP
and times, side by side in one run, the median wall time of `--requests` requests (after two
warm-up requests) of:
  - the job page (`/jobs/{id}`: funnel, rejections, 20 rejected samples each beside an accepted
    one of its style);
  - the job page filtered by style (`?show=all&style=simple`, whose count reads each sample's
    style from its JSON);
  - the REST reads it is made of: `GET /v1/jobs/{id}` and `GET /v1/jobs/{id}/samples?limit=20`.
The last columns are each large job's time over the small job's: pages cut to 20 samples keep
it near 1 where the query stops after a page; counting a filter over every sample grows with
the job.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import psycopg
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "api")]

from api_support import ACCEPTED, Api, Outcome, add_job, real_samples, running_api  # noqa: E402

from service.db.models import SampleStatus  # noqa: E402
from service.pipeline.counts import refresh_counts  # noqa: E402
from service.settings import Settings  # noqa: E402

POSTGRES = "postgresql://postgres@127.0.0.1:5432"
PATTERN: list[Outcome] = [
    ACCEPTED,
    (SampleStatus.rejected, "format", "unknown_tool"),
    ACCEPTED,
    (SampleStatus.rejected, "format", "missing_required_argument"),
    ACCEPTED,
    ACCEPTED,
]


def store_job(api: Api, size: int) -> str:
    base = real_samples()
    samples = [base[i % len(base)].model_copy(update={"id": f"b-{i}"}) for i in range(size)]
    outcomes = [PATTERN[i % len(PATTERN)] for i in range(size)]
    job_id = add_job(api.sessions, samples, outcomes)
    with api.sessions() as session, session.begin():
        refresh_counts(session, job_id)
    return job_id


def median_ms(http: httpx.Client, url: str, requests: int) -> float:
    for _ in range(2):
        http.get(url).raise_for_status()
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        http.get(url).raise_for_status()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


@contextmanager
def postgres_database() -> Iterator[str | None]:
    name = f"af_bench_{int(time.time())}"
    try:
        admin = psycopg.connect(f"{POSTGRES}/postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        yield None
        return
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    console = Console()
    table = Table(title=f"median ms per request, jobs of {args.small:,} and {args.large:,} samples")
    for column in ("database", "request", f"{args.small:,}", f"{args.large:,}", "large / small"):
        table.add_column(column, justify="left" if column in {"database", "request"} else "right")
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        databases = {"sqlite": f"sqlite:///{folder}/af.db"}
        postgres = stack.enter_context(postgres_database())
        if postgres is None:
            console.print(f"[yellow]PostgreSQL does not answer at {POSTGRES}: SQLite only")
        else:
            databases["postgresql"] = postgres
        for name, url in databases.items():
            settings = Settings(data_dir=Path(folder), database_url=url)
            api = stack.enter_context(running_api(settings))
            jobs = {size: store_job(api, size) for size in (args.small, args.large)}
            requests = {
                "job page": "/jobs/{id}",
                "job page, style filter": "/jobs/{id}?show=all&style=simple",
                "GET /v1/jobs/{id}": "/v1/jobs/{id}",
                "GET /v1/jobs/{id}/samples?limit=20": "/v1/jobs/{id}/samples?limit=20",
            }
            for label, template in requests.items():
                times = [
                    median_ms(api.http, template.format(id=jobs[size]), args.requests)
                    for size in (args.small, args.large)
                ]
                table.add_row(
                    name, label, f"{times[0]:.1f}", f"{times[1]:.1f}", f"{times[1] / times[0]:.2f}"
                )
    console.print(table)


if __name__ == "__main__":
    main()
