"""Real outages mid-job, healed without restarting a worker: the broker killed and started again
(with and without its append-only file), and the database server stopped for a while and started
again. Each job ends `succeeded` within a minute of the service answering again, with every
sample once. The services are the test's own (tests/integration/own_services.py); the shared
ones are never stopped."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from engine_helpers import Worker, insert_catalog, submit, wait_for_job
from own_services import OwnPostgres, OwnRedis
from served_api import Api
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from test_job_workers import verified_batches, wait_until

from service.db.engine import make_engine, session_factory
from service.db.migrate import upgrade_to_head
from service.db.models import SampleRecord
from service.pipeline.spec import JobSpec
from service.settings import Settings

Sessions = sessionmaker[Session]
HEALED_WITHIN_SECONDS = 60
# The outage the issue measured: long enough for tasks to spend every retry meanwhile.
DATABASE_OUTAGE_SECONDS = 12.6
BROKER_OUTAGE_SECONDS = 3.0
SPEC = JobSpec(n=400, generator="slow", seed=9, batch_size=20)


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[OwnPostgres]:
    server = OwnPostgres()
    server.create()
    upgrade_to_head(server.url)
    yield server
    server.remove()


def positions_once(sessions: Sessions, job_id: str, n: int) -> None:
    """Every position of the job holds exactly one sample."""
    with sessions() as session:
        rows = session.execute(
            select(SampleRecord.position, func.count())
            .where(SampleRecord.job_id == job_id)
            .group_by(SampleRecord.position)
        ).all()
    assert sorted(position for position, _ in rows) == list(range(n))
    assert {count for _, count in rows} == {1}


def assert_healed(sessions: Sessions, job_id: str, back_at: float, *workers: Worker) -> None:
    job = wait_for_job(sessions, job_id, *workers)
    healed_after = time.monotonic() - back_at
    assert (job.status, job.error) == ("succeeded", None), job.counts
    assert healed_after < HEALED_WITHIN_SECONDS, f"finished {healed_after:.0f} s after the fault"
    assert all(worker.process.poll() is None for worker in workers), "no worker restarted"
    positions_once(sessions, job_id, SPEC.n)
    assert job.counts["generated"] == SPEC.n


@pytest.mark.slow
@pytest.mark.parametrize("append_only", [True, False], ids=["aof", "no-persistence"])
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_job_goes_on_after_the_broker_is_killed_and_started_again(
    append_only: bool,
    migrated_database_url: str,
    sessions: Sessions,
    start_workers: Callable[..., list[Worker]],
    tmp_path: Path,
) -> None:
    broker = OwnRedis(tmp_path / "redis", append_only=append_only)
    broker.start()
    try:
        settings = Settings(
            data_dir=tmp_path / "data", database_url=migrated_database_url, broker_url=broker.url
        )
        workers = start_workers(settings, count=2, test_generators=True)
        insert_catalog(sessions, "travel")
        job_id = submit(sessions, settings, "travel", SPEC)
        wait_until(lambda: verified_batches(sessions, job_id) >= 2, "2 batches verified", *workers)
        broker.kill()
        assert verified_batches(sessions, job_id) < 20, "the job ended before the fault"
        time.sleep(BROKER_OUTAGE_SECONDS)
        broker.start()
        assert_healed(sessions, job_id, time.monotonic(), *workers)
        logs = "".join(worker.log.read_text(errors="replace") for worker in workers)
        assert "Connection to broker lost" in logs
    finally:
        broker.stop()


@pytest.mark.slow
def test_a_job_goes_on_after_the_database_server_is_stopped_and_started_again(
    own_postgres: OwnPostgres,
    clean_redis: str,
    start_workers: Callable[..., list[Worker]],
    tmp_path: Path,
) -> None:
    engine = make_engine(own_postgres.url)
    sessions = session_factory(engine)
    try:
        settings = Settings(
            data_dir=tmp_path / "data", database_url=own_postgres.url, broker_url=clean_redis
        )
        workers = start_workers(settings, count=2, test_generators=True)
        insert_catalog(sessions, "travel-outage")
        job_id = submit(sessions, settings, "travel-outage", SPEC)
        wait_until(lambda: verified_batches(sessions, job_id) >= 2, "2 batches verified", *workers)
        own_postgres.stop("immediate")
        time.sleep(DATABASE_OUTAGE_SECONDS)
        own_postgres.start()
        engine.dispose()  # the test's own connections died with the server
        back_at = time.monotonic()
        assert_healed(sessions, job_id, back_at, *workers)
        logs = "".join(worker.log.read_text(errors="replace") for worker in workers)
        assert "the database does not answer" in logs or "sweep: OperationalError" in logs
    finally:
        engine.dispose()


def test_the_api_answers_503_while_the_database_server_is_down_and_recovers_by_itself(
    own_postgres: OwnPostgres,
    clean_redis: str,
    serve_api: Callable[[Settings], Api],
    tmp_path: Path,
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", database_url=own_postgres.url, broker_url=clean_redis
    )
    api = serve_api(settings)
    assert api.http.get("/v1/jobs").status_code == 200
    own_postgres.stop("immediate")
    try:
        for method, path in (("GET", "/v1/jobs"), ("GET", "/v1/catalogs"), ("POST", "/v1/jobs")):
            body = {"catalog_id": "x", "n": 1} if method == "POST" else None
            response = api.http.request(method, path, json=body)
            assert response.status_code == 503, (path, response.text)
            assert response.json()["detail"].startswith("the database does not answer (")
            assert response.headers["retry-after"] == "5"
        assert api.http.get("/v1/health").status_code == 503
    finally:
        own_postgres.start()
    assert api.http.get("/v1/jobs").status_code == 200
    assert api.http.get("/v1/health").status_code == 200
