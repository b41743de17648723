"""Streaming importers and exporters of public dataset formats.

`FORMATS` maps a format name to an object with `read(stream, document, **options)`, which
returns a `SampleReader` (an iterator of samples, parsed one row at a time; `hf`'s raises, it is
written only), and, for every format but `bfcl`, `write(samples, stream)`, which writes one line
per sample as it comes and returns how many rows it wrote. Nothing holds a whole file in memory:
files are read as JSON Lines or, when they start with `[`, as one JSON array parsed
incrementally; they are always written as JSON Lines.

Built in: `unified` (unified JSON Lines), `xlam` (xlam-function-calling-60k rows), `openai`
(chat fine-tuning JSONL with tool calls), `sharegpt` (Hermes function-calling conversations),
`llamafactory` (LLaMA-Factory's sharegpt layout with tools; export only: its `read` raises),
`hf` (Hugging Face conversational rows that TRL trains on as they are; export only) and `bfcl`
(BFCL question files with their possible answers; import only). Each module's docstring
says what its format cannot hold. Other packages add formats through the `actionforge.formats`
entry point group.

Reading raises `RowError` (file, 1-based row, what to change) at the first bad row; pass
`on_error="skip"` to skip bad rows instead, counted in the reader's `skipped` and kept (the first
100) in its `errors`.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from unified.errors import ActionForgeError, RowError
from unified.formats.base import DatasetFormat, OnError, SampleReader, WritableFormat
from unified.model import Sample
from unified.registry import Registry

FORMATS = Registry(
    "dataset format",
    {
        "unified": "unified.formats.unified_lines:FORMAT",
        "xlam": "unified.formats.xlam:FORMAT",
        "openai": "unified.formats.openai_chat:FORMAT",
        "sharegpt": "unified.formats.sharegpt:FORMAT",
        "llamafactory": "unified.formats.llamafactory:FORMAT",
        "hf": "unified.formats.hf:FORMAT",
        "bfcl": "unified.formats.bfcl:FORMAT",
    },
    "actionforge.formats",
)

PathLike = str | os.PathLike[str]


def read_samples(path: PathLike, fmt: str, **options: Any) -> SampleReader:
    """The samples of the dataset file at `path` in format `fmt`, read lazily row by row.

    Options go to the format's `read`: `on_error` ("raise" or "skip") for every format, and for
    `bfcl` `answers`, the possible-answer file, and `functions`, the function documents of
    multi-turn rows (each a path or an open stream). The files are closed
    when the reader is exhausted or closed.
    """
    dataset_format: DatasetFormat = FORMATS.get(fmt)
    _check_options(dataset_format, fmt, options)
    opened: list[IO[bytes]] = []
    try:
        for companion in ("answers", "functions"):
            given = options.get(companion)
            if isinstance(given, str | os.PathLike):
                opened.append(open(given, "rb"))  # noqa: SIM115 - closed by the reader
                options[companion] = opened[-1]
                options.setdefault(f"{companion}_document", str(given))
        opened.append(open(path, "rb"))  # noqa: SIM115 - closed by the reader
        reader = dataset_format.read(opened[-1], str(path), **options)
    except BaseException:
        for stream in opened:
            stream.close()
        raise
    reader.also_close(*(stream.close for stream in opened))
    return reader


def _check_options(dataset_format: DatasetFormat, fmt: str, options: dict[str, Any]) -> None:
    parameters = inspect.signature(dataset_format.read).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return
    accepted = [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ActionForgeError(
            f"format '{fmt}' has no option {', '.join(map(repr, unknown))}; "
            f"its options are {', '.join(accepted) or 'none'}"
        )


def writable_formats() -> list[str]:
    """The names of the formats that can be written."""
    return [name for name in FORMATS.names() if hasattr(FORMATS.get(name), "write")]


def write_samples(samples: Iterable[Sample], path_or_stream: PathLike | IO[Any], fmt: str) -> int:
    """Write samples in format `fmt`, one row at a time; return how many rows were written.

    A path is written through `<path>.partial`, renamed over `path` only once every row is
    written, so a failed export leaves no half-written file behind.
    """
    dataset_format = FORMATS.get(fmt)
    if not hasattr(dataset_format, "write"):
        raise ActionForgeError(
            f"format '{fmt}' can be read but not written; write one of: "
            + ", ".join(writable_formats())
        )
    writer: WritableFormat = dataset_format
    if not isinstance(path_or_stream, str | os.PathLike):
        return writer.write(samples, path_or_stream)
    target = Path(path_or_stream)
    if target.exists() and not target.is_file():
        with target.open("wb") as stream:
            return writer.write(samples, stream)
    partial = target.with_name(target.name + ".partial")
    try:
        with partial.open("wb") as stream:
            written = writer.write(samples, stream)
        os.replace(partial, target)
    except RowError as exc:
        partial.unlink(missing_ok=True)
        if exc.document != str(partial):
            raise
        raise RowError(str(target), exc.row, exc.message) from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return written


def convert(
    in_path: PathLike,
    from_fmt: str,
    out: PathLike | IO[Any],
    to_fmt: str,
    *,
    on_error: OnError = "raise",
    **options: Any,
) -> int:
    """Convert a dataset file from one format to another, row by row; return rows written."""
    writer = FORMATS.get(to_fmt)
    if not hasattr(writer, "write"):
        raise ActionForgeError(
            f"format '{to_fmt}' can be read but not written; convert to one of: "
            + ", ".join(writable_formats())
        )
    with read_samples(in_path, from_fmt, on_error=on_error, **options) as samples:
        return write_samples(samples, out, to_fmt)


__all__ = [
    "FORMATS",
    "DatasetFormat",
    "OnError",
    "SampleReader",
    "WritableFormat",
    "convert",
    "read_samples",
    "writable_formats",
    "write_samples",
]
