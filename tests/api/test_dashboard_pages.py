"""The dashboard in a real headless Chromium against the API served over real HTTP, on jobs
stored in its database: what a page shows equals what the REST API answers; a rejected sample
shows its reason beside an accepted sample of its style; hostile sample text stays text; a
running job's page follows its event stream; with API keys, no page shows data before the key
is entered. Screenshots go to each test's tmp_path."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from api_support import ACCEPTED, Api, Outcome, add_job, real_samples
from playwright.sync_api import Page, expect
from sqlalchemy import func, select, update

from service.dashboard.job_pages import JOBS_PER_PAGE
from service.db.models import (
    JobRecord,
    JobStatus,
    ModelVersionRecord,
    SampleRecord,
    SampleStatus,
    VerdictRecord,
)
from service.pipeline.counts import refresh_counts
from trainer.evaluate import Counts, EvalReport

KEY = "k3y-for-the-dashboard-tests-0123"
UNKNOWN_TOOL: Outcome = (SampleStatus.rejected, "format", "unknown_tool")
MISSING: Outcome = (SampleStatus.rejected, "format", "missing_required_argument")
UNVERIFIED: Outcome = (SampleStatus.generated, None, None)
HOSTILE = (
    '<script>window.pwned = "script"</script><img src="x" onerror="window.pwned = \'img\'">'
    " & </dd></dl><b>bold?</b>"
)


def stored_job(api: Api, outcomes: list[Outcome], **changes: Any) -> str:
    """A job of real xlam samples (cycled) with `outcomes`, its counts stored."""
    base = real_samples()
    samples = [
        base[i % len(base)].model_copy(update={"id": f"s-{i}", **changes})
        for i in range(len(outcomes))
    ]
    job_id = add_job(api.sessions, samples, outcomes)
    with api.sessions() as session, session.begin():
        refresh_counts(session, job_id)
    return job_id


def shown_number(page: Page, selector: str) -> int:
    return int(page.locator(selector).inner_text().replace(",", "") or 0)


def test_the_job_page_shows_the_apis_funnel_and_rejections(
    sqlite_api: Api, page: Page, tmp_path: Path
) -> None:
    outcomes = [ACCEPTED, UNKNOWN_TOOL, ACCEPTED, MISSING, ACCEPTED, UNKNOWN_TOOL] * 5
    job_id = stored_job(sqlite_api, outcomes)
    counts = sqlite_api.http.get(f"/v1/jobs/{job_id}").json()["counts"]

    response = page.goto(f"{sqlite_api.url}/jobs/{job_id}")
    assert response is not None and response.status == 200
    page.screenshot(path=tmp_path / "job.png", full_page=True)
    steps = page.locator("table.funnel [data-funnel-step]")
    assert steps.evaluate_all("rows => rows.map(row => row.dataset.funnelStep)") == [
        step["step"] for step in counts["funnel"]
    ]
    for step in counts["funnel"]:
        row = f'[data-funnel-step="{step["step"]}"]'
        assert shown_number(page, f'{row} [data-field="step-samples"]') == step["samples"]
        assert shown_number(page, f'{row} [data-field="step-rejected"]') == step["rejected"]
    assert (counts["generated"], counts["accepted"]) == (30, 15)

    reasons = page.locator("table.rejections tbody tr")
    assert reasons.evaluate_all("rows => rows.map(row => row.dataset.reason)") == [
        entry["reason"] for entry in counts["rejections"]
    ]
    for entry in counts["rejections"]:
        row = f'table.rejections tr[data-reason="{entry["reason"]}"]'
        assert shown_number(page, f'{row} [data-field="samples"]') == entry["samples"]
    assert page.locator('[data-field="status"]').first.inner_text() == "succeeded"


def test_a_rejected_sample_opens_with_its_reason_beside_an_accepted_one_of_its_style(
    sqlite_api: Api, page: Page, tmp_path: Path
) -> None:
    outcomes = [ACCEPTED, UNKNOWN_TOOL, ACCEPTED, MISSING, ACCEPTED, UNKNOWN_TOOL] * 5
    job_id = stored_job(sqlite_api, outcomes)
    page.goto(f"{sqlite_api.url}/jobs/{job_id}")
    page.click('table.rejections tr[data-reason="missing_required_argument"] a')
    expect(page.locator('[data-field="samples-count"]')).to_have_text("5 samples")
    assert "reason=missing_required_argument" in page.url

    api_page = sqlite_api.http.get(
        f"/v1/jobs/{job_id}/samples",
        params={"status": "rejected", "reason": "missing_required_argument"},
    ).json()
    listed = page.locator("details.sample-row")
    assert listed.evaluate_all("rows => rows.map(row => row.dataset.sampleId)") == [
        item["id"] for item in api_page["data"]
    ]
    first = api_page["data"][0]
    row = listed.first
    row.locator("summary").click()
    rejected = row.locator(f'section.sample[data-sample-id="{first["id"]}"]')
    expect(rejected).to_be_visible()
    expect(rejected.locator('[data-field="reason"]')).to_have_text("missing_required_argument")
    expect(rejected.locator("table.verdicts tr.rejected")).to_contain_text(
        first["verdicts"][0]["detail"]
    )
    expect(rejected.locator('[data-field="query"]')).to_have_text(first["sample"]["query"])

    style = first["sample"]["meta"]["style"]
    accepted = sqlite_api.http.get(
        f"/v1/jobs/{job_id}/samples", params={"status": "accepted", "style": style, "limit": 1}
    ).json()["data"][0]
    counterpart = row.locator(f'section.sample-accepted[data-sample-id="{accepted["id"]}"]')
    expect(counterpart).to_be_visible()
    expect(counterpart.locator("h4")).to_contain_text(style)
    page.screenshot(path=tmp_path / "rejected-sample.png", full_page=True)

    page.select_option('select[name="style"]', style)
    page.click('form.filters button[type="submit"]')
    expected = sqlite_api.http.get(
        f"/v1/jobs/{job_id}/samples",
        params={"status": "rejected", "reason": "missing_required_argument", "style": style},
    ).json()["count"]
    expect(page.locator('[data-field="samples-count"]')).to_contain_text(f"{expected} sample")


def test_samples_come_a_page_at_a_time(sqlite_api: Api, page: Page) -> None:
    job_id = stored_job(sqlite_api, [UNKNOWN_TOOL] * 45)
    page.goto(f"{sqlite_api.url}/jobs/{job_id}")
    positions = "rows => rows.map(row => row.dataset.sampleId.split('-').pop())"
    assert page.locator("details.sample-row").evaluate_all(positions) == [
        f"{i:07d}" for i in range(20)
    ]
    page.click('a[rel="next"]')
    assert page.locator("details.sample-row").evaluate_all(positions) == [
        f"{i:07d}" for i in range(20, 40)
    ]
    page.click('a[rel="next"]')
    assert page.locator("details.sample-row").count() == 5
    assert page.locator('a[rel="next"]').count() == 0


def test_hostile_sample_text_is_shown_as_text(sqlite_api: Api, page: Page, tmp_path: Path) -> None:
    job_id = stored_job(sqlite_api, [UNKNOWN_TOOL, ACCEPTED] * 2, query=HOSTILE)
    with sqlite_api.sessions() as session, session.begin():
        session.execute(
            update(VerdictRecord)
            .where(VerdictRecord.sample_id.like(f"{job_id}-%"))
            .values(detail=HOSTILE)
        )
    page.goto(f"{sqlite_api.url}/jobs/{job_id}?show=all")
    for row in page.locator("details.sample-row").all():
        row.locator("summary").click()
    queries = page.locator('[data-field="query"]')
    assert queries.count() >= 4
    assert set(queries.all_inner_texts()) == {HOSTILE}
    expect(page.locator("table.verdicts td.detail").first).to_have_text(HOSTILE)
    assert page.evaluate("window.pwned") is None
    assert page.locator('img[src="x"], main b').count() == 0
    page.screenshot(path=tmp_path / "hostile.png", full_page=True)


def test_a_running_jobs_page_follows_its_event_stream(
    sqlite_api: Api, page: Page, tmp_path: Path
) -> None:
    outcomes = [ACCEPTED] + [UNVERIFIED] * 5
    job_id = stored_job(sqlite_api, outcomes)
    with sqlite_api.sessions() as session, session.begin():
        session.execute(
            update(JobRecord)
            .where(JobRecord.id == job_id)
            .values(status=JobStatus.running, started_at=JobRecord.created_at)
        )
    page.goto(f"{sqlite_api.url}/jobs/{job_id}")
    accepted = page.locator('[data-funnel-step="accepted"] [data-field="step-samples"]')
    expect(accepted).to_have_text("1")
    status = page.locator('h1 [data-field="status"]')
    expect(status).to_have_text("running")

    with sqlite_api.sessions() as session, session.begin():  # a worker verifies 3 more
        session.execute(
            update(SampleRecord)
            .where(SampleRecord.job_id == job_id, SampleRecord.position.in_([1, 2, 3]))
            .values(status=SampleStatus.accepted, stage="format")
        )
        for position in (1, 2, 3):
            session.add(
                VerdictRecord(sample_id=f"{job_id}-{position:07d}", stage="format", accepted=True)
            )
        session.flush()
        refresh_counts(session, job_id)
    expect(accepted).to_have_text("4")  # no reload: the stream's progress event
    expect(page.locator('main [data-field="progress"]')).to_have_text("66.7%")
    page.screenshot(path=tmp_path / "running.png", full_page=True)

    with sqlite_api.sessions() as session, session.begin():
        session.execute(
            update(JobRecord)
            .where(JobRecord.id == job_id)
            .values(status=JobStatus.cancelled, finished_at=JobRecord.updated_at)
        )
    expect(status).to_have_text("cancelled")
    page.wait_for_load_state()
    expect(page.locator("main[data-live-job]")).to_have_count(0)  # reloaded, finished


def test_the_jobs_list_shows_each_jobs_progress(sqlite_api: Api, page: Page) -> None:
    job_id = stored_job(sqlite_api, [ACCEPTED, UNKNOWN_TOOL, ACCEPTED, UNVERIFIED])
    page.goto(f"{sqlite_api.url}/")
    row = page.locator("table.jobs tbody tr").filter(has=page.locator(f'a[href="/jobs/{job_id}"]'))
    expect(row).to_have_count(1)
    assert row.locator('[data-field="accepted"]').inner_text() == "2"
    assert row.locator('[data-field="rejected"]').inner_text() == "1"
    assert row.locator('[data-field="requested"]').inner_text() == "4"
    assert row.locator('[data-field="progress"]').inner_text() == "75.0%"
    page.select_option('select[name="status"]', "running")
    page.click('form.filters button[type="submit"]')
    expect(page.locator(f'a[href="/jobs/{job_id}"]')).to_have_count(0)


def test_running_jobs_in_the_list_change_in_place(sqlite_api: Api, page: Page) -> None:
    job_id = stored_job(sqlite_api, [ACCEPTED, UNVERIFIED, UNVERIFIED, UNVERIFIED])
    with sqlite_api.sessions() as session, session.begin():
        session.execute(
            update(JobRecord).where(JobRecord.id == job_id).values(status=JobStatus.running)
        )
    page.goto(f"{sqlite_api.url}/")
    row = page.locator("table.jobs tbody tr").filter(has=page.locator(f'a[href="/jobs/{job_id}"]'))
    assert row.get_attribute("data-live-job") == job_id
    expect(row.locator('[data-field="accepted"]')).to_have_text("1")
    with sqlite_api.sessions() as session, session.begin():
        session.execute(
            update(SampleRecord)
            .where(SampleRecord.job_id == job_id, SampleRecord.position.in_([1, 2]))
            .values(status=SampleStatus.accepted, stage="format")
        )
        refresh_counts(session, job_id)
    expect(row.locator('[data-field="accepted"]')).to_have_text("3")
    expect(row.locator('[data-field="progress"]')).to_have_text("75.0%")
    with sqlite_api.sessions() as session, session.begin():
        session.execute(
            update(JobRecord).where(JobRecord.id == job_id).values(status=JobStatus.failed)
        )
    expect(row.locator('[data-field="status"]')).to_have_text("failed")
    expect(row).not_to_have_attribute("data-live-job", job_id)  # the stream has ended


def test_the_catalog_page_shows_tools_their_schemas_and_jobs(
    sqlite_api: Api, page: Page, tmp_path: Path
) -> None:
    job_id = stored_job(sqlite_api, [ACCEPTED])
    catalog = sqlite_api.http.get(f"/v1/jobs/{job_id}").json()["catalog_id"]
    tools = sqlite_api.http.get(f"/v1/catalogs/{catalog}").json()["tools"]
    page.goto(f"{sqlite_api.url}/catalogs")
    row = page.locator(f'tr[data-catalog-id="{catalog}"]')
    assert row.locator('[data-field="jobs"]').inner_text() == "1"
    row.locator("a").click()
    assert page.locator("details.tool").evaluate_all("rows => rows.map(r => r.dataset.tool)") == [
        tool["name"] for tool in tools
    ]
    first = page.locator("details.tool").first
    first.locator("summary").click()
    expect(first.locator("pre").first).to_contain_text(next(iter(tools[0]["parameters"])))
    expect(page.locator(f'a[href="/jobs/{job_id}"]')).to_have_count(1)
    page.screenshot(path=tmp_path / "catalog.png", full_page=True)


def report(accuracy_hits: int, samples: int = 10) -> dict[str, Any]:
    """An evaluation report whose overall and 'simple' accuracy is hits/samples."""
    counts = Counts(samples=samples, call_samples=samples, exact_correct=accuracy_hits)
    return EvalReport(overall=counts, by_style={"simple": counts}).to_dict()


def test_the_models_page_charts_each_version_beside_the_base_and_the_previous(
    sqlite_api: Api, page: Page, tmp_path: Path
) -> None:
    job_id = stored_job(sqlite_api, [ACCEPTED])
    catalog = sqlite_api.http.get(f"/v1/jobs/{job_id}").json()["catalog_id"]
    base = {"report": report(3)}
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    with sqlite_api.sessions() as session, session.begin():
        session.add(
            ModelVersionRecord(
                id=first, catalog_id=catalog, version=1, base_model="tiny", status="ready",
                metrics={"eval": report(5), "base": base},
            )
        )  # fmt: skip
        session.flush()
        session.add(
            ModelVersionRecord(
                id=second, catalog_id=catalog, version=2, parent_id=first, base_model="tiny",
                status="ready",
                metrics={"eval": report(8), "base": base,
                         "parent": {"version_id": first, "version": 1, "report": report(5)}},
            )
        )  # fmt: skip
    listed = sqlite_api.http.get("/v1/models", params={"catalog_id": catalog}).json()["data"]
    assert [v["summary"]["accuracy"] for v in listed] == [0.8, 0.5]

    page.goto(f"{sqlite_api.url}/models?catalog_id={catalog}")
    section = page.locator(f'section[data-catalog-id="{catalog}"]')
    by_version = section.locator("table.chart-table").first
    values = by_version.locator('[data-field="value"]').all_inner_texts()
    assert values == ["0.300", "0.500", "0.800"]
    latest = section.locator('article[data-version="2"] table.comparison')
    simple = latest.locator('tr[data-group="simple"] [data-field="value"]').all_inner_texts()
    assert simple == ["0.300", "0.500", "0.800"]  # base, previous (v1), v2
    models = latest.locator('tr[data-group="overall"]').evaluate_all(
        "rows => rows.map(r => r.dataset.model)"
    )
    assert models == ["base", "v1", "v2"]
    assert latest.locator('tr[data-group="overall"] td:nth-child(2)').all_inner_texts() == [
        "base",
        "v1 (previous)",
        "v2",
    ]
    page.screenshot(path=tmp_path / "models.png", full_page=True)


@pytest.mark.parametrize("path", ["/", "/jobs/{job}", "/catalogs", "/models"])
def test_with_keys_no_page_shows_data_before_the_key_is_entered(
    own_api: Callable[..., Api], page: Page, tmp_path: Path, path: str
) -> None:
    api = own_api(api_keys=[KEY])
    job_id = stored_job(api, [ACCEPTED, UNKNOWN_TOOL])
    url = api.url + path.format(job=job_id)

    def shows_data() -> bool:
        """Whether the page holds the job (its id as text) or its catalog (its name)."""
        return job_id[:12] in page.locator("main").inner_text() or (
            "travel_api.yaml" in page.content()
        )

    refused = page.goto(url)
    assert refused is not None and refused.status == 401
    assert not shows_data()
    expect(page.locator('form.login input[name="key"]')).to_be_visible()
    assert page.request.get(f"{api.url}/v1/jobs").status == 401

    page.fill('input[name="key"]', KEY + "-wrong")
    page.click('form.login button[type="submit"]')
    expect(page.locator("p.problem")).to_contain_text("not one this server knows")
    assert not shows_data()

    page.fill('input[name="key"]', KEY)
    page.click('form.login button[type="submit"]')
    page.wait_for_url(url)
    assert page.locator("form.login").count() == 0
    assert shows_data() == (path != "/models")
    page.screenshot(path=tmp_path / "after-login.png", full_page=True)
    cookies = page.context.cookies()
    assert [(c["name"], c["httpOnly"], c["sameSite"]) for c in cookies] == [
        ("actionforge_session", True, "Lax")
    ]
    assert KEY not in cookies[0]["value"]
    assert page.evaluate("document.cookie") == ""
    # The session opens the API's reads, not its writes.
    assert page.request.get(f"{api.url}/v1/jobs/{job_id}").status == 200
    assert page.request.post(f"{api.url}/v1/jobs/{job_id}/cancel").status == 401

    page.click("form.logout button")
    expect(page.locator('form.login input[name="key"]')).to_be_visible()
    assert page.goto(url) is not None and page.locator("form.login").count() == 1


def test_a_keyed_running_jobs_page_follows_its_stream_with_the_session(
    own_api: Callable[..., Api], page: Page
) -> None:
    api = own_api(api_keys=[KEY])
    job_id = stored_job(api, [ACCEPTED, UNVERIFIED])
    with api.sessions() as session, session.begin():
        session.execute(
            update(JobRecord).where(JobRecord.id == job_id).values(status=JobStatus.running)
        )
    page.goto(f"{api.url}/login?next=/jobs/{job_id}")
    page.fill('input[name="key"]', KEY)
    page.click('form.login button[type="submit"]')
    status = page.locator('h1 [data-field="status"]')
    expect(status).to_have_text("running")
    with api.sessions() as session, session.begin():
        session.execute(
            update(JobRecord).where(JobRecord.id == job_id).values(status=JobStatus.succeeded)
        )
    expect(status).to_have_text("succeeded")


def test_unknown_ids_and_bad_filters_answer_a_page_saying_what_to_change(
    sqlite_api: Api, page: Page
) -> None:
    missing = page.goto(f"{sqlite_api.url}/jobs/no-such-job")
    assert missing is not None and missing.status == 404
    expect(page.locator("p.problem")).to_contain_text("job 'no-such-job' does not exist")
    job_id = stored_job(sqlite_api, [ACCEPTED])
    bad = page.goto(f"{sqlite_api.url}/jobs/{job_id}?style=chatty")
    assert bad is not None and bad.status == 422
    expect(page.locator("p.problem")).to_contain_text("query parameter 'style' ('chatty')")
    with sqlite_api.sessions() as session:
        assert session.scalar(select(JobRecord.status).where(JobRecord.id == job_id))


def test_without_keys_there_is_nothing_to_log_in_to(sqlite_api: Api) -> None:
    login = sqlite_api.http.get("/login", params={"next": "/catalogs"}, follow_redirects=False)
    assert (login.status_code, login.headers["location"]) == (303, "/catalogs")
    away = sqlite_api.http.get("/login", params={"next": "//elsewhere.example/"})
    assert (away.status_code, away.headers["location"]) == (303, "/")
    assert "Log out" not in sqlite_api.http.get("/").text


def test_a_jobs_list_longer_than_a_page_links_to_the_next(sqlite_api: Api, page: Page) -> None:
    with sqlite_api.sessions() as session:
        stored = session.scalar(select(func.count()).select_from(JobRecord)) or 0
    for _ in range(max(0, JOBS_PER_PAGE + 1 - stored)):
        stored_job(sqlite_api, [ACCEPTED])
    page.goto(f"{sqlite_api.url}/")
    expect(page.locator("table.jobs tbody tr")).to_have_count(JOBS_PER_PAGE)
    page.click("text=older →")
    expect(page.locator("table.jobs tbody tr").first).to_be_visible()
    assert f"offset={JOBS_PER_PAGE}" in page.url
