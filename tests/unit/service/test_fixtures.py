"""The shared fixtures of tests/conftest.py give what they promise: real, empty, private stores."""

from __future__ import annotations

import psycopg
import redis
from sqlalchemy import inspect

from service.db.engine import make_engine


def test_postgres_url_is_a_throwaway_database(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as connection:
        row = connection.execute("SELECT current_database()").fetchone()
    assert row is not None
    assert row[0].startswith("af_test_")


def test_database_url_is_empty_and_its_own(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert inspect(engine).get_table_names() == []
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE left_behind (id INTEGER)")
    finally:
        engine.dispose()


def test_database_url_is_clean_again_for_the_next_test(database_url: str) -> None:
    # Runs after the test above, which left a table behind in its own database.
    engine = make_engine(database_url)
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


def test_redis_url_is_a_database_of_the_tests_own(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert redis_url.rsplit("/", 1)[1] != "0"
        assert client.ping()
        client.set("actionforge-fixture-check", "1")
        assert client.get("actionforge-fixture-check") == b"1"
    finally:
        client.delete("actionforge-fixture-check")
        client.close()
