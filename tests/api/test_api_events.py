"""`GET /v1/jobs/{id}/events` over real HTTP: the job's counts as they change, then its final
state; the same key check and 404 as the other job routes; streams end when the server stops;
and the CLI client's `wait`, which follows the stream (and polls where there is none)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from api_support import ACCEPTED, Api, Outcome, add_job, real_samples
from httpx_sse import ServerSentEvent, connect_sse
from sqlalchemy import update

from service.api import create_app
from service.api.routes.events import job_events
from service.api.server import BackgroundServer
from service.cli.client import ActionForgeClient
from service.db.models import JobRecord, JobStatus, SampleRecord, SampleStatus, VerdictRecord
from service.pipeline.counts import refresh_counts
from service.settings import Settings

KEY = "k3y-for-the-events-tests-01234567"
UNVERIFIED: Outcome = (SampleStatus.generated, None, None)
REJECTED: Outcome = (SampleStatus.rejected, "format", "unknown_tool")


def running_job(api: Api) -> str:
    """A running job of 4 samples: one accepted, three not verified yet; counts stored."""
    job_id = add_job(
        api.sessions,
        real_samples()[:4],
        [ACCEPTED, UNVERIFIED, UNVERIFIED, UNVERIFIED],
        status=JobStatus.running,
    )
    with api.sessions() as session, session.begin():
        session.execute(
            update(JobRecord).where(JobRecord.id == job_id).values(started_at=JobRecord.created_at)
        )
        refresh_counts(session, job_id)
    return job_id


def judge(api: Api, job_id: str, position: int, outcome: Outcome) -> None:
    """Store a sample's outcome and the job's fresh counts, as a verify task does."""
    status, stage, reason = outcome
    assert stage is not None
    sample_id = f"{job_id}-{position:07d}"
    with api.sessions() as session, session.begin():
        session.execute(
            update(SampleRecord)
            .where(SampleRecord.id == sample_id)
            .values(status=status, stage=stage, reason=reason)
        )
        accepted = status == SampleStatus.accepted
        session.add(
            VerdictRecord(sample_id=sample_id, stage=stage, accepted=accepted, reason=reason)
        )
        session.flush()
        refresh_counts(session, job_id)


def finish(api: Api, job_id: str, status: JobStatus = JobStatus.succeeded) -> None:
    with api.sessions() as session, session.begin():
        session.execute(
            update(JobRecord)
            .where(JobRecord.id == job_id)
            .values(status=status, finished_at=JobRecord.updated_at)
        )


def test_the_stream_sends_the_counts_as_they_change_then_the_final_state(api: Api) -> None:
    job_id = running_job(api)
    with connect_sse(api.http, "GET", f"/v1/jobs/{job_id}/events") as source:
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith("text/event-stream")
        assert source.response.headers["cache-control"] == "no-cache"
        events = source.iter_sse()

        first = next(events)
        assert first.event == "progress"
        job = first.json()
        assert (job["id"], job["status"]) == (job_id, "running")
        assert job["counts"] == api.http.get(f"/v1/jobs/{job_id}").json()["counts"]
        assert (job["counts"]["accepted"], job["counts"]["rejected"]) == (1, 0)
        assert job["progress"] == 0.25
        assert job["samples_per_s"] is None or job["samples_per_s"] > 0
        assert job["tokens_per_s"] is None  # the template generator uses no LLM

        judge(api, job_id, 1, REJECTED)
        second = next(events)
        assert second.event == "progress"
        counts = second.json()["counts"]
        assert (counts["accepted"], counts["rejected"]) == (1, 1)
        assert counts["by_stage"]["format"] == {"passed": 1, "rejected": 1}
        assert counts["by_reason"] == {"unknown_tool": 1}
        assert second.json()["progress"] == 0.5

        judge(api, job_id, 2, ACCEPTED)
        judge(api, job_id, 3, ACCEPTED)
        finish(api, job_id)
        rest = list(events)  # the stream ends after the final state
    assert rest, "the final state came"
    final = rest[-1]
    assert final.event == "finished"
    assert [event.event for event in rest[:-1]] == ["progress"] * (len(rest) - 1)
    assert final.json() | {"samples_per_s": None} == (
        api.http.get(f"/v1/jobs/{job_id}").json()
        | {"progress": 1.0, "samples_per_s": None, "tokens_per_s": None}
    )
    assert final.json()["counts"]["accepted"] == 3


def test_a_finished_job_sends_its_final_state_at_once(api: Api) -> None:
    job_id = add_job(api.sessions, real_samples()[:2], status=JobStatus.cancelled)
    with connect_sse(api.http, "GET", f"/v1/jobs/{job_id}/events") as source:
        events = list(source.iter_sse())
    assert [event.event for event in events] == ["finished"]
    assert events[0].json()["status"] == "cancelled"


def test_an_unknown_job_is_the_404_of_the_other_job_routes(api: Api) -> None:
    events = api.http.get("/v1/jobs/no-such-job/events")
    job = api.http.get("/v1/jobs/no-such-job")
    assert events.status_code == job.status_code == 404
    assert events.headers["content-type"] == "application/json"
    assert events.json() == job.json()
    assert "job 'no-such-job' does not exist" in events.json()["detail"]


def test_the_stream_needs_a_known_key_or_the_dashboards_session(
    own_api: Callable[..., Api],
) -> None:
    from service.api.deps import SESSION_COOKIE, session_token

    api = own_api(api_keys=[KEY])
    job_id = add_job(api.sessions, real_samples()[:1])
    url = f"/v1/jobs/{job_id}/events"
    assert api.http.get(url).status_code == 401
    assert api.http.get(url, headers={"X-API-Key": KEY + "x"}).status_code == 401
    session = {"Cookie": f"{SESSION_COOKIE}={session_token(KEY)}"}
    assert api.http.get(url, headers={"Cookie": f"{SESSION_COOKIE}=forged"}).status_code == 401
    for headers in ({"X-API-Key": KEY}, session):
        with connect_sse(api.http, "GET", url, headers=headers) as source:
            assert [event.event for event in source.iter_sse()] == ["finished"]
    # The session cookie opens reads only: a write still needs the header.
    assert api.http.post(f"/v1/jobs/{job_id}/cancel", headers=session).status_code == 401


def test_open_streams_end_when_the_server_stops(tmp_path: Any) -> None:
    """uvicorn's graceful shutdown waits for every open response: a stream of a job that
    never finishes must end on its own once the server is told to stop."""
    from api_support import running_api

    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'af.db'}")
    with running_api(settings) as api:
        job_id = running_job(api)
    server = BackgroundServer(create_app(settings))
    server.start()
    received: list[ServerSentEvent] = []
    # A stream left open would time out reading (no change, no ping within 5 s).
    with httpx.Client(base_url=server.url, timeout=5) as http:
        with connect_sse(http, "GET", f"/v1/jobs/{job_id}/events") as source:
            events = source.iter_sse()
            received.append(next(events))
            stopper = threading.Thread(target=server.stop)
            started = time.monotonic()
            stopper.start()
            received.extend(events)
        stopper.join(30)
        assert not stopper.is_alive(), "the server did not stop with a stream open"
    assert time.monotonic() - started < 10
    assert [event.event for event in received] == ["progress"]


def test_wait_follows_the_stream_until_the_final_state(api: Api) -> None:
    job_id = running_job(api)
    seen: list[tuple[str, int]] = []

    def on_update(job: Any) -> None:
        seen.append((job.status, job.counts.accepted + job.counts.rejected))
        if len(seen) == 1:  # the worker goes on while the client watches
            judge(api, job_id, 1, REJECTED)
        elif len(seen) == 2:
            for position in (2, 3):
                judge(api, job_id, position, ACCEPTED)
            finish(api, job_id)

    with ActionForgeClient(api.url) as client:
        final = client.wait(job_id, on_update, interval=60)  # polling would take minutes
    assert final.status == JobStatus.succeeded
    assert (final.counts.accepted, final.counts.rejected) == (3, 1)
    assert seen[:2] == [("running", 1), ("running", 2)]
    assert seen[-1] == ("succeeded", 4)


def test_wait_polls_a_server_without_the_stream(tmp_path: Any) -> None:
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'af.db'}")
    from api_support import running_api

    with running_api(settings) as api:
        job_id = running_job(api)
        finish(api, job_id)
    older = create_app(settings)  # as a server from before the route was
    older.router.routes = [
        route for route in older.router.routes if getattr(route, "endpoint", None) is not job_events
    ]
    with BackgroundServer(older) as server, ActionForgeClient(server.url) as client:
        assert httpx.get(f"{server.url}/v1/jobs/{job_id}/events").status_code == 404
        seen: list[str] = []
        final = client.wait(job_id, lambda job: seen.append(job.status), interval=0.05)
    assert final.status == JobStatus.succeeded
    assert seen == ["succeeded"]


@pytest.mark.parametrize("status", [401, 404])
def test_wait_reports_the_apis_refusal_instead_of_polling(
    own_api: Callable[..., Api], status: int
) -> None:
    from service.cli.client import ApiError

    api = own_api(api_keys=[KEY])
    job_id = add_job(api.sessions, real_samples()[:1]) if status == 401 else "no-such-job"
    key = KEY if status == 404 else None
    with ActionForgeClient(api.url, api_key=key) as client, pytest.raises(ApiError) as refused:
        client.wait(job_id, interval=60)
    assert refused.value.status_code == status
    assert (
        refused.value.detail
        == api.http.get(
            f"/v1/jobs/{job_id}", headers={"X-API-Key": KEY} if status == 404 else {}
        ).json()["detail"]
    )
