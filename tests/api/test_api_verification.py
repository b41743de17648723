"""Verification as the API and the CLI show it, on a real API over real HTTP: a job with the
format, execution and dedup stages run by the engine's own steps, its funnel in
`GET /v1/jobs/{id}` and `actionforge status`, its samples in `actionforge samples`, and the
source of uploaded Python catalogs."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from api_support import TRAVEL_CATALOG, Api
from sqlalchemy import update
from typer.testing import CliRunner

from generators.base import GENERATORS, GenerationRequest, GeneratorBase
from service.cli import client as client_module
from service.db.models import CatalogRecord, JobRecord
from service.pipeline.batches import generate_batch, verify_batch
from unified.model import QueryStyle, Sample, SampleMeta, Step, Tool, ToolCall

CALCULATOR = (
    '"""A calculator."""\n\n\ndef add(a: int, b: int) -> int:\n    """Add."""\n    return a + b\n'
)
FULL = ["format", "execution", "dedup"]
runner = CliRunner()


class RepeatingGenerator(GeneratorBase):
    """Weather questions about two cities, some asked twice; every third calls a tool the
    catalog does not have."""

    def generate(self, tools: Sequence[Tool], request: GenerationRequest) -> list[Sample]:
        rng = random.Random(request.seed)
        samples = []
        for i in range(request.n):
            city = rng.choice(["Lisbon", "Osaka"])
            name = "no_such_tool" if i % 3 == 0 else "get_weather"
            samples.append(
                Sample(
                    id=f"{request.id_prefix}{i}",
                    tools=list(tools),
                    query=f"What is the weather like in {city} [{i % 2}]?",
                    steps=[Step(tool_calls=[ToolCall(name=name, arguments={"city": city})])],
                    meta=SampleMeta(style=QueryStyle.simple, generator="repeating"),
                )
            )
        return samples


GENERATORS.register("repeating-for-api-tests", f"{__name__}:RepeatingGenerator")


def invoke(*args: str, columns: int = 200) -> tuple[int, str, str]:
    """Run the CLI on a terminal `columns` wide (sample ids are long)."""
    from service.cli.app import app

    result = runner.invoke(app, list(args), env={"AF_API_KEYS": "", "COLUMNS": str(columns)})
    return result.exit_code, result.stdout, result.stderr


def one_line(text: str) -> str:
    return " ".join(text.split())


def upload(api: Api, name: str, raw: bytes) -> dict[str, Any]:
    response = api.http.post("/v1/catalogs", files={"file": (name, raw, "text/plain")})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def verified_job(api: Api, n: int = 12, verify: list[str] = FULL) -> dict[str, Any]:
    """A job submitted over HTTP, its batches run by the engine's steps; as the API gives it.

    Its catalog is a document of its own (the travel catalog and a comment), so that the
    dedup stage does not compare it with the jobs of other tests.
    """
    document = TRAVEL_CATALOG.read_bytes() + f"\n# {uuid.uuid4().hex}\n".encode()
    catalog = upload(api, TRAVEL_CATALOG.name, document)
    body = {
        "catalog_id": catalog["id"],
        "n": n,
        "batch_size": 6,
        "seed": 7,
        "generator": "repeating-for-api-tests",
        "verify": verify,
    }
    response = api.http.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    batches = [f"{job_id}-{i:06d}" for i in range((n + 5) // 6)]
    for batch_id in batches:
        assert generate_batch(api.sessions, batch_id)
    for batch_id in reversed(batches):
        assert verify_batch(api.sessions, batch_id)
    job: dict[str, Any] = api.http.get(f"/v1/jobs/{job_id}").json()
    return job


def test_a_python_catalog_keeps_its_source_and_others_do_not(api: Api) -> None:
    python = upload(api, "calc.py", CALCULATOR.encode())
    openapi = upload(api, TRAVEL_CATALOG.name, TRAVEL_CATALOG.read_bytes())
    with api.sessions() as session:
        stored = session.get(CatalogRecord, python["id"])
        other = session.get(CatalogRecord, openapi["id"])
        assert stored is not None and other is not None
        assert (stored.kind, stored.document) == ("python", CALCULATOR)
        assert other.document is None
    assert python["tools"][0]["source"]["callable"] == "calc:add"


def test_the_job_shows_its_funnel_and_rejections_with_examples(api: Api) -> None:
    job = verified_job(api)
    counts = job["counts"]
    assert job["status"] == "succeeded"
    steps = [(s["step"], s["samples"], s["rejected"]) for s in counts["funnel"]]
    assert [step for step, _, _ in steps] == ["generated", *FULL, "accepted"]
    assert steps[0] == ("generated", 12, 0)
    assert steps[1] == ("format", 8, 4)
    assert steps[2] == ("execution", 8, 0)
    kept = counts["accepted"]
    assert steps[3:] == [("dedup", kept, 8 - kept), ("accepted", kept, 0)]
    assert 0 < kept < 8
    page = api.http.get(f"/v1/jobs/{job['id']}/samples", params={"status": "rejected"}).json()
    by_reason: dict[tuple[str, str], list[str]] = {}
    for item in page["data"]:
        by_reason.setdefault((item["stage"], item["reason"]), []).append(item["id"])
    assert counts["rejections"] == [
        {"stage": stage, "reason": reason, "samples": len(ids), "examples": ids[:5]}
        for (stage, reason), ids in sorted(
            by_reason.items(), key=lambda e: (-len(e[1]), FULL.index(e[0][0]), e[0][1])
        )
    ]
    # Fields users script against are still there.
    assert counts["by_reason"] == {r["reason"]: r["samples"] for r in counts["rejections"]}
    assert counts["by_stage"]["format"] == {"passed": 8, "rejected": 4}


def test_samples_carry_their_verdicts_in_stage_order_and_their_observations(api: Api) -> None:
    job = verified_job(api)
    accepted = api.http.get(f"/v1/jobs/{job['id']}/samples", params={"status": "accepted"})
    items = accepted.json()["data"]
    assert items
    for item in items:
        assert [v["stage"] for v in item["verdicts"]] == FULL
        step = item["sample"]["steps"][0]
        assert len(step["results"]) == len(step["tool_calls"]) == 1
        assert isinstance(step["results"][0], dict)
    duplicates = api.http.get(
        f"/v1/jobs/{job['id']}/samples", params={"status": "rejected", "reason": "duplicate"}
    ).json()
    assert duplicates["count"] > 0
    assert all(item["verdicts"][-1]["stage"] == "dedup" for item in duplicates["data"])


def test_counts_stored_before_the_funnel_existed_still_show_one(api: Api) -> None:
    job = verified_job(api, n=6, verify=["format"])
    old = {key: job["counts"][key] for key in ("generated", "accepted", "rejected", "by_stage")}
    old |= {"by_reason": job["counts"]["by_reason"], "batches": {"verified": 1}}
    with api.sessions() as session, session.begin():
        session.execute(update(JobRecord).where(JobRecord.id == job["id"]).values(counts=old))
    shown = api.http.get(f"/v1/jobs/{job['id']}").json()["counts"]
    assert shown["funnel"] == job["counts"]["funnel"]
    assert shown["rejections"] == []


def test_status_prints_the_stages_in_order_and_example_ids(sqlite_api: Api) -> None:
    job = verified_job(sqlite_api)
    code, out, err = invoke("status", job["id"], "--url", sqlite_api.url)
    assert code == 0, err
    lines = [one_line(line.replace("│", " ")) for line in out.splitlines()]
    stage_rows = [
        line.split()[0]
        for line in lines
        if line.split()[:1] in (["format"], ["execution"], ["dedup"])
    ]
    assert stage_rows[:3] == FULL
    assert "format 8 -4 66.7%" in lines
    first_unknown = job["counts"]["rejections"]
    unknown = next(r for r in first_unknown if r["reason"] == "unknown_tool")
    assert f"unknown_tool: {' '.join(unknown['examples'])}" in out


def test_the_samples_command_shows_a_table_of_rejections(sqlite_api: Api) -> None:
    job = verified_job(sqlite_api)
    code, out, err = invoke(
        "samples", job["id"], "--status", "rejected", "--reason", "unknown_tool",
        "--url", sqlite_api.url,
    )  # fmt: skip
    assert code == 0, err
    text = one_line(out.replace("│", " "))
    assert "4 of 4 samples" in text
    expected = sqlite_api.http.get(
        f"/v1/jobs/{job['id']}/samples", params={"reason": "unknown_tool"}
    ).json()["data"]
    for item in expected:
        assert f"{item['id']} rejected format unknown_tool" in text
    assert "no tool named 'no_such_tool'" in text
    assert "What is the weather like in" in text


def test_the_samples_command_truncates_long_queries(sqlite_api: Api) -> None:
    job = verified_job(sqlite_api, n=6, verify=["format"])
    with sqlite_api.sessions() as session:
        from service.db.models import SampleRecord

        record = session.get(SampleRecord, f"{job['id']}-000000-1")
        assert record is not None
        long_query = "Please find " + "very " * 40 + "long flights"
        data = dict(record.data) | {"query": long_query}
        session.execute(update(SampleRecord).where(SampleRecord.id == record.id).values(data=data))
        session.commit()
    code, out, _ = invoke("samples", job["id"], "--limit", "2", "--url", sqlite_api.url)
    assert code == 0
    text = one_line(out.replace("│", " "))
    assert "2 of 6 samples" in text
    assert "long flights" not in text
    assert "Please find very" in text and "…" in text


def test_the_samples_command_pages_through_the_api_and_prints_json(
    sqlite_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = verified_job(sqlite_api)
    monkeypatch.setattr(client_module, "MAX_PAGE", 2)  # several pages for a limit of 5
    code, out, err = invoke("samples", job["id"], "--limit", "5", "--json", "--url", sqlite_api.url)
    assert code == 0, err
    shown = json.loads(out)
    everything = sqlite_api.http.get(f"/v1/jobs/{job['id']}/samples").json()
    assert shown == {"data": everything["data"][:5], "count": 12}


def test_the_samples_command_says_what_is_wrong_in_one_line(sqlite_api: Api) -> None:
    code, _, err = invoke("samples", "no-such-job", "--url", sqlite_api.url)
    assert code == 2
    assert one_line(err).startswith(
        "error: GET /v1/jobs/no-such-job/samples answered 404: job 'no-such-job' does not exist;"
    )
    job = verified_job(sqlite_api, n=6, verify=["format"])
    code, _, err = invoke("samples", job["id"], "--status", "approved", "--url", sqlite_api.url)
    assert code == 2
    assert one_line(err).endswith(
        "answered 422: query parameter 'status': Input should be 'generated', 'accepted' or "
        "'rejected' (got 'approved'); use one of those"
    )


def test_a_batch_verified_at_once_is_stored_as_one_generated_then_verified(api: Api) -> None:
    outcomes = []
    for at_once in (False, True):
        document = TRAVEL_CATALOG.read_bytes() + f"\n# {uuid.uuid4().hex}\n".encode()
        catalog = upload(api, TRAVEL_CATALOG.name, document)
        body = {"catalog_id": catalog["id"], "n": 12, "seed": 7, "verify": FULL}
        body |= {"generator": "repeating-for-api-tests", "batch_size": 12}
        job_id = api.http.post("/v1/jobs", json=body).json()["id"]
        batch_id = f"{job_id}-000000"
        if at_once:
            assert generate_batch(api.sessions, batch_id, verify_at_once=True) == "verified"
        else:
            assert generate_batch(api.sessions, batch_id) == "generated"
            assert verify_batch(api.sessions, batch_id)
        page = api.http.get(f"/v1/jobs/{job_id}/samples", params={"limit": 100})
        rows = json.loads(page.text.replace(job_id, "JOB"))["data"]
        for row in rows:
            row["sample"]["meta"].pop("created")
        job = json.loads(api.http.get(f"/v1/jobs/{job_id}").text.replace(job_id, "JOB"))
        outcomes.append((rows, job["status"], job["counts"]))
    assert outcomes[0] == outcomes[1]
    rows, status, _ = outcomes[0]
    assert status == "succeeded"
    assert {row["status"] for row in rows} == {"accepted", "rejected"}
    assert any(row["sample"]["steps"][0]["results"] for row in rows), "execution ran"
