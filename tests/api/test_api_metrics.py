"""`GET /metrics` as a Prometheus scraper meets it: keyed like every route but health when
AF_API_KEYS is set (a bearer token, as Prometheus sends one, or X-API-Key), public with
AF_METRICS_PUBLIC; the jobs by status read from the database at the scrape; and a database or a
broker that does not answer is a 0 in `actionforge_dependency_up`, never a failed scrape."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from api_support import Api, add_job, real_samples
from prometheus_client.parser import text_string_to_metric_families

from service.api import create_app
from service.api.server import BackgroundServer
from service.settings import Settings

KEY = "k3y-for-the-metrics-tests-012345"


def gauges(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of metric `name` in a scrape: sorted labels -> value."""
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def test_with_keys_set_a_scraper_sends_a_bearer_token_or_an_api_key(
    own_api: Callable[..., Api],
) -> None:
    api = own_api(api_keys=[KEY])
    missing = api.http.get("/metrics")
    assert missing.status_code == 401
    assert missing.json()["detail"] == (
        "missing an API key; send one of the keys set in AF_API_KEYS as 'Authorization: "
        "Bearer KEY' or in the X-API-Key header (or set AF_METRICS_PUBLIC=true to serve "
        "/metrics without one)"
    )
    for wrong in ({"Authorization": f"Bearer {KEY}x"}, {"X-API-Key": KEY[:-1]}):
        refused = api.http.get("/metrics", headers=wrong)
        assert refused.status_code == 401
        assert "does not know" in refused.json()["detail"]
    for right in ({"Authorization": f"Bearer {KEY}"}, {"X-API-Key": KEY}):
        answered = api.http.get("/metrics", headers=right)
        assert answered.status_code == 200, answered.text
        assert answered.headers["content-type"].startswith("text/plain")
        assert "actionforge_jobs" in answered.text


def test_metrics_public_serves_them_without_a_key_while_the_api_keeps_its_keys(
    own_api: Callable[..., Api],
) -> None:
    api = own_api(api_keys=[KEY], metrics_public=True)
    assert api.http.get("/metrics").status_code == 200
    assert api.http.get("/v1/jobs").status_code == 401


def test_jobs_by_status_are_counted_at_the_scrape(own_api: Callable[..., Api]) -> None:
    api = own_api()
    add_job(api.sessions, real_samples()[:2])
    add_job(api.sessions, real_samples()[:1])
    text = api.http.get("/metrics").text
    jobs = gauges(text, "actionforge_jobs")
    assert sum(jobs.values()) == 2
    assert set(jobs) == {
        (("status", status),)
        for status in ("queued", "running", "succeeded", "failed", "cancelled")
    }
    assert gauges(text, "actionforge_dependency_up") == {
        (("dependency", "database"),): 1,
        (("dependency", "broker"),): 1,
    }
    queues = gauges(text, "actionforge_queue_messages")
    assert {dict(labels)["queue"] for labels in queues} == {"generate", "verify", "train"}


def test_without_a_metrics_folder_the_api_serves_what_its_own_process_counted(
    own_api: Callable[..., Api],
) -> None:
    """Without a folder (a fleet's API, or this test process), a scrape reads this process's
    registry: here the rows the API's own exports wrote."""
    api = own_api()
    job_id = add_job(api.sessions, real_samples()[:3])
    labels = (("format", "sharegpt"),)
    before = gauges(api.http.get("/metrics").text, "actionforge_export_rows_total").get(labels, 0)
    exported = api.http.get(f"/v1/jobs/{job_id}/export", params={"format": "sharegpt"})
    assert exported.status_code == 200
    assert len(exported.content.splitlines()) == 3
    after = gauges(api.http.get("/metrics").text, "actionforge_export_rows_total")[labels]
    assert after - before == 3


def test_a_database_or_broker_that_does_not_answer_is_a_zero_not_a_failed_scrape(
    tmp_path: Path,
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url="postgresql://postgres@127.0.0.1:5432/af_no_such_database",
        broker_url="redis://127.0.0.1:1/0",
    )
    with BackgroundServer(create_app(settings)) as server:
        response = httpx.get(f"{server.url}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    assert gauges(response.text, "actionforge_dependency_up") == {
        (("dependency", "database"),): 0,
        (("dependency", "broker"),): 0,
    }
    assert gauges(response.text, "actionforge_jobs") == {}
    assert gauges(response.text, "actionforge_queue_messages") == {}
