"""Bring a database to the newest schema, safely when several processes start at once."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from service.db.engine import make_engine
from unified.errors import ActionForgeError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Any fixed 64-bit number; every ActionForge process takes the same one around its upgrade.
ADVISORY_LOCK_KEY = 0x4146_6D69_6772_6174


class MigrationError(ActionForgeError):
    """The database cannot be brought to the newest schema; the message says what to change."""


def alembic_config(database_url: str | None = None) -> Config:
    """An Alembic configuration built in code, pointing at the migrations shipped in the package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database_url is not None:
        # ConfigParser treats % as interpolation; URLs may hold %-escaped passwords.
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_to_head(database_url: str) -> None:
    """Apply every migration `database_url` lacks; a no-op when it is up to date.

    Concurrent callers are serialised: on PostgreSQL by a transaction-scoped advisory lock, on
    SQLite by an immediate (write-locking) transaction. Either way the whole upgrade commits or
    nothing does, and the second caller finds the schema at head.
    """
    url = make_url(database_url)
    shown = url.render_as_string(hide_password=True)
    try:
        engine = _migration_engine(database_url)
        try:
            with engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
                    )
                _upgrade(connection)
        finally:
            engine.dispose()
    except (OperationalError, sqlite3.OperationalError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        if url.get_backend_name() == "sqlite":
            hint = (
                "Check AF_DATABASE_URL (or AF_DATA_DIR): it must name a SQLite file, or a new "
                "one, in a directory this user can write"
            )
        else:
            hint = "Check AF_DATABASE_URL and that the database server is running and reachable"
        raise MigrationError(f"cannot migrate the database {shown}: {reason}. {hint}.") from exc
    except CommandError as exc:
        raise MigrationError(
            f"cannot migrate the database {shown}: {exc}. It was probably migrated by a newer "
            "version of ActionForge: upgrade actionforge, or set AF_DATABASE_URL to another "
            "database."
        ) from exc


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _migration_engine(database_url: str) -> Engine:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return make_engine(database_url, poolclass=NullPool)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        _switch_to_wal(url.database)
    engine = make_engine(database_url, poolclass=NullPool)
    _begin_immediately(engine)
    return engine


def _switch_to_wal(path: str, patience_s: float = 30.0) -> None:
    """Put a SQLite file in WAL mode, retrying while another process does the same.

    Changing the journal mode does not wait on SQLite's busy timeout: two processes opening a
    fresh file at once would otherwise see "database is locked". Once the file is in WAL mode
    (a lasting property of the file), the engine's own PRAGMA is a no-op.
    """
    deadline = time.monotonic() + patience_s
    while True:
        try:
            with closing(sqlite3.connect(path, timeout=patience_s)) as connection:
                connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _begin_immediately(engine: Engine) -> None:
    """Make SQLite transactions take the write lock at BEGIN, so DDL runs inside them.

    Python's sqlite3 module otherwise runs DDL outside any transaction, which would let two
    processes create the same tables at once.
    """

    @event.listens_for(engine, "connect")
    def _driver_leaves_transactions_to_us(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
