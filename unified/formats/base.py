"""What every dataset format shares.

Rows are read lazily, one at a time, from JSON Lines or from a file holding one JSON array (read
incrementally with ijson); a bad row becomes a `RowError` naming the file, the 1-based row and what
to change, or, with `on_error="skip"`, is skipped and counted on the `SampleReader`. Rows are
written as JSON Lines, one line per sample, as they come.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain
from pathlib import Path
from typing import IO, Any, Literal, Protocol

import ijson
import orjson
from pydantic import ValidationError

from unified.errors import ActionForgeError, RowError
from unified.json_kinds import kind_of
from unified.model import QueryStyle, Sample, ToolCall

OnError = Literal["raise", "skip"]
RowSource = Iterable[bytes] | Iterable[str]
"""A file opened in binary or text mode, or any iterable of lines."""

MAX_KEPT_ERRORS = 100
_CHUNK = 1 << 16


class DatasetFormat(Protocol):
    """A dataset format that can be read; `write` is present on formats that can be written."""

    name: str

    def read(self, stream: RowSource, document: str, **options: Any) -> SampleReader: ...


class WritableFormat(DatasetFormat, Protocol):
    """A dataset format that can also be written."""

    def write(self, samples: Iterable[Sample], stream: IO[Any]) -> int: ...


class Parsed:
    """A row that arrived already decoded (an element of a JSON array)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


RawRow = bytes | str | Parsed
RowParser = Callable[[Any, int], Sample]


class SampleReader(Iterator[Sample]):
    """The samples of one dataset file, parsed only as they are asked for.

    With `on_error="raise"` (the default) the first bad row raises its `RowError`. With
    `on_error="skip"` a bad row yields nothing: `skipped` counts such rows and `errors` keeps the
    first 100 of their errors; `report_skipped` hands every one of them, in file order, to a
    callback as well. A JSON array that breaks off raises in either mode, since nothing after the
    break can be read.
    """

    def __init__(
        self,
        rows: Iterator[tuple[int, Any]],
        parse: RowParser,
        *,
        document: str,
        on_error: OnError = "raise",
        on_close: Sequence[Callable[[], object]] = (),
    ) -> None:
        if on_error not in ("raise", "skip"):
            raise ActionForgeError(
                f"{document}: on_error must be 'raise' or 'skip', got {on_error!r}"
            )
        self.document = document
        self.samples_read = 0
        self.skipped = 0
        self.errors: list[RowError] = []
        self._rows = rows
        self._parse = parse
        self._on_error = on_error
        self._on_close = list(on_close)
        self._on_skip: list[Callable[[RowError], object]] = []

    def __iter__(self) -> SampleReader:
        return self

    def __next__(self) -> Sample:
        while True:
            try:
                row, raw = next(self._rows)
            except BaseException:
                self.close()
                raise
            try:
                sample = self._parse(raw, row)
            except ValidationError as exc:
                error = RowError(self.document, row, describe_validation_error(exc))
                if self._on_error == "raise":
                    self.close()
                    raise error from None
                self._count(error)
                continue
            except RowError as error:
                if self._on_error == "raise":
                    self.close()
                    raise
                self._count(error)
                continue
            self.samples_read += 1
            return sample

    def _count(self, error: RowError) -> None:
        self.skipped += 1
        if len(self.errors) < MAX_KEPT_ERRORS:
            self.errors.append(error)
        for callback in self._on_skip:
            callback(error)

    def report_skipped(self, callback: Callable[[RowError], object]) -> None:
        """Call `callback` with each row skipped from now on, before the next sample is
        returned (so skipped rows and samples keep their file order)."""
        self._on_skip.append(callback)

    def also_close(self, *closers: Callable[[], object]) -> None:
        """Call these (a file's `close`, say) when the reader is exhausted or closed."""
        self._on_close.extend(closers)

    def close(self) -> None:
        """Release the files this reader opened; later reads yield nothing."""
        self._rows = iter(())
        callbacks, self._on_close = self._on_close, []
        for callback in callbacks:
            callback()

    def __enter__(self) -> SampleReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def describe_validation_error(exc: ValidationError) -> str:
    """One sentence for the first problem pydantic found, with the field path and the fix."""
    first = exc.errors()[0]
    path = ".".join(str(part) for part in first["loc"]) or "(the row)"
    fix = "add it" if first["type"] == "missing" else "fix its value"
    more = f" ({exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
    got = "" if first["type"] == "missing" else f" (got {short(first.get('input'))})"
    return f"{exc.title} field '{path}': {first['msg']}{got}; {fix}{more}"


