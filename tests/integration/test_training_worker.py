"""Continual training by real `actionforge worker` processes: with AF_TRAIN_ENABLED set, a job's
accepted samples trigger a model version on the train queue without anyone asking, and the
version is then listed over real HTTP with its metrics; a queued version whose message was lost
is trained once a worker starts."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import JOB_DONE_SECONDS, JOB_GENERATOR, Worker
from jobs_over_http import submit_job, upload_travel_catalog, wait_for_job_over_http
from served_api import Api
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from tiny_model import cached_tiny_model

from service.db.models import ModelVersionSampleRecord, SampleRecord
from service.pipeline.spec import JobSpec
from service.settings import Settings
from service.training.heldout import is_heldout
from service.training.versions import create_version

HELDOUT = 0.25
TRAIN_SETTINGS = {
    "AF_TRAIN_MIN_NEW_SAMPLES": "8",
    "AF_TRAIN_HELDOUT_FRACTION": str(HELDOUT),
    "AF_TRAIN_EVAL_SAMPLES": "3",
    "AF_TRAIN_EVAL_MAX_NEW_TOKENS": "8",
}
TRAIN_CONFIG = "lora_r: 4\nlora_alpha: 8\nmax_steps: 2\nbatch_size: 4\nmax_length: 4096\n"


def wait_for_versions(api: Api, catalog_id: str, worker: Worker) -> list[dict[str, Any]]:
    """Poll `GET /v1/models` until the catalog has a version and none is queued or training."""
    deadline = time.monotonic() + JOB_DONE_SECONDS
    versions: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        response = api.http.get("/v1/models", params={"catalog_id": catalog_id})
        assert response.status_code == 200, response.text
        versions = response.json()["data"]
        if versions and all(v["status"] in ("ready", "failed") for v in versions):
            return sorted(versions, key=lambda v: v["version"])
        time.sleep(0.5)
    pytest.fail(
        f"no finished model version after {JOB_DONE_SECONDS} s: {versions}\n{worker.tail()}"
    )


def training_settings(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, enabled: bool
) -> Settings:
    """Settings that train the tiny model, also set in the environment the workers inherit."""
    config = tmp_path / "train.yaml"
    config.write_text(TRAIN_CONFIG)
    for name, value in TRAIN_SETTINGS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AF_TRAIN_ENABLED", "true" if enabled else "false")
    monkeypatch.setenv("AF_TRAIN_BASE_MODEL", str(cached_tiny_model()))
    monkeypatch.setenv("AF_TRAIN_CONFIG", str(config))
    return Settings(data_dir=tmp_path / "data", database_url=database_url)


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_jobs_accepted_samples_train_a_version_automatically(
    migrated_database_url: str,
    sessions: sessionmaker[Session],
    start_workers: Callable[..., list[Worker]],
    serve_api: Callable[[Settings], Api],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = training_settings(migrated_database_url, tmp_path, monkeypatch, enabled=True)
    assert settings.embedded_broker and settings.train_enabled
    [worker] = start_workers(settings, queues="generate,verify,train", concurrency=2)
    api = serve_api(settings)
    catalog_id = upload_travel_catalog(api.http)

    job_id = submit_job(api.http, catalog_id, JobSpec(n=24, generator=JOB_GENERATOR, seed=3))
    job = wait_for_job_over_http(api.http, job_id, worker)
    assert job["status"] == "succeeded"
    versions = wait_for_versions(api, catalog_id, worker)

    assert [v["status"] for v in versions] == ["ready"] * len(versions), versions
    first = versions[0]
    assert (first["version"], first["parent_id"]) == (1, None)
    assert all(v["parent_id"] == p["id"] for p, v in itertools.pairwise(versions))
    assert first["new_samples"] >= 8
    assert first["metrics"]["train"]["steps"] == 2
    assert first["metrics"]["eval"]["overall"]["samples"] == first["heldout_samples"] > 0
    assert (Path(first["adapter_path"]) / "adapter_config.json").is_file()
    with sessions() as session:
        trained = session.execute(
            select(SampleRecord.id, SampleRecord.job_id, SampleRecord.status).join(
                ModelVersionSampleRecord, ModelVersionSampleRecord.sample_id == SampleRecord.id
            )
        ).all()
    assert len(trained) == sum(v["new_samples"] for v in versions)
    assert {(job, status) for _, job, status in trained} == {(job_id, "accepted")}
    assert not any(is_heldout(sample_id, HELDOUT) for sample_id, _, _ in trained)
    assert "actionforge.train" in worker.log.read_text()


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_starting_worker_trains_a_version_whose_message_was_lost(
    migrated_database_url: str,
    sessions: sessionmaker[Session],
    start_workers: Callable[..., list[Worker]],
    serve_api: Callable[[Settings], Api],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = training_settings(migrated_database_url, tmp_path, monkeypatch, enabled=False)
    [generator] = start_workers(settings, queues="generate,verify")
    api = serve_api(settings)
    catalog_id = upload_travel_catalog(api.http)
    job_id = submit_job(api.http, catalog_id, JobSpec(n=12, generator=JOB_GENERATOR, seed=4))
    assert wait_for_job_over_http(api.http, job_id, generator)["status"] == "succeeded"
    with sessions() as session:  # queued, but no train task was ever sent
        version = create_version(session, catalog_id, settings, force=True)
    assert api.http.get(f"/v1/models/{version.id}").json()["status"] == "queued"

    [trainer] = start_workers(settings, queues="train")

    [ready] = wait_for_versions(api, catalog_id, trainer)
    assert (ready["id"], ready["status"], ready["attempt"]) == (version.id, "ready", 1)
    assert "re-enqueued 1 unfinished training runs" in trainer.log.read_text()
