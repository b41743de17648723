"""A real job on the dashboard: the API served over real HTTP with the embedded queue's worker
processes (what `actionforge serve` runs), a job submitted over HTTP, its page opened in
headless Chromium while it runs; the page follows the job to its end, then shows the funnel
the API counts and a rejected sample with its reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import TRAVEL_CATALOG, Api, running_api
from playwright.sync_api import Page, expect

from service.cli.commands.local import embedded_workers, prepare
from service.settings import Settings

pytestmark = pytest.mark.slow

# The dedup stage rejects the few duplicates the template generator writes: 5 of 400 for
# seed 1 (the other stages pass all of them).
SPEC = {
    "n": 400,
    "seed": 1,
    "verify": ["query", "format", "grounding", "coverage", "execution", "dedup"],
}
JOB_SECONDS = 180_000  # ms; about 10 s on two cores


@pytest.fixture(scope="module")
def working_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data_dir = tmp_path_factory.mktemp("dashboard-job")
    settings = Settings(
        data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'af.db'}", batch_size=20
    )
    prepare(settings)
    with embedded_workers(settings, data_dir / "workers.log"), running_api(settings) as api:
        yield api


def test_a_jobs_page_follows_it_to_the_end_and_shows_the_apis_funnel(
    working_api: Api, page: Page, tmp_path: Path
) -> None:
    api = working_api
    upload = api.http.post(
        "/v1/catalogs",
        files={"file": (TRAVEL_CATALOG.name, TRAVEL_CATALOG.read_bytes(), "application/yaml")},
    )
    assert upload.status_code == 201, upload.text
    submitted = api.http.post("/v1/jobs", json={"catalog_id": upload.json()["id"], **SPEC})
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]

    page.goto(f"{api.url}/jobs/{job_id}")
    status = page.locator('h1 [data-field="status"]')
    assert status.inner_text() in {"queued", "running"}
    assert page.locator("main[data-live-job]").count() == 1
    page.screenshot(path=tmp_path / "while-running.png", full_page=True)
    expect(status).to_have_text("succeeded", timeout=JOB_SECONDS)
    expect(page.locator("main[data-live-job]")).to_have_count(0)  # reloaded once finished
    page.screenshot(path=tmp_path / "finished.png", full_page=True)

    counts = api.http.get(f"/v1/jobs/{job_id}").json()["counts"]
    assert counts["generated"] == SPEC["n"]
    for step in counts["funnel"]:
        row = page.locator(f'[data-funnel-step="{step["step"]}"]')
        shown = row.locator('[data-field="step-samples"]').inner_text()
        assert int(shown.replace(",", "")) == step["samples"], step
        dropped = row.locator('[data-field="step-rejected"]').inner_text()
        assert int(dropped.replace(",", "") or 0) == step["rejected"], step
    assert counts["rejections"], "the dedup stage rejected duplicates"
    reason = counts["rejections"][0]["reason"]
    shown_rejected = page.locator(f'table.rejections tr[data-reason="{reason}"] [data-field]')
    assert int(shown_rejected.inner_text()) == counts["rejections"][0]["samples"]

    page.click(f'table.rejections tr[data-reason="{reason}"] a')
    first = page.locator("details.sample-row").first
    first.locator("summary").click()
    rejected = first.locator("section.sample-rejected")
    expect(rejected.locator('[data-field="reason"]')).to_have_text(reason)
    verdict = rejected.locator("table.verdicts tr.rejected")
    expect(verdict).to_contain_text(reason)
    sample_id = rejected.get_attribute("data-sample-id")
    listed = api.http.get(
        f"/v1/jobs/{job_id}/samples", params={"status": "rejected", "reason": reason, "limit": 1}
    ).json()["data"][0]
    assert sample_id == listed["id"]
    detail = next(v["detail"] for v in listed["verdicts"] if not v["accepted"])
    expect(verdict.locator("td.detail")).to_have_text(detail)
    expect(first.locator("section.sample-accepted")).to_have_count(1)
    page.screenshot(path=tmp_path / "rejected-sample.png", full_page=True)
