"""Revision 0002 (verification) on a database that already holds 0001 rows, on SQLite and
PostgreSQL: the rows stay, the new columns start empty, and it goes down and up again."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from service.db.engine import make_engine, session_factory
from service.db.migrate import alembic_config, upgrade_to_head
from service.db.models import CatalogRecord, DedupKeyRecord, JobRecord, SampleRecord

ROWS_0001 = [
    "INSERT INTO catalogs (id, name, kind, title, sha256, tools, created_at) VALUES "
    "('c1', 'calc.py', 'python', NULL, 'ab', '[]', '2026-01-01 00:00:00+00:00')",
    "INSERT INTO jobs (id, catalog_id, spec, status, error, counts, created_at, updated_at) "
    "VALUES ('j1', 'c1', '{\"n\": 1}', 'succeeded', NULL, '{}', "
    "'2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00')",
    "INSERT INTO batches (id, job_id, index, size, seed, status, attempts, updated_at) VALUES "
    "('j1-0', 'j1', 0, 1, 7, 'verified', 0, '2026-01-01 00:00:00+00:00')",
    "INSERT INTO samples (id, job_id, batch_id, position, status, stage, reason, data, "
    "created_at) VALUES ('j1-0-0', 'j1', 'j1-0', 0, 'accepted', 'format', NULL, "
    '\'{"id": "j1-0-0", "query": "q"}\', \'2026-01-01 00:00:00+00:00\')',
]


def columns(url: str, table: str) -> set[str]:
    engine = make_engine(url)
    try:
        return {column["name"] for column in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def test_0002_keeps_the_rows_of_0001_and_goes_down_and_up_again(database_url: str) -> None:
    config = alembic_config(database_url)
    command.upgrade(config, "0001")
    engine = make_engine(database_url)
    with engine.begin() as connection:
        for statement in ROWS_0001:
            quoted = statement.replace(" index,", ' "index",')
            connection.execute(text(quoted))
    engine.dispose()

    upgrade_to_head(database_url)

    assert "document" in columns(database_url, "catalogs")
    assert "fingerprint" in columns(database_url, "samples")
    engine = make_engine(database_url)
    with session_factory(engine)() as session:
        catalog = session.get(CatalogRecord, "c1")
        job = session.get(JobRecord, "j1")
        sample = session.get(SampleRecord, "j1-0-0")
        assert catalog is not None and job is not None and sample is not None
        assert (catalog.name, catalog.document) == ("calc.py", None)
        assert (job.status, job.dedup_frontier) == ("succeeded", 0)
        assert (sample.data, sample.fingerprint) == ({"id": "j1-0-0", "query": "q"}, None)
        session.add(DedupKeyRecord(sample_id="j1-0-0", slot=0, key=-(2**63)))
        session.add(DedupKeyRecord(sample_id="j1-0-0", slot=1, key=2**63 - 1))
        session.commit()
    engine.dispose()

    command.downgrade(config, "0001")
    assert "document" not in columns(database_url, "catalogs")
    assert "dedup_frontier" not in columns(database_url, "jobs")
    assert "fingerprint" not in columns(database_url, "samples")
    engine = make_engine(database_url)
    try:
        assert "dedup_keys" not in inspect(engine).get_table_names()
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM samples")).scalar() == 1
    finally:
        engine.dispose()

    upgrade_to_head(database_url)
    assert "dedup_frontier" in columns(database_url, "jobs")