def short(value: Any, limit: int = 80) -> str:
    """A value's repr, cut to `limit` characters for messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def iter_rows(source: RowSource, document: str) -> Iterator[tuple[int, RawRow]]:
    """Yield (1-based row number, raw row) from JSON Lines, or from a file holding one JSON array.

    Blank lines are passed over but still counted, so a JSON Lines row number is its line number;
    in a JSON array it is the element's position.
    """
    lines: Iterator[Any] = iter(source)
    number = 0
    for line in lines:
        number += 1
        head = line.lstrip()
        if not head:
            continue
        if head[:1] in (b"[", "["):
            yield from _array_rows(source, line, lines, document)
            return
        yield number, line
        break
    for line in lines:
        number += 1
        if line.strip():
            yield number, line


def _array_rows(
    source: RowSource, first: bytes | str, rest: Iterator[Any], document: str
) -> Iterator[tuple[int, RawRow]]:
    read = getattr(source, "read", None)
    more: Iterator[Any] = iter(lambda: read(_CHUNK), b"") if callable(read) else rest
    stream = io.BufferedReader(_ChunkStream(chain([first], more)), buffer_size=_CHUNK)
    index = 0
    try:
        for value in ijson.items(stream, "item", use_float=True):
            index += 1
            yield index, Parsed(value)
    except ijson.JSONError as exc:
        raise RowError(
            document,
            index + 1,
            f"the JSON array breaks off here ({exc}); fix the JSON syntax, "
            "since no row after this point can be read",
        ) from None


class _ChunkStream(io.RawIOBase):
    """A readable byte stream over an iterator of byte or text chunks."""

    def __init__(self, chunks: Iterator[bytes | str]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None or chunk in (b"", ""):
                return 0
            self._pending = chunk.encode() if isinstance(chunk, str) else chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def decode_row(raw: RawRow, document: str, row: int) -> Any:
    """The JSON value of a raw row; a `RowError` if it is not valid JSON."""
    if isinstance(raw, Parsed):
        return raw.value
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RowError(
            document,
            row,
            f"not valid JSON ({exc}); each line must hold one JSON object (JSON Lines), "
            "or the whole file one JSON array of objects",
        ) from None


def expect_object(value: Any, document: str, row: int) -> dict[str, Any]:
    """The row as a JSON object; a `RowError` naming what it is instead."""
    if not isinstance(value, dict):
        raise RowError(
            document, row, f"the row is {kind_of(value)}, not a JSON object; write one object a row"
        )
    return value


def row_id(value: Any, document: str, row: int) -> str:
    """A row's own id as text, or `<file stem>-<row>` for rows that have none."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if value is None:
        return f"{Path(document).stem}-{row}"
    raise RowError(
        document, row, f"field 'id' is {kind_of(value)}; write the id as a string or an integer"
    )


def infer_style(calls: Sequence[ToolCall], tool_count: int) -> QueryStyle:
    """APIGen's query style of a sample from its calls and how many tools it offered."""
    if not calls:
        return QueryStyle.irrelevance
    if len(calls) == 1:
        return QueryStyle.simple if tool_count <= 1 else QueryStyle.multiple
    if len({call.name for call in calls}) == 1:
        return QueryStyle.parallel
    return QueryStyle.parallel_multiple


def json_text(value: Any) -> str:
    """JSON text with the separators most datasets use (`, ` and `: `), non-ASCII kept as is."""
    return json.dumps(value, ensure_ascii=False)


def result_text(value: Any) -> str:
    """A tool result as message text: strings verbatim, anything else as JSON."""
    return value if isinstance(value, str) else json_text(value)


def result_value(text: str) -> Any:
    """A tool result from message text: the parsed JSON when writing it back gives the same text,
    else the text itself (so every result round-trips to the same text)."""
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    if isinstance(parsed, str) or json_text(parsed) != text:
        return text
    return parsed


def line_writer(stream: IO[Any]) -> Callable[[bytes], object]:
    """A function that writes one JSON line to a binary or text stream."""
    if isinstance(stream, io.TextIOBase):
        return lambda line: stream.write(line.decode() + "\n")
    return lambda line: stream.write(line + b"\n")


def write_rows(
    samples: Iterable[Sample],
    to_row: Callable[[Sample], dict[str, Any]],
    stream: IO[Any],
) -> int:
    """Write each sample as the JSON line of `to_row(sample)`; return how many were written."""
    write = line_writer(stream)
    document = str(getattr(stream, "name", "<output>"))
    written = 0
    for sample in samples:
        try:
            line = orjson.dumps(to_row(sample), option=orjson.OPT_NON_STR_KEYS)
        except (TypeError, ValueError) as exc:
            raise RowError(
                document,
                written + 1,
                f"sample '{sample.id}' cannot be written as JSON ({exc}); "
                "keep arguments and results to JSON values",
            ) from None
        write(line)
        written += 1
    return written


class RowObjectFormat:
    """A format of one JSON object per row; subclasses say how a row object becomes a sample
    (`sample_from_row`) and how a sample becomes a row object (`row_from_sample`)."""

    name: str

    def sample_from_row(self, row: dict[str, Any], document: str, number: int) -> Sample:
        raise NotImplementedError

    def row_from_sample(self, sample: Sample) -> dict[str, Any]:
        raise NotImplementedError

    def read(
        self, stream: RowSource, document: str, *, on_error: OnError = "raise"
    ) -> SampleReader:
        """The samples of a file in this format, parsed lazily."""

        def parse(raw: RawRow, number: int) -> Sample:
            row = expect_object(decode_row(raw, document, number), document, number)
            return self.sample_from_row(row, document, number)

        return SampleReader(
            iter_rows(stream, document), parse, document=document, on_error=on_error
        )

    def write(self, samples: Iterable[Sample], stream: IO[Any]) -> int:
        """Write each sample as one row; return how many were written."""
        return write_rows(samples, self.row_from_sample, stream)
