"""Reading a job's accepted samples for an export, a chunk at a time.

Samples are read by keyset pagination on their position, each chunk in its own short database
session, so that every exporter turns them into bytes chunk by chunk: an export of any size holds
one chunk in memory, never the whole dataset, and keeps no transaction open while bytes are sent.
Exporters that can work from the stored JSON text take it as it is (`accepted_texts`); the others
get samples (`accepted_chunks`).
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import SampleRecord, SampleStatus
from service.export.base import DEFAULT_CHUNK_SIZE
from unified.model import Sample
from unified.sample_json import SampleParser

__all__ = ["DEFAULT_CHUNK_SIZE", "accepted_chunks", "accepted_stored", "accepted_texts"]


def accepted_texts(
    sessions: sessionmaker[Session], job_id: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[list[str]]:
    """The stored JSON text of job `job_id`'s accepted samples in position order, `chunk_size`
    at a time (those of `accepted_stored`)."""
    for chunk in accepted_stored(sessions, job_id, chunk_size=chunk_size):
        yield [text for text, _ in chunk]


def accepted_stored(
    sessions: sessionmaker[Session], job_id: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[list[tuple[str, str | None]]]:
    """The stored JSON text of job `job_id`'s accepted samples and the layout it was dumped
    with (`SampleRecord.layout`), in position order, `chunk_size` at a time.

    Each chunk is one query (`position > last position seen`) in its own session, so samples
    accepted while the export runs are picked up if they come after the last chunk read. The
    JSON is read as text, not decoded by the driver.
    """
    after = -1
    while True:
        with sessions() as session:
            rows = session.execute(
                select(SampleRecord.position, cast(SampleRecord.data, Text), SampleRecord.layout)
                .where(
                    SampleRecord.job_id == job_id,
                    SampleRecord.status == SampleStatus.accepted,
                    SampleRecord.position > after,
                )
                .order_by(SampleRecord.position)
                .limit(chunk_size)
            ).all()
        if not rows:
            return
        yield [(text, layout) for _, text, layout in rows]
        if len(rows) < chunk_size:
            return
        after = rows[-1].position


def accepted_chunks(
    sessions: sessionmaker[Session], job_id: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[list[Sample]]:
    """The accepted samples of job `job_id` in position order, `chunk_size` at a time (the
    chunks of `accepted_texts`, parsed by `SampleParser`, which validates each distinct list of
    tools once)."""
    parser = SampleParser()
    for texts in accepted_texts(sessions, job_id, chunk_size=chunk_size):
        yield [parser.parse_json(text) for text in texts]
