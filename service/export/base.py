"""What an exporter is: the name of an export format, the media type and file suffix of its
files, and the function that streams a job's export in it.

Exporters are looked up by name in `service.export.registry.EXPORTERS`, which the REST API's
export route, the CLI and its client ask instead of knowing any format themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"
DEFAULT_CHUNK_SIZE = 1000
"""Accepted samples read per database query, and turned into one piece of the export."""


class JobBytes(Protocol):
    """Streams the export of job `job_id`: its bytes, one piece per chunk of at most
    `chunk_size` accepted samples (`service.export.accepted.accepted_chunks`), read only as the
    pieces are asked for."""

    def __call__(
        self, sessions: sessionmaker[Session], job_id: str, *, chunk_size: int = ...
    ) -> Iterator[bytes]: ...


@dataclass(frozen=True)
class Exporter:
    """One export format, registered under `name`.

    `count_rows` counts the rows of an exported file, for formats that are not one row per line
    (Parquet); when it is None a client counts the lines it receives.
    """

    name: str
    media_type: str
    suffix: str
    job_bytes: JobBytes
    count_rows: Callable[[Path], int] | None = None

    def file_name(self, job_id: str) -> str:
        """The file name an export of job `job_id` in this format is offered under."""
        return f"{job_id}-{self.name}{self.suffix}"
