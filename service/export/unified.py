"""The `unified` export: each accepted sample's stored JSON, streamed out as a unified JSON line.

A stored sample is `Sample.model_dump(mode="json", by_alias=True)`, so the line `Sample.to_json()`
would write is that value in compact JSON: it is decoded and encoded again by orjson, never
turned into a `Sample`. A stored value without that exact layout (`unified.sample_json.is_dumped`:
written by an older version, say), or that orjson cannot read as pydantic would
(`unified.sample_json.orjson_safe`: integers beyond 64 bits, say), is written through a `Sample`,
as every row was before, so the bytes are those `write_samples(samples, stream, "unified")`
gives.

A row marked as dumped by the current model (`SampleRecord.layout` equal to
`unified.sample_json.dump_layout()`) whose text orjson wrote is that line already, and goes out
as it is stored: only rows stored by an older version, or that orjson could not write, are read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import orjson

from service.export.base import DEFAULT_CHUNK_SIZE, Exporter
from service.export.json_lines import JSON_LINES_MEDIA_TYPE, JSON_LINES_SUFFIX
from unified.model import Sample
from unified.sample_json import as_utf8, dump_layout, is_dumped, orjson_safe

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

NAME = "unified"


def stored_value(stored: str) -> Any:
    """The decoded value of a stored sample's JSON text, where orjson reads it as pydantic would;
    None otherwise."""
    encoded = as_utf8(stored)
    if encoded is None or not orjson_safe(encoded):
        return None
    try:
        return orjson.loads(encoded)
    except orjson.JSONDecodeError:
        return None


def unified_line(stored: str, layout: str | None = None) -> bytes:
    """One stored sample as its unified JSON line, newline included; `layout` is the one the
    row says its JSON was dumped with."""
    if is_current_dump(stored, layout):
        return stored.encode() + b"\n"
    value = stored_value(stored)
    if value is not None and is_dumped(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_APPEND_NEWLINE)
        except orjson.JSONEncodeError:
            pass
    return Sample.model_validate_json(stored).to_json().encode() + b"\n"


def is_current_dump(stored: str, layout: str | None) -> bool:
    """Whether a stored sample's JSON text is the current model's dump as orjson wrote it:
    marked with the current layout (`layout`, as its row records it) and written by orjson."""
    return layout is not None and layout == dump_layout() and _written_by_orjson(stored)


def _written_by_orjson(stored: str) -> bool:
    """Whether a dumped sample's JSON text is orjson's, not the standard library's that
    `service.db.json_codec` falls back to (which puts a space after the first key's colon; the
    first key of a dump is a field name, without escapes)."""
    colon = stored.find('":', 2)
    return stored.startswith('{"') and colon > 0 and stored[colon + 2 : colon + 3] != " "


def unified_bytes(chunks: Iterable[list[tuple[str, str | None]]]) -> Iterator[bytes]:
    """The unified JSON Lines of chunks of stored samples (their JSON text and the layout it was
    dumped with), one piece per chunk."""
    from service.metrics.recorded import count_export_rows  # not at the top: see json_lines

    for chunk in chunks:
        yield b"".join([unified_line(stored, layout) for stored, layout in chunk])
        count_export_rows(NAME, len(chunk))


def unified_job_bytes(
    sessions: sessionmaker[Session], job_id: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[bytes]:
    """Job `job_id`'s accepted samples as unified JSON Lines, a piece per chunk read."""
    from service.export.accepted import accepted_stored

    return unified_bytes(accepted_stored(sessions, job_id, chunk_size=chunk_size))


EXPORTER = Exporter(NAME, JSON_LINES_MEDIA_TYPE, JSON_LINES_SUFFIX, unified_job_bytes)
