"""JSON Lines exports in the writable dataset formats of `unified.formats.FORMATS`.

Each chunk of accepted samples is written by the format's own `write`, so an export is byte for
byte the file `write_samples` makes of the same samples, and any format a plugin adds to
`FORMATS` exports the same way.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from service.export.base import DEFAULT_CHUNK_SIZE, Exporter
from unified.formats import WritableFormat
from unified.model import Sample

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

JSON_LINES_MEDIA_TYPE = "application/x-ndjson"
JSON_LINES_SUFFIX = ".jsonl"


def json_lines_bytes(
    chunks: Iterable[Sequence[Sample]], dataset_format: WritableFormat, name: str
) -> Iterator[bytes]:
    """The rows of `chunks` written by `dataset_format` (exported as `name`), one piece per
    chunk."""
    # Here, not at the top: `actionforge verify` loads this module and not the database stack.
    from service.metrics.recorded import count_export_rows

    for chunk in chunks:
        buffer = io.BytesIO()
        count_export_rows(name, dataset_format.write(chunk, buffer))
        yield buffer.getvalue()


def json_lines_exporter(name: str, dataset_format: WritableFormat) -> Exporter:
    """The exporter of a job's accepted samples in `dataset_format`, registered as `name`."""

    def job_bytes(
        sessions: sessionmaker[Session], job_id: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> Iterator[bytes]:
        from service.export.accepted import accepted_chunks

        chunks = accepted_chunks(sessions, job_id, chunk_size=chunk_size)
        return json_lines_bytes(chunks, dataset_format, name)

    return Exporter(name, JSON_LINES_MEDIA_TYPE, JSON_LINES_SUFFIX, job_bytes)
