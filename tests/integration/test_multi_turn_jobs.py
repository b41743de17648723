"""Multi-turn jobs (the template generator's `multi_turn` style) end to end, over the REST API:
on the fleet (Redis + PostgreSQL, two real `actionforge worker` processes) and on the embedded
default (SQLite database and queue, the worker process `actionforge serve` starts). Every
accepted sample is a conversation, stored, counted and exported with all of its turns; the
workers hand the generator the catalog's mock API, so follow-ups take values out of results.

The jobs run the default stages, execution and dedup. Execution plays each conversation against
one state of the mock API and keeps the results it made; the generator drafted the conversation
against such a state too, so those are the results it recorded (no `value_not_in_results`).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import ROOT, Worker
from jobs_over_http import (
    assert_exports_hold_every_accepted_sample,
    export,
    submit_job,
    upload_catalog,
    wait_for_job_over_http,
)
from served_api import Api
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from test_job_workers import assert_every_sample_accounted_for

from generators.base import GenerationRequest
from generators.template.generator import TemplateGenerator
from generators.wrong_answers import leaves
from service.pipeline.spec import JobSpec
from service.pipeline.tool_api import MockToolApi
from service.settings import Settings
from service.worker import start_embedded_workers, stop_workers
from unified.catalogs import load_catalog
from unified.formats import FORMATS
from unified.model import QueryStyle, Sample
from verifiers.stages import DEDUP_STAGE, DEFAULT_STAGES, EXECUTION_STAGE

Sessions = sessionmaker[Session]
StartWorkers = Callable[..., list[Worker]]
ServeApi = Callable[[Settings], Api]

PETSTORE = ROOT / "tests" / "data" / "openapi" / "oai-v3.0-petstore-expanded.yaml"
"""A catalog whose tools feed each other (`addPet` makes the id `deletePet` takes)."""
STAGES = [*DEFAULT_STAGES, EXECUTION_STAGE, DEDUP_STAGE]
MIN_ACCEPTED_SHARE = 0.9
"""Of the conversations a job makes, the share accepted at least (dedup may drop a few)."""


def multi_turn_spec(n: int, seed: int) -> JobSpec:
    return JobSpec(
        n=n,
        generator="template",
        styles={QueryStyle.multi_turn: 1.0},
        seed=seed,
        batch_size=25,
        verify=STAGES,
    )


def run_multi_turn_job(api: Api, spec: JobSpec, *workers: Worker) -> dict[str, Any]:
    uploaded = upload_catalog(api.http, PETSTORE.read_bytes(), PETSTORE.name)
    assert uploaded.status_code == 201, uploaded.text
    job_id = submit_job(api.http, uploaded.json()["id"], spec)
    return wait_for_job_over_http(api.http, job_id, *workers)


def calls_by_turn(sample: Sample) -> list[list[tuple[str, Any]]]:
    return [
        [(call.name, call.arguments) for step in turn.steps for call in step.tool_calls]
        for turn in sample.conversation()
    ]


def read_export(api: Api, job_id: str, fmt: str) -> list[Sample]:
    body = export(api.http, job_id, fmt)
    return list(FORMATS.get(fmt).read(io.BytesIO(body), f"{job_id}-{fmt}.jsonl"))


def scalars(value: Any) -> list[Any]:
    return [scalar for _, scalar in leaves(value)]


def rejection_reasons(sessions: Sessions, job_id: str) -> dict[tuple[str, str], int]:
    with sessions() as session:
        rows = session.execute(
            text(
                "SELECT stage, reason, count(*) FROM samples "
                "WHERE job_id = :job AND status = 'rejected' GROUP BY stage, reason"
            ),
            {"job": job_id},
        ).all()
    return {(stage, reason): count for stage, reason, count in rows}


def drafted_again(accepted: list[Sample]) -> dict[tuple[int, int], Sample]:
    """The conversations as the generator drafted them, before any stage ran, by (batch seed,
    index in the batch): sample i of a batch depends only on the catalog, seed, styles and i."""
    tools = load_catalog(PETSTORE).tools
    generator = TemplateGenerator(tool_api=MockToolApi)
    size: dict[int, int] = {}
    for sample in accepted:
        seed, index = sample.meta.seed, sample.meta.extra["index"]
        size[seed] = max(size.get(seed, 0), index + 1)
    drafted: dict[tuple[int, int], Sample] = {}
    for seed, n in size.items():
        request = GenerationRequest(n=n, seed=seed, styles={QueryStyle.multi_turn: 1.0})
        for index, sample in enumerate(generator.generate(tools, request)):
            drafted[(seed, index)] = sample
    return drafted


def recorded_results(sample: Sample) -> list[list[Any]]:
    return [[r for step in turn.steps for r in step.results] for turn in sample.conversation()]


def assert_stored_results_are_the_drafted_ones(accepted: list[Sample]) -> None:
    """Execution replaced each call's result with the one it made: for every turn the
    generator recorded a result (all but the last), that is the result it recorded."""
    drafted = drafted_again(accepted)
    for sample in accepted:
        before = drafted[(sample.meta.seed, sample.meta.extra["index"])]
        assert calls_by_turn(before) == calls_by_turn(sample)
        recorded = recorded_results(before)
        assert recorded[-1] == [] and all(recorded[:-1])
        assert recorded_results(sample)[:-1] == recorded[:-1]
        assert len(recorded_results(sample)[-1]) == 1  # execution made the last turn's call


def assert_conversations_stored_counted_and_exported(
    api: Api, sessions: Sessions, job: dict[str, Any], n: int
) -> None:
    accepted = assert_every_sample_accounted_for(sessions, job, n)
    reasons = rejection_reasons(sessions, job["id"])
    share = len(accepted) / n
    print(f"multi-turn job {job['id']}: {len(accepted)}/{n} accepted ({share:.1%}); {reasons}")
    assert share >= MIN_ACCEPTED_SHARE, reasons
    # No `value_not_in_results` nor any other rejection of a stage but dedup.
    assert {stage for stage, _ in reasons} <= {DEDUP_STAGE}, reasons
    assert_stored_results_are_the_drafted_ones(accepted)
    assert all(s.meta.style is QueryStyle.multi_turn and s.is_multi_turn() for s in accepted)
    assert all(2 <= len(s.conversation()) <= 3 for s in accepted)
    chained = 0
    for sample in accepted:
        turns = sample.conversation()
        for number, follow_up in enumerate(sample.meta.extra["follow_ups"], 1):
            if follow_up["kind"] == "chain":
                chained += 1
                [(_, arguments)] = calls_by_turn(sample)[number]
                earlier = [r for step in turns[number - 1].steps for r in step.results]
                assert arguments[follow_up["argument"]] in scalars(earlier)
    assert chained > 0, "the workers' generator drafted with the catalog's mock API"

    assert_exports_hold_every_accepted_sample(api.http, job["id"], accepted)
    assert read_export(api, job["id"], "unified") == accepted  # every turn, results, answers
    chat = read_export(api, job["id"], "openai")
    assert [[t.query for t in s.conversation()] for s in chat] == [
        [t.query for t in s.conversation()] for s in accepted
    ]
    assert [calls_by_turn(s) for s in chat] == [calls_by_turn(s) for s in accepted]


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_multi_turn_job_on_the_fleet(
    migrated_database_url: str,
    clean_redis: str,
    sessions: Sessions,
    start_workers: StartWorkers,
    serve_api: ServeApi,
    tmp_path: Path,
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", database_url=migrated_database_url, broker_url=clean_redis
    )
    workers = start_workers(settings, count=2)
    api = serve_api(settings)
    job = run_multi_turn_job(api, multi_turn_spec(150, seed=7), *workers)
    assert_conversations_stored_counted_and_exported(api, sessions, job, 150)


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_multi_turn_job_on_the_embedded_default(
    migrated_database_url: str, sessions: Sessions, serve_api: ServeApi, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=migrated_database_url)
    assert settings.embedded_broker
    log = tmp_path / "embedded-workers.log"
    with log.open("ab") as sink:  # the worker processes `actionforge serve` starts
        processes = start_embedded_workers(settings, concurrency=2, output=sink)
    try:
        [worker] = [Worker(process, log) for process in processes]
        worker.wait_ready()
        api = serve_api(settings)
        job = run_multi_turn_job(api, multi_turn_spec(100, seed=3), worker)
        assert_conversations_stored_counted_and_exported(api, sessions, job, 100)
    finally:
        stop_workers(processes)
