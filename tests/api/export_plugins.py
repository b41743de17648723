"""What a plugin package could add, for tests/api/test_api_export_plugins.py: an exporter of its
own (`QUERY_CSV`, registered in `service.export.registry.EXPORTERS`) and a dataset format
(`CALL_LINES`, registered in `unified.formats.FORMATS`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from service.export.accepted import DEFAULT_CHUNK_SIZE, accepted_chunks
from service.export.base import Exporter
from unified.formats.base import RowObjectFormat
from unified.model import Sample, Step, ToolCall

QUERY_CSV_HEADER = ["id", "query", "tools"]


def query_csv_bytes(
    sessions: sessionmaker[Session], job_id: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[bytes]:
    """A CSV file of the accepted samples' ids, queries and offered tool names: the header, then
    one piece per chunk."""
    yield _csv_text([QUERY_CSV_HEADER]).encode()
    for chunk in accepted_chunks(sessions, job_id, chunk_size=chunk_size):
        rows = [[s.id, s.query, " ".join(tool.name for tool in s.tools)] for s in chunk]
        yield _csv_text(rows).encode()


def _csv_text(rows: list[list[str]]) -> str:
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    return text.getvalue()


def query_csv_rows(path: Path) -> int:
    """The records of a CSV export, its header left out (a query may span lines)."""
    with path.open(newline="") as stream:
        return sum(1 for _ in csv.reader(stream)) - 1


QUERY_CSV = Exporter("query_csv", "text/csv", ".csv", query_csv_bytes, count_rows=query_csv_rows)


class CallLinesFormat(RowObjectFormat):
    """One JSON object a line: the sample's id, query and tool calls (tools are not kept)."""

    name = "call_lines"

    def row_from_sample(self, sample: Sample) -> dict[str, Any]:
        calls = [{"name": call.name, "arguments": call.arguments} for call in sample.tool_calls()]
        return {"id": sample.id, "query": sample.query, "calls": calls}

    def sample_from_row(self, row: dict[str, Any], document: str, number: int) -> Sample:
        calls = [ToolCall.model_validate(call) for call in row["calls"]]
        return Sample(id=row["id"], query=row["query"], steps=[Step(tool_calls=calls)])


CALL_LINES = CallLinesFormat()
