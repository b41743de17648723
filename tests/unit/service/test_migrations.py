"""The Alembic migrations build exactly the schema of the models, on SQLite and PostgreSQL."""

from __future__ import annotations

import select
import sqlite3
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from service.db.engine import make_engine, session_factory
from service.db.migrate import (
    ADVISORY_LOCK_KEY,
    MIGRATIONS_DIR,
    MigrationError,
    alembic_config,
    upgrade_to_head,
)
from service.db.models import (
    Base,
    BatchRecord,
    CatalogRecord,
    JobRecord,
    SampleRecord,
    SampleStatus,
    VerdictRecord,
)

ROOT = Path(__file__).resolve().parents[3]
# Imports first, then waits at the gate: stdin gives a moment, and every process spins until it
# comes, so that the upgrades start at the same instant rather than as each wakes up.
UPGRADE_SCRIPT = (
    "import sys, time\n"
    "from service.db.migrate import upgrade_to_head\n"
    "print('ready', flush=True)\n"
    "start = float(sys.stdin.readline())\n"
    "while time.time() < start:\n"
    "    pass\n"
    "upgrade_to_head(sys.argv[1])\n"
)


@contextmanager
def engine_for(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(url: str) -> str | None:
    with engine_for(url) as engine, engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def schema_differences(url: str) -> list[Any]:
    with engine_for(url) as engine, engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def table_names(url: str) -> set[str]:
    with engine_for(url) as engine:
        return set(inspect(engine).get_table_names())


def test_the_revisions_form_one_line_of_history() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1, "two revisions share a parent: merge them"
    assert [revision.revision for revision in script.walk_revisions()][-1] == "0001"


def test_every_file_the_migrations_need_is_package_data() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = pyproject["tool"]["setuptools"]["package-data"]["service.db.migrations"]
    non_python = {
        path.name
        for path in MIGRATIONS_DIR.iterdir()
        if path.is_file() and path.suffix not in {".py", ".pyc"}
    }
    assert non_python == {"script.py.mako"}
    assert non_python <= set(declared)


def test_upgrade_creates_every_table(migrated_database_url: str) -> None:
    assert table_names(migrated_database_url) == set(Base.metadata.tables) | {"alembic_version"}
    assert current_revision(migrated_database_url) == head_revision()


def test_migrated_schema_matches_the_models(migrated_database_url: str) -> None:
    assert schema_differences(migrated_database_url) == []


def test_the_schema_comparison_notices_a_missing_index(migrated_database_url: str) -> None:
    with engine_for(migrated_database_url) as engine, engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_samples_job_reason"))
    differences = schema_differences(migrated_database_url)
    assert [(kind, index.name) for kind, index in differences] == [
        ("add_index", "ix_samples_job_reason")
    ]


def test_a_second_upgrade_changes_nothing(migrated_database_url: str) -> None:
    with engine_for(migrated_database_url) as engine, session_factory(engine)() as session:
        session.add(CatalogRecord(id="c1", name="kept", kind="openapi", sha256="0" * 64, tools=[]))
        session.commit()

    upgrade_to_head(migrated_database_url)

    assert current_revision(migrated_database_url) == head_revision()
    with engine_for(migrated_database_url) as engine, session_factory(engine)() as session:
        kept = session.get(CatalogRecord, "c1")
        assert kept is not None
        assert kept.name == "kept"


def test_sqlite_upgrade_creates_the_missing_data_directory(tmp_path: Path) -> None:
    database = tmp_path / "not" / "yet" / "there" / "actionforge.db"
    url = f"sqlite:///{database}"

    upgrade_to_head(url)

    assert database.is_file()
    assert current_revision(url) == head_revision()


def test_an_unreachable_postgresql_is_named_without_its_password() -> None:
    with pytest.raises(MigrationError) as caught:
        upgrade_to_head("postgresql://af:hunter2@127.0.0.1:1/actionforge")

    message = str(caught.value)
    assert message.startswith(
        "cannot migrate the database postgresql://af:***@127.0.0.1:1/actionforge: "
    )
    assert message.endswith(
        "Check AF_DATABASE_URL and that the database server is running and reachable."
    )
    assert "hunter2" not in message


def test_a_sqlite_path_that_cannot_be_a_database_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(MigrationError) as caught:
        upgrade_to_head(f"sqlite:///{tmp_path}")  # a directory, not a file

    assert str(caught.value) == (
        f"cannot migrate the database sqlite:///{tmp_path}: unable to open database file. "
        "Check AF_DATABASE_URL (or AF_DATA_DIR): it must name a SQLite file, or a new one, "
        "in a directory this user can write."
    )


def test_a_database_migrated_by_a_newer_version_is_refused(migrated_database_url: str) -> None:
    with engine_for(migrated_database_url) as engine, engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))

    with pytest.raises(MigrationError) as caught:
        upgrade_to_head(migrated_database_url)

    message = str(caught.value)
    assert "Can't locate revision identified by '9999'" in message
    assert message.endswith(
        "It was probably migrated by a newer version of ActionForge: upgrade actionforge, "
        "or set AF_DATABASE_URL to another database."
    )


