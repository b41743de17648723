"""The API while the broker is away: jobs are stored and answered 202, a retry with the same
Idempotency-Key gets the first answer and stores nothing, the sweep sends the stored job once
the broker is back, and health says what is down (503) and how the fleet does."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from datetime import timedelta

import redis
from api_support import TRAVEL_CATALOG, Api
from sqlalchemy import func, select, update

from service.db.models import (
    BatchRecord,
    CatalogRecord,
    IdempotentRequestRecord,
    JobRecord,
    utcnow,
)
from service.pipeline.leases import record_worker_seen
from service.queue.app import celery_for
from service.queue.sweep import SweepResult, sweep_once


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def broker_down_api(own_api: Callable[..., Api]) -> Api:
    return own_api(broker_url=f"redis://127.0.0.1:{closed_port()}/0")


def upload(api: Api, key: str | None = None, name: str = "travel_api.yaml") -> dict[str, object]:
    headers = {"content-type": "application/yaml"}
    if key is not None:
        headers["Idempotency-Key"] = key
    response = api.http.post(
        f"/v1/catalogs?name={name}", content=TRAVEL_CATALOG.read_bytes(), headers=headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def count(api: Api, table: type) -> int:
    with api.sessions() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def test_a_job_submitted_while_the_broker_is_down_is_stored_and_sent_by_the_sweep(
    own_api: Callable[..., Api], redis_url: str
) -> None:
    api = broker_down_api(own_api)
    catalog_id = upload(api)["id"]
    started = time.monotonic()
    response = api.http.post(
        "/v1/jobs",
        json={"catalog_id": catalog_id, "n": 30, "batch_size": 10},
        headers={"Idempotency-Key": "job-1"},
    )
    assert time.monotonic() - started < 5
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "queued"
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"

    # The broker comes back (here: another URL) and a worker's sweep sends the batches.
    back = api.settings.model_copy(update={"broker_url": redis_url, "sweep_interval_seconds": 0.01})
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    with api.sessions() as session:
        idle_since = utcnow() - timedelta(seconds=back.batch_lease_seconds + 1)
        session.execute(update(BatchRecord).values(updated_at=idle_since))
        session.commit()
    assert sweep_once(celery_for(back), api.sessions, "worker") == SweepResult(sent=3)
    assert client.llen("generate") == 3
    client.flushdb()
    client.close()


def test_a_retry_with_the_same_idempotency_key_gets_the_first_job(
    own_api: Callable[..., Api],
) -> None:
    api = broker_down_api(own_api)
    catalog_id = upload(api)["id"]
    spec = {"catalog_id": catalog_id, "n": 20, "seed": 3}
    first = api.http.post("/v1/jobs", json=spec, headers={"Idempotency-Key": "same"})
    again = api.http.post("/v1/jobs", json=spec, headers={"Idempotency-Key": "same"})
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert count(api, JobRecord) == 1

    other = api.http.post("/v1/jobs", json={**spec, "n": 21}, headers={"Idempotency-Key": "same"})
    assert other.status_code == 422
    assert other.json()["detail"] == (
        "header Idempotency-Key: the key 'same' was already used with a different request; "
        "send a new key for a new request, or the same request to get its first answer"
    )
    assert count(api, JobRecord) == 1
    # Without a key, or with a new one, a request creates a new job.
    assert api.http.post("/v1/jobs", json=spec).status_code == 202
    assert (
        api.http.post("/v1/jobs", json=spec, headers={"Idempotency-Key": "new"}).json()["id"]
        != first.json()["id"]
    )
    assert count(api, JobRecord) == 3


def test_a_catalog_upload_retried_with_its_key_is_stored_once(
    own_api: Callable[..., Api],
) -> None:
    api = own_api()
    first = upload(api, key="catalog-1")
    assert upload(api, key="catalog-1") == first
    assert count(api, CatalogRecord) == 1
    refused = api.http.post(
        "/v1/catalogs?name=other.yaml",
        content=TRAVEL_CATALOG.read_bytes(),
        headers={"content-type": "application/yaml", "Idempotency-Key": "catalog-1"},
    )
    assert refused.status_code == 422
    assert "already used with a different request" in refused.json()["detail"]
    assert count(api, CatalogRecord) == 1


def age_answers(api: Api, hours: float) -> None:
    with api.sessions() as session:
        session.execute(
            update(IdempotentRequestRecord).values(created_at=utcnow() - timedelta(hours=hours))
        )
        session.commit()


def test_a_key_past_its_time_creates_anew_and_the_sweep_forgets_old_answers(
    own_api: Callable[..., Api], redis_url: str
) -> None:
    api = broker_down_api(own_api)
    catalog_id = upload(api, key="catalog-old")["id"]
    spec = {"catalog_id": catalog_id, "n": 20, "seed": 3}
    first = api.http.post("/v1/jobs", json=spec, headers={"Idempotency-Key": "old"}).json()
    age_answers(api, hours=api.settings.idempotency_key_hours - 0.1)
    kept = api.http.post("/v1/jobs", json=spec, headers={"Idempotency-Key": "old"})
    assert kept.json()["id"] == first["id"]

    age_answers(api, hours=api.settings.idempotency_key_hours + 0.1)
    # Past its time a key is new again, also with another request (no 422).
    anew = api.http.post("/v1/jobs", json={**spec, "n": 21}, headers={"Idempotency-Key": "old"})
    assert anew.status_code == 202, anew.text
    assert anew.json()["id"] != first["id"]
    assert upload(api, key="catalog-old")["id"] != catalog_id
    assert count(api, JobRecord) == 2
    assert count(api, CatalogRecord) == 2
    assert count(api, IdempotentRequestRecord) == 2

    age_answers(api, hours=api.settings.idempotency_key_hours + 0.1)
    back = api.settings.model_copy(update={"broker_url": redis_url})
    swept = sweep_once(celery_for(back), api.sessions, "worker")
    assert swept is not None and swept.forgotten_answers == 2
    assert count(api, IdempotentRequestRecord) == 0
    redis.Redis.from_url(redis_url).flushdb()


def test_an_unusable_idempotency_key_is_a_422(own_api: Callable[..., Api]) -> None:
    api = own_api()
    response = api.http.post(
        "/v1/jobs", json={"catalog_id": "x", "n": 1}, headers={"Idempotency-Key": "a" * 256}
    )
    assert response.status_code == 422


def test_health_is_a_503_naming_the_broker_when_it_does_not_answer(
    own_api: Callable[..., Api],
) -> None:
    api = broker_down_api(own_api)
    started = time.monotonic()
    response = api.http.get("/v1/health")
    assert time.monotonic() - started < 1
    assert response.status_code == 503
    assert response.json()["detail"] == (
        "the broker does not answer (OperationalError); check AF_BROKER_URL and that the "
        "broker is running (submitted jobs are kept and sent once it is back)"
    )


def test_health_reports_live_workers_and_stranded_batches(own_api: Callable[..., Api]) -> None:
    api = own_api()
    catalog_id = upload(api)["id"]
    api.http.post("/v1/jobs", json={"catalog_id": catalog_id, "n": 20, "batch_size": 10})
    with api.sessions() as session:
        record_worker_seen(session, "worker-1")
        idle_since = utcnow() - timedelta(seconds=api.settings.batch_lease_seconds + 1)
        session.execute(update(BatchRecord).values(updated_at=idle_since))
        session.commit()
    started = time.monotonic()
    health = api.http.get("/v1/health")
    assert time.monotonic() - started < 1
    assert health.status_code == 200
    assert health.json() | {"version": None} == {
        "status": "ok",
        "database": "sqlite",
        "broker": "embedded",
        "workers": 1,
        "waiting_messages": 2,
        "stranded_batches": 2,
        "version": None,
    }
