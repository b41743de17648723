"""/metrics on Redis + PostgreSQL with real `actionforge worker` processes, both ways a fleet
counts: a worker sharing the API's metrics folder is counted by the API's /metrics; a worker with
a machine of its own serves its pool's counts at AF_METRICS_PORT. The scrapes equal the jobs'
counts from the API; a worker starting on the folder removes the files of processes gone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from engine_helpers import TRAVEL_CATALOG, Worker
from jobs_over_http import upload_catalog, wait_for_job_over_http
from llm_fixtures import free_port
from scraped_metrics import Scrape, scrape, served, service_environment

from service.settings import Settings

pytestmark = pytest.mark.slow

StartWorkers = Callable[..., list[Worker]]
JOB = {"n": 40, "seed": 9, "batch_size": 10, "verify": ["query", "format", "dedup"]}


def run_job(http: httpx.Client, catalog_id: str, *workers: Worker) -> dict[str, Any]:
    submitted = http.post("/v1/jobs", json={"catalog_id": catalog_id, **JOB})
    assert submitted.status_code == 202, submitted.text
    job = wait_for_job_over_http(http, submitted.json()["id"], *workers)
    assert job["status"] == "succeeded"
    return job


def assert_counts_are(metrics: Scrape, counts: dict[str, Any]) -> None:
    assert metrics.total("actionforge_samples_generated_total") == counts["generated"]
    assert metrics.total("actionforge_samples_accepted_total") == counts["accepted"]
    rejected = {
        (entry["stage"], entry["reason"]): entry["samples"] for entry in counts["rejections"]
    }
    assert metrics.by("actionforge_samples_rejected_total", "stage", "reason") == rejected
    batches = JOB["n"] // JOB["batch_size"]
    assert metrics.by("actionforge_stage_duration_seconds_count", "stage")[("query",)] == batches


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_workers_count_through_the_shared_folder_and_their_own_port(
    migrated_database_url: str, clean_redis: str, start_workers: StartWorkers, tmp_path: Path
) -> None:
    folder = tmp_path / "metrics"
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=migrated_database_url,
        broker_url=clean_redis,
        metrics_dir=folder,
    )
    env = service_environment(
        data_dir=settings.data_dir,
        database_url=migrated_database_url,
        broker_url=clean_redis,
        metrics_dir=folder,
    )
    with (
        served(free_port(), env, tmp_path / "serve.log", tmp_path) as url,
        httpx.Client(base_url=url, timeout=60) as http,
    ):
        response = upload_catalog(http, TRAVEL_CATALOG.read_bytes())
        assert response.status_code == 201, response.text
        catalog_id = response.json()["id"]

        # A worker on the API's machine, sharing its folder: the API's scrape counts its pool.
        [sharing] = start_workers(settings, concurrency=2)
        first = run_job(http, catalog_id, sharing)
        on_the_api = scrape(f"{url}/metrics")
        assert_counts_are(on_the_api, first["counts"])
        assert on_the_api.by("actionforge_jobs", "status") == {("succeeded",): 1}
        queues = {labels["queue"] for labels, _ in on_the_api.samples["actionforge_queue_messages"]}
        assert queues == {"generate", "verify", "train"}
        sharing.stop()
        left_behind = sorted(folder.glob("*.db"))
        assert left_behind, "the stopped worker's pool wrote no metric files"

        # A worker with its own port and no folder (a machine of its own, as in compose).
        port = free_port()
        own = settings.model_copy(update={"metrics_dir": None, "metrics_port": port})
        [alone] = start_workers(own, concurrency=2)
        second = run_job(http, catalog_id, alone)
        assert second["counts"]["rejected"] > 0, "the second job repeats the first's samples"
        on_the_worker = scrape(f"http://127.0.0.1:{port}/metrics")
        assert_counts_are(on_the_worker, second["counts"])
        assert "actionforge_jobs" not in on_the_worker.names(), "the API reads the jobs, once"
        # Its counts are not in the API's folder; the stopped worker's still are.
        assert_counts_are(scrape(f"{url}/metrics"), first["counts"])

        # A worker starting on the folder removes the files of the processes that are gone.
        start_workers(settings, concurrency=1)
        assert not any(path.exists() for path in left_behind)
        assert scrape(f"{url}/metrics").total("actionforge_samples_generated_total") == 0
