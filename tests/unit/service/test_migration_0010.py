"""Revision 0010: samples' JSON compressed with LZ4 on PostgreSQL (where the server has it), rows
stored before and after it read the same, and it goes down and up again; nothing on SQLite."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from service.db.engine import make_engine
from service.db.migrate import alembic_config, upgrade_to_head

# A sample's JSON as big as a template job's (~3 KB), over the size PostgreSQL compresses at.
DATA = '{"id": "s", "query": "%s"}' % ("Find flights from Oslo to Lima. " * 100)
INSERT = (
    "INSERT INTO catalogs (id, name, kind, sha256, tools, created_at) VALUES "
    "('c1', 'calc.py', 'python', 'ab', '[]', '2026-01-01 00:00:00+00:00');"
    "INSERT INTO jobs (id, catalog_id, spec, status, counts, created_at, updated_at) VALUES "
    "('j1', 'c1', '{}', 'succeeded', '{}', '2026-01-01 00:00:00+00:00', "
    "'2026-01-01 00:00:00+00:00');"
    'INSERT INTO batches (id, job_id, "index", size, seed, status, attempts, updated_at) VALUES '
    "('j1-0', 'j1', 0, 2, 7, 'verified', 0, '2026-01-01 00:00:00+00:00')"
)


def add_sample(url: str, sample_id: str, position: int) -> None:
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO samples (id, job_id, batch_id, position, status, data, created_at) "
                "VALUES (:id, 'j1', 'j1-0', :position, 'accepted', :data, "
                "'2026-01-01 00:00:00+00:00')"
            ),
            {"id": sample_id, "position": position, "data": DATA},
        )
    engine.dispose()


def scalar(url: str, query: str) -> object:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(query)).scalar()
    finally:
        engine.dispose()


def compression(url: str) -> str:
    return str(
        scalar(
            url,
            "SELECT attcompression FROM pg_attribute "
            "WHERE attrelid = 'samples'::regclass AND attname = 'data'",
        )
    )


def test_0010_compresses_new_samples_with_lz4_where_postgresql_has_it(database_url: str) -> None:
    config = alembic_config(database_url)
    command.upgrade(config, "0009")
    engine = make_engine(database_url)
    with engine.begin() as connection:
        for statement in INSERT.split(";"):
            connection.execute(text(statement))
    engine.dispose()
    add_sample(database_url, "before", 0)

    upgrade_to_head(database_url)
    add_sample(database_url, "after", 1)

    texts = "SELECT count(DISTINCT CAST(data AS TEXT)) FROM samples"
    assert scalar(database_url, texts) == 1, "both rows read back the same JSON"
    if not database_url.startswith("postgresql"):
        return
    has_lz4 = scalar(
        database_url,
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'",
    )
    # A server built without LZ4 keeps its default; Debian's and the official builds have it.
    compressed = "l" if has_lz4 else ""
    assert compression(database_url) == compressed
    methods = "SELECT string_agg(pg_column_compression(data), ',' ORDER BY position) FROM samples"
    assert scalar(database_url, methods) == ("pglz,lz4" if has_lz4 else "pglz,pglz")

    command.downgrade(config, "0009")
    assert compression(database_url) == ""
    upgrade_to_head(database_url)
    assert compression(database_url) == compressed
