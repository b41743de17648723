"""Fixtures shared by the whole suite: real PostgreSQL and Redis, with throwaway databases.

A service that does not answer fails the tests that need it, with the command that starts it:
the suite never skips them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import redis
from psycopg import sql

from service.db.migrate import upgrade_to_head
from service.metrics.multiprocess import MULTIPROC_ENV

# Fixtures of the real vLLM engine and server on the tiny test model (tests/llm_fixtures.py) and
# of the real SmolLM2 model and its server (tests/smollm2_fixtures.py).
pytest_plugins = ["llm_fixtures", "smollm2_fixtures"]

POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432"
POSTGRES_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
REDIS_URL = "redis://127.0.0.1:6379/9"
REDIS_START = (
    'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no '
    "--dir /var/lib/redis --logfile /var/log/redis/ci.log"
)


def _postgres_admin() -> psycopg.Connection:
    try:
        return psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL does not answer at {POSTGRES_SERVER} ({' '.join(str(exc).split())}). "
            f"Start it with: {POSTGRES_START}",
            pytrace=False,
        )


@contextmanager
def throwaway_postgres_database() -> Iterator[str]:
    """Create an empty database `af_test_<random>`, give its URL, and drop it afterwards."""
    name = f"af_test_{secrets.token_hex(6)}"
    with _postgres_admin() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{POSTGRES_SERVER}/{name}"
    finally:
        # FORCE ends connections a test left open (engines not disposed, killed workers).
        with _postgres_admin() as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database shared by the whole session, dropped at its end."""
    with throwaway_postgres_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database file of this test's own."""
    return f"sqlite:///{tmp_path / 'actionforge.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of this test's own, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'actionforge.db'}"
        return
    # A fresh database per test costs a few tens of milliseconds and cannot leak state.
    with throwaway_postgres_database() as url:
        yield url


@pytest.fixture
def migrated_database_url(database_url: str) -> str:
    """`database_url` with every migration applied."""
    upgrade_to_head(database_url)
    return database_url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis database number kept for the tests, emptied at the start and at the end."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(
            f"Redis does not answer at {REDIS_URL} ({exc}). Start it with: {REDIS_START}",
            pytrace=False,
        )
    client.flushdb()
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()


@pytest.fixture(autouse=True)
def metrics_mode_restored() -> Iterator[None]:
    """Each test starts with this process counting metrics as the one before found it: a test
    that runs `serve` or `run` in this process switches it to a metrics folder
    (`service.metrics.multiprocess.use_metrics_dir`) that is gone once the test is."""
    from prometheus_client import values

    value_class, folder = values.ValueClass, os.environ.get(MULTIPROC_ENV)
    yield
    values.ValueClass = value_class
    if folder is None:
        os.environ.pop(MULTIPROC_ENV, None)
    else:
        os.environ[MULTIPROC_ENV] = folder
