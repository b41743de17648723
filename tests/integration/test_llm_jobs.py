"""Jobs with the `llm` generator, run by real `actionforge worker` processes against a real vLLM
server (CPU build, tiny model) through the `openai` backend, driven over real HTTP: every style
yields samples that pass the format verifier, tokens are counted per job, the semantic judge
runs, and a vLLM server that is down or dies mid-job fails the job with a clear reason while the
samples already accepted stay; a job on two servers uses both, finishes on one when the other
dies, and the next job uses the one that came back."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import TRAVEL_CATALOG, Worker
from jobs_over_http import read_job, submit_job, upload_catalog, wait_for_job_over_http
from llm_fixtures import VllmServer, free_port, start_vllm_server
from served_api import Api
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import SampleRecord
from service.pipeline.spec import JobSpec
from service.settings import Settings
from unified.catalogs import load_catalog
from unified.model import QueryStyle, Sample
from verifiers.format import FormatVerifier

pytestmark = [pytest.mark.slow, pytest.mark.llm]

Sessions = sessionmaker[Session]
StartWorkers = Callable[..., list[Worker]]
ServeApi = Callable[[Settings], Api]
EVERY_STYLE = {style: 1.0 for style in QueryStyle}
CREATED = "2026-11-25T12:00:00+00:00"


def _options(model_dir: Path, base_url: str | list[str], **more: Any) -> dict[str, Any]:
    return {
        "backend": "openai",
        "model": str(model_dir),
        "base_url": base_url,
        "max_tokens": 600,
        "created": CREATED,
        **more,
    }


def _setup(
    tmp_path: Path,
    database_url: str,
    broker_url: str,
    start_workers: StartWorkers,
    serve_api: ServeApi,
) -> tuple[Api, list[Worker], str]:
    settings = Settings(
        data_dir=tmp_path / "data", database_url=database_url, broker_url=broker_url
    )
    workers = start_workers(settings, count=1, concurrency=1)
    api = serve_api(settings)
    uploaded = upload_catalog(api.http, TRAVEL_CATALOG.read_bytes())
    assert uploaded.status_code == 201, uploaded.text
    return api, workers, uploaded.json()["id"]


def _stored(sessions: Sessions, job_id: str) -> list[SampleRecord]:
    with sessions() as session:
        return list(
            session.scalars(
                select(SampleRecord)
                .where(SampleRecord.job_id == job_id)
                .order_by(SampleRecord.position)
            )
        )


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_llm_job_every_style_passes_format_and_counts_tokens(
    migrated_database_url: str,
    clean_redis: str,
    sessions: Sessions,
    start_workers: StartWorkers,
    serve_api: ServeApi,
    tmp_path: Path,
    tiny_model_dir: Path,
    vllm_server: str,
) -> None:
    api, workers, catalog_id = _setup(
        tmp_path, migrated_database_url, clean_redis, start_workers, serve_api
    )
    judge = {"backend": "openai", "model": str(tiny_model_dir), "base_url": vllm_server}
    spec = JobSpec(
        n=24,
        seed=3,
        batch_size=12,
        styles=EVERY_STYLE,
        generator="llm",
        generator_options=_options(tiny_model_dir, vllm_server, augment=["tool_order"]),
        # A random model is no judge to trust: calibration is off for this plumbing test.
        verify=["format", {"semantic": {"judge": judge, "min_accuracy": 0}}],
    )
    job_id = submit_job(api.http, catalog_id, spec)
    job = wait_for_job_over_http(api.http, job_id, *workers)
    assert (job["status"], job["error"]) == ("succeeded", None)
    # The failed generations' stage goes first, added by the service for the llm generator.
    assert job["spec"]["verify"] == ["generation", "format", "semantic"]
    assert [step["step"] for step in job["counts"]["funnel"]] == [
        "generated",
        "generation",
        "format",
        "semantic",
        "accepted",
    ]
    usage = job["counts"]["generation"]
    # Every original prompt is sent, or refused before it is sent as too long for the tiny
    # model's context even after trimming (its tokenizer spends about a token per character).
    not_sent = usage["failures"].get("prompt_too_long", 0)
    assert usage["requests"] + not_sent >= 24 // 2 and usage["completion_tokens"] > 0
    assert job["counts"]["by_reason"].get("prompt_too_long", 0) == not_sent
    assert usage["completion_tokens_per_s"] > 0

    rows = _stored(sessions, job_id)
    samples = [Sample.model_validate(row.data) for row in rows]
    # Half of each batch are originals; tool_order children only where a parent has tools to
    # reorder, so a batch can come back shorter than its size, never longer.
    assert sum(not s.meta.parent_id for s in samples) == 12
    assert len(rows) <= 24 and job["counts"]["generated"] == len(rows)
    catalog_tools = load_catalog(TRAVEL_CATALOG).tools
    verifier = FormatVerifier()
    styles_seen = set()
    for row, sample in zip(rows, samples, strict=True):
        failed = sample.meta.extra.get("generation_error")
        if failed:
            assert (row.status, row.stage) == ("rejected", "generation")
            continue
        # Structured outputs hold even a random model to the tools' schemas.
        assert verifier.verify(sample, sample.tools or catalog_tools).accepted, sample.id
        if row.stage == "generation":  # a random model's response breaks its constraints
            assert (row.reason, sample.meta.style) == ("constraint_violated", "instruction")
        else:
            assert row.stage in {"semantic", "format"} or row.status == "accepted"
        styles_seen.add(sample.meta.style)
    # Prompts too long for the tiny model's context fail before they are sent, and a random
    # model's conversation leaves its blueprint; of the rest, three in four generate cleanly.
    errors = [s.meta.extra.get("generation_error") for s in samples]
    fitted = [error for error in errors if error != "prompt_too_long"]
    assert (
        sum(error in (None, "blueprint_not_followed") for error in fitted) >= len(fitted) * 3 // 4
    )
    assert errors.count(None) >= 2
    # Every style is drawn (a prompt too long for the tiny model's 2,048 tokens fails its
    # sample at the generation stage: that is the point of the stage).
    assert len({s.meta.style for s in samples}) >= 4
    assert styles_seen
    children = [s for s in samples if s.meta.parent_id]
    reorderable = [
        s
        for s in samples
        if not s.meta.parent_id and not s.meta.extra.get("generation_error") and len(s.tools) > 1
    ]
    assert children or not reorderable
    assert all(s.meta.transformation == "tool_order" for s in children)
    assert {s.meta.parent_id for s in children} <= {s.id for s in samples}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_llm_job_with_a_server_that_is_down_fails_with_the_url(
    migrated_database_url: str,
    sessions: Sessions,
    start_workers: StartWorkers,
    serve_api: ServeApi,
    tmp_path: Path,
    tiny_model_dir: Path,
) -> None:
    api, workers, catalog_id = _setup(
        tmp_path, migrated_database_url, "embedded", start_workers, serve_api
    )
    nowhere = f"http://127.0.0.1:{free_port()}/v1"
    spec = JobSpec(
        n=4,
        generator="llm",
        generator_options=_options(tiny_model_dir, nowhere, max_retries=1, timeout_s=3),
    )
    started = time.monotonic()
    job_id = submit_job(api.http, catalog_id, spec)
    job = wait_for_job_over_http(api.http, job_id, *workers)
    assert job["status"] == "failed"
    assert nowhere in job["error"]
    assert time.monotonic() - started < 120


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_llm_job_whose_server_dies_mid_job_fails_and_keeps_what_was_accepted(
    migrated_database_url: str,
    clean_redis: str,
    sessions: Sessions,
    start_workers: StartWorkers,
    serve_api: ServeApi,
    tmp_path: Path,
    tiny_model_dir: Path,
    fresh_vllm_server: VllmServer,
) -> None:
    api, workers, catalog_id = _setup(
        tmp_path, migrated_database_url, clean_redis, start_workers, serve_api
    )
    # Far more batches than run before the kill (the server makes ~2,000 tokens/s), so the job
    # cannot end before it.
    spec = JobSpec(
        n=1200,
        seed=5,
        batch_size=6,
        # Format only: the random model's answers rarely pass the meaning stages, and this test
        # needs samples accepted before the kill.
        verify=["format"],
        generator="llm",
        generator_options=_options(
            tiny_model_dir, fresh_vllm_server.base_url, max_retries=1, timeout_s=5
        ),
    )
    job_id = submit_job(api.http, catalog_id, spec)
    deadline = time.monotonic() + 300
    while read_job(api.http, job_id)["counts"]["accepted"] == 0:
        assert time.monotonic() < deadline, "no batch was accepted before the deadline"
        time.sleep(0.2)
    fresh_vllm_server.kill()
    job = wait_for_job_over_http(api.http, job_id, *workers)
    assert job["status"] == "failed"
    assert fresh_vllm_server.base_url in job["error"]
    kept = [row for row in _stored(sessions, job_id) if row.status == "accepted"]
    assert kept and job["counts"]["accepted"] == len(kept)
    exported = api.http.get(f"/v1/jobs/{job_id}/export", params={"format": "unified"})
    assert exported.status_code == 200
    assert len(exported.text.splitlines()) == len(kept)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_llm_job_on_two_servers_uses_both_and_finishes_when_one_dies_which_is_used_once_back(
    migrated_database_url: str,
    clean_redis: str,
    start_workers: StartWorkers,
    serve_api: ServeApi,
    tmp_path: Path,
    tiny_model_dir: Path,
    vllm_server: str,
    fresh_vllm_server: VllmServer,
) -> None:
    api, workers, catalog_id = _setup(
        tmp_path, migrated_database_url, clean_redis, start_workers, serve_api
    )
    dying = fresh_vllm_server
    servers = [dying.base_url, vllm_server]

    def spec(n: int) -> JobSpec:
        options = _options(tiny_model_dir, servers, max_retries=2, timeout_s=60)
        return JobSpec(n=n, seed=9, batch_size=8, verify=["format"], generator="llm",
                       generator_options=options)  # fmt: skip

    # Far more batches than run before the kill, so the job cannot end before it.
    job_id = submit_job(api.http, catalog_id, spec(240))
    deadline = time.monotonic() + 300
    while read_job(api.http, job_id)["counts"]["accepted"] == 0:
        assert time.monotonic() < deadline, "no batch was accepted before the deadline"
        time.sleep(0.2)
    dying.kill()
    job = wait_for_job_over_http(api.http, job_id, *workers, seconds=900)
    assert (job["status"], job["error"]) == ("succeeded", None)
    answered = job["counts"]["generation"]["servers"]
    # Both served the job (the dead one before it died); the survivor took the rest.
    assert set(answered) == set(servers), answered
    assert answered[vllm_server]["requests"] > answered[dying.base_url]["requests"] > 0
    assert answered[vllm_server]["completion_tokens_per_s"] > 0
    total = job["counts"]["generation"]["requests"]
    assert sum(server["requests"] for server in answered.values()) == total

    # Back on its port, the worker's health check lets it in again: the next job uses it.
    back = start_vllm_server(tiny_model_dir, tmp_path / "back.log", port=dying.port)
    try:
        time.sleep(12)  # the health check's longest interval
        job = wait_for_job_over_http(api.http, submit_job(api.http, catalog_id, spec(64)), *workers)
        assert job["status"] == "succeeded"
        answered = job["counts"]["generation"]["servers"]
        assert answered.get(dying.base_url, {}).get("requests", 0) > 0, answered
    finally:
        back.stop()
