"""Fixtures of the job-engine tests: a migrated database and its sessions, a clean Redis
database, real worker processes stopped at the end of each test, and the API over real HTTP."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import redis
from engine_helpers import Worker
from served_api import Api, running_api
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.db.engine import make_engine, session_factory
from service.settings import Settings


@pytest.fixture
def start_workers(tmp_path: Path) -> Iterator[Callable[..., list[Worker]]]:
    """`start_workers(settings, count=1, queues=..., concurrency=..., test_generators=...)`:
    start `count` workers at once and return them ready; all are stopped after the test.
    Workers run the test generators (tests/integration/plugins_for_tests.py) when asked to."""
    started: list[Worker] = []

    def start(
        settings: Settings,
        count: int = 1,
        queues: str = "generate,verify",
        concurrency: int = 2,
        test_generators: bool = False,
    ) -> list[Worker]:
        workers = []
        for _ in range(count):
            log = tmp_path / f"worker-{len(started)}.log"
            started.append(Worker.start(settings, log, queues, concurrency, test_generators))
            workers.append(started[-1])
        for worker in workers:
            worker.wait_ready()
        return workers

    yield start
    for worker in started:
        worker.request_stop()
    for worker in started:
        worker.stop()


@pytest.fixture
def engine(migrated_database_url: str) -> Iterator[Engine]:
    """An engine on this test's migrated database."""
    engine = make_engine(migrated_database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@pytest.fixture
def clean_redis(redis_url: str) -> Iterator[str]:
    """An empty Redis database of this test process's own, emptied again afterwards.

    Not `redis_url`'s database itself: another test session running at the same time (on a
    developer's machine) flushes that one when it starts or ends, which would take the
    messages of a job under way here with it.
    """
    url = redis_url.rsplit("/", 1)[0] + f"/{10 + os.getpid() % 5}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def serve_api() -> Iterator[Callable[[Settings], Api]]:
    """`serve_api(settings)`: the API over `settings`, served over real HTTP until the end of
    the test."""
    with ExitStack() as stack:
        yield lambda settings: stack.enter_context(running_api(settings))