def test_sqlite_upgrade_waits_while_another_process_writes_to_a_fresh_file(
    sqlite_url: str,
) -> None:
    # SQLite refuses a journal-mode switch at once, without its busy timeout, while another
    # connection holds the write lock: the upgrade must wait for it instead of failing.
    holder = sqlite3.connect(
        sqlite_url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False
    )
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.5, holder.execute, args=("COMMIT",))
    release.start()
    try:
        upgrade_to_head(sqlite_url)
    finally:
        release.join()
        holder.close()

    assert current_revision(sqlite_url) == head_revision()


@contextmanager
def upgrade_processes(url: str, count: int) -> Iterator[list[subprocess.Popen[str]]]:
    """Start `count` upgrade processes, give them once all wait at the gate, and make sure
    none outlives the test."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", UPGRADE_SCRIPT, url],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    try:
        for process in processes:
            assert process.stdout is not None and process.stderr is not None
            ready, _, _ = select.select([process.stdout], [], [], 60)
            if not ready or process.stdout.readline().strip() != "ready":
                process.kill()
                pytest.fail(f"an upgrade process did not start: {process.stderr.read()}")
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait()


def _open_the_gate(processes: list[subprocess.Popen[str]]) -> None:
    start = time.time() + 0.3
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(f"{start}\n")
        process.stdin.close()


def _assert_all_succeed(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        with process:
            process.wait(timeout=120)
            assert process.stderr is not None
            errors = process.stderr.read()
        assert process.returncode == 0, errors


def _wait_for_lock_waiters(admin: psycopg.Connection[Any], count: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        waiting = admin.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()
        if waiting is not None and waiting[0] == count:
            return
        time.sleep(0.05)
    pytest.fail(f"{count} upgrade processes never waited on the migration lock")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.slow
def test_concurrent_upgrades_on_postgresql_both_succeed(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as holder:
        # Hold the migration lock until both processes queue on it, so that they truly race.
        holder.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        with upgrade_processes(database_url, 2) as processes:
            _open_the_gate(processes)
            _wait_for_lock_waiters(holder, 2)
            holder.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
            _assert_all_succeed(processes)

    assert current_revision(database_url) == head_revision()
    assert schema_differences(database_url) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.slow
def test_concurrent_upgrades_on_a_fresh_sqlite_file_all_succeed(database_url: str) -> None:
    with upgrade_processes(database_url, 3) as processes:
        _open_the_gate(processes)
        _assert_all_succeed(processes)

    assert current_revision(database_url) == head_revision()
    assert schema_differences(database_url) == []


def test_a_sample_round_trips_with_unicode_and_nested_json(migrated_database_url: str) -> None:
    data = {
        "query": "Réserve un hôtel à Zürich 🏨 — 東京 и Москва, שלום, e\u0301",
        "tools": [
            {
                "name": "book_hotel",
                "parameters": {
                    "type": "object",
                    "properties": {"nights": {"type": "integer", "minimum": 1}},
                    "required": ["nights"],
                },
            }
        ],
        "steps": [{"tool_calls": [{"name": "book_hotel", "arguments": {"nights": 3}}]}],
        "meta": {"nested": {"deeper": [1, 2.5, True, None, "", {"empty": {}}, []]}},
        "escapes": 'quote " backslash \\ newline \n tab \t',
    }
    with engine_for(migrated_database_url) as engine:
        sessions = session_factory(engine)
        with sessions() as session:
            session.add(
                CatalogRecord(id="c1", name="hôtels", kind="openapi", sha256="f" * 64, tools=[])
            )
            session.flush()
            session.add(JobRecord(id="j1", catalog_id="c1", spec={"n": 1, "styles": {"simple": 1}}))
            session.flush()
            session.add(BatchRecord(id="j1-0", job_id="j1", index=0, size=1, seed=7))
            session.flush()
            session.add(
                SampleRecord(
                    id="j1-0-0",
                    job_id="j1",
                    batch_id="j1-0",
                    position=0,
                    status=SampleStatus.accepted,
                    stage="format",
                    data=data,
                )
            )
            session.flush()
            session.add(VerdictRecord(sample_id="j1-0-0", stage="format", accepted=True))
            session.commit()

        with sessions() as session:
            sample = session.get(SampleRecord, "j1-0-0")
            assert sample is not None
            assert sample.data == data
            assert (sample.job_id, sample.batch_id, sample.position) == ("j1", "j1-0", 0)
            assert (sample.status, sample.stage, sample.reason) == ("accepted", "format", None)
            verdict = session.get(VerdictRecord, ("j1-0-0", "format"))
            assert verdict is not None
            assert verdict.accepted is True
