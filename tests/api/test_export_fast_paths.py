"""Every export format gives, byte for byte, what it gave when each stored sample was made into a
`Sample` by pydantic's JSON parser and written from it, on SQLite and PostgreSQL: a job holding
real samples (datasets, BFCL questions, a template job's executed samples, wrong answers),
odd values (long integers, non-ASCII, control characters) and rows stored by an older version
(fields missing, no layout or another one's)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from api_support import add_job
from real_unified_rows import bfcl_samples, dataset_samples, template_job_samples, wrong_answers
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

import service.export.accepted
from service.db.engine import make_engine, session_factory
from service.db.models import SampleRecord
from service.export.json_lines import json_lines_bytes
from service.export.parquet import parquet_bytes
from service.export.registry import export_format_names, exporter
from unified.formats import FORMATS
from unified.model import Sample, Step, ToolCall

CHUNK = 64


class PlainParser:
    """How stored samples were read before: pydantic's JSON parser, every row in full."""

    def parse_json(self, raw: bytes | str) -> Sample:
        return Sample.model_validate_json(raw)


@pytest.fixture
def sessions(migrated_database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(migrated_database_url)
    yield session_factory(engine)
    engine.dispose()


def odd_samples(values: list[Any]) -> list[Sample]:
    return [
        Sample(
            id=f"odd-{i}",
            query=f"value {value!r} ☃",
            steps=[
                Step(tool_calls=[ToolCall(name="f", arguments={"v": value})], results=[[value]]),
                Step(answer="done\n"),
            ],
        )
        for i, value in enumerate(values)
    ]


ODD_VALUES = [2**64 - 1, -(2**63), 1e-7, 1e22, -0.0, 'é\u2028\x7f\x01"\\', "\U0001f600"]
LONG_INTEGERS = [2**70 + 1, -(2**63) - 1]
"""Integers beyond 64 bits: some formats hold them (unified, xlam), others refuse them
(parquet, openai), before as now."""


def stored_by_an_older_version(sessions: sessionmaker[Session], job_id: str) -> None:
    """Rewrite some stored samples without fields added since (meta.extra, a call's
    acceptable), as a database written by an older version holds them: without a layout (stored
    before there was one) or with an older model's."""
    with sessions() as session, session.begin():
        records = session.query(SampleRecord).filter_by(job_id=job_id).limit(30).all()
        for number, record in enumerate(records[::3]):
            data = json.loads(json.dumps(record.data))
            del data["meta"]["extra"]
            for step in data["steps"]:
                for call in step["tool_calls"]:
                    call.pop("acceptable", None)
            layout = None if number % 2 else "0123456789abcdef"
            changed = (
                update(SampleRecord)
                .where(SampleRecord.id == record.id)
                .values(data=data, layout=layout)
            )
            session.execute(changed)


def exports(sessions: sessionmaker[Session], job_id: str) -> dict[str, Any]:
    return {
        fmt: outcome(lambda fmt=fmt: exporter(fmt).job_bytes(sessions, job_id, chunk_size=CHUNK))
        for fmt in export_format_names()
    }


def plain_exports(sessions: sessionmaker[Session], job_id: str) -> dict[str, Any]:
    """The exports as they were made: every stored sample read by pydantic's JSON parser, each
    format written from the samples, chunk by chunk."""
    chunks = list(service.export.accepted.accepted_chunks(sessions, job_id, chunk_size=CHUNK))
    made = {}
    for fmt in export_format_names():
        if fmt == "parquet":
            made[fmt] = outcome(lambda: parquet_bytes(chunks))
        elif fmt == "dpo":
            made[fmt] = outcome(
                lambda: exporter("dpo").job_bytes(sessions, job_id, chunk_size=CHUNK)
            )
        else:
            made[fmt] = outcome(lambda fmt=fmt: json_lines_bytes(chunks, FORMATS.get(fmt), fmt))
    return made


def test_every_format_exports_what_it_did_from_samples(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    samples = dataset_samples() + template_job_samples() + bfcl_samples(40)
    samples += wrong_answers(samples)[:100] + odd_samples(ODD_VALUES)
    job_id = add_job(sessions, samples)
    stored_by_an_older_version(sessions, job_id)
    long_integers = add_job(sessions, odd_samples(LONG_INTEGERS))
    fast = exports(sessions, job_id)
    fast_long = exports(sessions, long_integers)
    monkeypatch.setattr(service.export.accepted, "SampleParser", PlainParser)
    assert fast == plain_exports(sessions, job_id)
    assert fast_long == plain_exports(sessions, long_integers)
    assert all(isinstance(body, bytes) for body in fast.values())
    assert fast["unified"].count(b"\n") == len(samples)
    assert isinstance(fast_long["unified"], bytes)
    assert isinstance(fast_long["parquet"], tuple), "refused, as before"


def outcome(pieces: Callable[[], Iterable[bytes]]) -> bytes | tuple[str, str]:
    """The bytes of an export, or the error that stopped it (a sample a format cannot hold)."""
    try:
        return b"".join(pieces())
    except Exception as exc:
        return type(exc).__name__, str(exc)
