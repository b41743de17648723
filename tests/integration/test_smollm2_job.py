"""A job whose generator is a real (weak) instruct model, SmolLM2-135M-Instruct on vLLM's CPU
server, verified by the default stages: the model writes the kind of wrong samples the meaning
stages exist for, and the test checks that they are rejected for meaning reasons and that what
is accepted holds up to the grounding rules. Run with `-s` to see the funnel."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import TRAVEL_CATALOG, Worker
from jobs_over_http import submit_job, upload_travel_catalog, wait_for_job_over_http
from llm_fixtures import VllmServer
from served_api import Api
from smollm2_model import MODEL

from service.pipeline.spec import JobSpec
from service.settings import Settings
from unified.catalogs import load_catalog
from unified.model import Sample
from verifiers.grounding import ungrounded

pytestmark = [pytest.mark.slow, pytest.mark.llm]

MEANING_REASONS = {
    "query_malformed",
    "value_not_in_query",
    "query_value_unused",
    "missing_call",
    "duplicate_call",
    "extra_call",
}
CREATED = "2026-12-06T12:00:00+00:00"
# About 40 s alone on 2 CPUs; a CI machine shared with other work ran the model over 20 times
# slower, and a bound that only keeps a broken run from hanging must allow for that.
SMOLLM2_JOB_SECONDS = 1200


def _samples(api: Api, job_id: str) -> list[dict[str, Any]]:
    response = api.http.get(f"/v1/jobs/{job_id}/samples", params={"limit": 1000})
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["data"]
    return rows


def _show_funnel(job: dict[str, Any]) -> None:
    counts = job["counts"]
    lines = [f"SmolLM2 job: {counts['generated']} generated, {counts['accepted']} accepted"]
    lines += [f"  {s['step']:<12} {s['samples']:>4}  -{s['rejected']}" for s in counts["funnel"]]
    by_count = sorted(counts["by_reason"].items(), key=lambda item: -item[1])
    lines += [f"  {reason:<20} {samples:>4}" for reason, samples in by_count]
    lines.append(f"  usage: {counts['generation']}")
    print("\n" + "\n".join(lines))


class ServerLog:
    """The vLLM server's last lines (its throughput every 10 s) for a failure message."""

    def __init__(self, server: VllmServer) -> None:
        self.server = server

    def tail(self) -> str:
        return f"vLLM server ({self.server.log}):\n{self.server.log_tail()}"


def _service(
    tmp_path: Path,
    database_url: str,
    broker_url: str,
    start_workers: Callable[..., list[Worker]],
    serve_api: Callable[[Settings], Api],
) -> tuple[Api, list[Worker], str]:
    """One worker and the API on PostgreSQL and Redis, with the travel catalog uploaded."""
    settings = Settings(
        data_dir=tmp_path / "data", database_url=database_url, broker_url=broker_url
    )
    workers = start_workers(settings, count=1, concurrency=1)
    api = serve_api(settings)
    return api, workers, upload_travel_catalog(api.http)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_smollm2_job_is_rejected_for_meaning_and_accepts_only_grounded_samples(
    migrated_database_url: str,
    clean_redis: str,
    start_workers: Callable[..., list[Worker]],
    serve_api: Callable[[Settings], Api],
    tmp_path: Path,
    smollm2_server: VllmServer,
) -> None:
    api, workers, catalog_id = _service(
        tmp_path, migrated_database_url, clean_redis, start_workers, serve_api
    )
    spec = JobSpec(
        n=16,
        seed=11,
        generator="llm",
        generator_options={
            "backend": "openai",
            "model": MODEL.served_name,
            "base_url": smollm2_server.base_url,
            "max_tokens": 400,
            "created": CREATED,
        },
    )  # default stages: query, format, grounding, coverage (no judge)
    job_id = submit_job(api.http, catalog_id, spec)
    job = wait_for_job_over_http(
        api.http, job_id, *workers, ServerLog(smollm2_server), seconds=SMOLLM2_JOB_SECONDS
    )
    _show_funnel(job)

    assert (job["status"], job["error"]) == ("succeeded", None)
    assert job["spec"]["verify"] == ["generation", "query", "format", "grounding", "coverage"]
    reasons = job["counts"]["by_reason"]
    assert MEANING_REASONS & set(reasons), reasons

    rows = _samples(api, job_id)
    assert len(rows) == job["counts"]["generated"]
    catalog_tools = load_catalog(TRAVEL_CATALOG).tools
    verdict_of_grounding: dict[str, str | None] = {}
    accepted = [row for row in rows if row["status"] == "accepted"]
    for row in rows:
        sample = Sample.model_validate(row["sample"])
        verdict_of_grounding[row["id"]] = ungrounded(sample, sample.tools or catalog_tools)
        if row["status"] == "accepted":
            assert not sample.meta.extra.get("generation_error"), row["id"]
            assert verdict_of_grounding[row["id"]] is None, (row["id"], sample.query)
    # The check above agrees with the stage: what the job rejected as ungrounded is ungrounded.
    ungrounded_rows = [row for row in rows if row["reason"] == "value_not_in_query"]
    assert all(verdict_of_grounding[row["id"]] for row in ungrounded_rows)
    assert accepted or ungrounded_rows  # the grounding rules were checked on something


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_smollm2_as_judge_fails_calibration_before_judging_the_job(
    migrated_database_url: str,
    clean_redis: str,
    start_workers: Callable[..., list[Worker]],
    serve_api: Callable[[Settings], Api],
    tmp_path: Path,
    smollm2_server: VllmServer,
) -> None:
    """A weak model passes nearly everything: scored on the catalog's calibration set it falls
    short, and the job fails with `judge_uncalibrated` and the figures before its judge stamps
    any of the job's samples."""
    api, workers, catalog_id = _service(
        tmp_path, migrated_database_url, clean_redis, start_workers, serve_api
    )
    judge = {"backend": "openai", "model": MODEL.served_name, "base_url": smollm2_server.base_url}
    spec = JobSpec(
        n=8,
        seed=11,
        generator="template",
        verify=["query", "format", "grounding", "coverage", {"semantic": {"judge": judge}}],
    )
    job_id = submit_job(api.http, catalog_id, spec)
    job = wait_for_job_over_http(
        api.http, job_id, *workers, ServerLog(smollm2_server), seconds=SMOLLM2_JOB_SECONDS
    )
    calibration = job["judge_calibration"]
    print(f"\nSmolLM2 as judge: {calibration}")

    assert job["status"] == "failed"
    assert job["error"].startswith("judge_uncalibrated: the judge accepted ")
    assert calibration["right"] == calibration["wrong"] == 12
    assert calibration["accuracy"] < calibration["min_accuracy"] == 0.8
    assert f"balanced accuracy {calibration['accuracy']:.2f}" in job["error"]
    rows = _samples(api, job_id)
    assert not any(row["stage"] == "semantic" for row in rows)
