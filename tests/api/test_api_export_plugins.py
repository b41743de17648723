"""Export formats added by plugins, at runtime: an exporter registered in `EXPORTERS` and a
dataset format registered in `FORMATS` are listed, served by `GET /v1/jobs/{id}/export` and
downloaded by the CLI's client, with no other edit."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import ACCEPTED, Api, Outcome, add_job, real_samples

from service.cli.client import ActionForgeClient
from service.db.models import SampleStatus
from service.export.registry import EXPORTERS, export_format_names, exporter
from unified.errors import ActionForgeError
from unified.formats import FORMATS, write_samples
from unified.model import Sample

REJECTED: Outcome = (SampleStatus.rejected, "format", "unknown_tool")


@pytest.fixture
def query_csv() -> Iterator[str]:
    """The plugin exporter `query_csv`, registered for the test."""
    EXPORTERS.register("query_csv", "export_plugins:QUERY_CSV")
    yield "query_csv"
    EXPORTERS.unregister("query_csv")


@pytest.fixture
def call_lines() -> Iterator[str]:
    """The plugin dataset format `call_lines`, registered for the test."""
    FORMATS.register("call_lines", "export_plugins:CALL_LINES")
    yield "call_lines"
    FORMATS.unregister("call_lines")


def job_with_rejections(api: Api, n: int = 12) -> tuple[str, list[Sample]]:
    """A job of `n` real samples, every third rejected; its id and its accepted samples."""
    base = real_samples()
    samples = [base[i % len(base)].model_copy(update={"id": f"plugin-{i}"}) for i in range(n)]
    outcomes = [REJECTED if i % 3 == 0 else ACCEPTED for i in range(n)]
    job_id = add_job(api.sessions, samples, outcomes)
    accepted = [s for s, o in zip(samples, outcomes, strict=True) if o == ACCEPTED]
    return job_id, accepted


def test_a_registered_exporter_is_listed_and_served(api: Api, query_csv: str) -> None:
    assert query_csv in export_format_names()
    job_id, accepted = job_with_rejections(api)

    response = api.http.get(f"/v1/jobs/{job_id}/export", params={"format": query_csv})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="{job_id}-query_csv.csv"'
    )
    header, *rows = csv.reader(io.StringIO(response.text))
    assert header == ["id", "query", "tools"]
    assert [(row[0], row[1]) for row in rows] == [(s.id, s.query) for s in accepted]

    unknown = api.http.get(f"/v1/jobs/{job_id}/export", params={"format": "csv"})
    assert unknown.status_code == 422
    assert f"Known: {', '.join(export_format_names())}" in unknown.json()["detail"]
    assert "query_csv" in unknown.json()["detail"]


def test_the_client_counts_a_plugin_exporters_rows_its_own_way(
    api: Api, query_csv: str, tmp_path: Path
) -> None:
    job_id, accepted = job_with_rejections(api)
    out = tmp_path / "queries.csv"
    with ActionForgeClient(api.url) as client:
        result = client.export(job_id, query_csv, out)
    assert result.rows == len(accepted) == 8  # the header is not a row
    assert (
        out.read_bytes()
        == api.http.get(f"/v1/jobs/{job_id}/export", params={"format": query_csv}).content
    )


def test_an_unregistered_exporter_is_refused_again(api: Api) -> None:
    EXPORTERS.register("query_csv", "export_plugins:QUERY_CSV")
    EXPORTERS.unregister("query_csv")
    job_id, _ = job_with_rejections(api, 3)
    response = api.http.get(f"/v1/jobs/{job_id}/export", params={"format": "query_csv"})
    assert response.status_code == 422
    assert "query_csv" not in export_format_names()


def test_a_plugin_dataset_format_is_exported_as_json_lines(api: Api, call_lines: str) -> None:
    assert call_lines in export_format_names()
    assert exporter(call_lines).media_type == "application/x-ndjson"
    job_id, accepted = job_with_rejections(api)

    response = api.http.get(f"/v1/jobs/{job_id}/export", params={"format": call_lines})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="{job_id}-call_lines.jsonl"'
    )
    expected = io.BytesIO()
    write_samples(accepted, expected, call_lines)
    assert response.content == expected.getvalue()
    read_back = list(FORMATS.get(call_lines).read(io.BytesIO(response.content), "export"))
    assert [(s.id, s.query, s.tool_calls()) for s in read_back] == [
        (s.id, s.query, s.tool_calls()) for s in accepted
    ]


def test_a_name_registered_for_something_else_than_an_exporter_says_so() -> None:
    EXPORTERS.register("not_an_exporter", "export_plugins:CALL_LINES")
    try:
        with pytest.raises(ActionForgeError, match="registered as a CallLinesFormat, not an"):
            exporter("not_an_exporter")
    finally:
        EXPORTERS.unregister("not_an_exporter")
