"""The unified format as JSON Lines: one `Sample.to_json()` per line.

Nothing is lost either way: every field of a sample, its metadata included, is written and read
back. A row that does not validate raises a `RowError` naming the field path. Rows are read by
`unified.sample_json.SampleParser` (orjson, each distinct tool list validated once).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Any

from pydantic import ValidationError

from unified.formats.base import (
    OnError,
    Parsed,
    RawRow,
    RowSource,
    SampleReader,
    decode_row,
    iter_rows,
    line_writer,
)
from unified.model import Sample
from unified.sample_json import SampleParser


class UnifiedFormat:
    """Unified samples, one JSON object a line."""

    name = "unified"

    def read(
        self, stream: RowSource, document: str, *, on_error: OnError = "raise"
    ) -> SampleReader:
        """The samples of a unified JSON Lines stream (or JSON array), parsed lazily."""

        parser = SampleParser()

        def parse(raw: RawRow, row: int) -> Sample:
            if isinstance(raw, Parsed):
                return parser.parse_value(raw.value)
            try:
                return parser.parse_json(raw)
            except ValidationError as exc:
                if exc.errors()[0]["type"] == "json_invalid":
                    decode_row(raw, document, row)  # raises the RowError every format gives
                raise

        return SampleReader(
            iter_rows(stream, document), parse, document=document, on_error=on_error
        )

    def write(self, samples: Iterable[Sample], stream: IO[Any]) -> int:
        """Write each sample as one line; return how many were written."""
        write = line_writer(stream)
        written = 0
        for sample in samples:
            write(sample.to_json().encode())
            written += 1
        return written


FORMAT = UnifiedFormat()
