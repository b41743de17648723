"""`GET /v1/jobs/{id}/samples`: keyset pages in position order, filters, verdicts, refusals."""

from __future__ import annotations

from typing import Any

import pytest
from api_support import ACCEPTED, Api, Outcome, add_job, real_samples

from service.db.models import SampleStatus
from unified.model import Sample

UNKNOWN_TOOL: Outcome = (SampleStatus.rejected, "format", "unknown_tool")
MISSING_ARGUMENT: Outcome = (SampleStatus.rejected, "format", "missing_required_argument")
UNVERIFIED: Outcome = (SampleStatus.generated, None, None)
PATTERN = [ACCEPTED, UNKNOWN_TOOL, ACCEPTED, MISSING_ARGUMENT, UNVERIFIED]


@pytest.fixture
def job(api: Api) -> tuple[str, list[Sample], list[Outcome]]:
    """A job of 30 real samples: accepted, rejected for two reasons, and not yet verified."""
    base = real_samples()
    samples = [base[i % len(base)].model_copy(update={"id": f"xlam-{i}"}) for i in range(30)]
    outcomes = [PATTERN[i % len(PATTERN)] for i in range(30)]
    return add_job(api.sessions, samples, outcomes), samples, outcomes


def pages(api: Api, job_id: str, **params: Any) -> list[dict[str, Any]]:
    """Every page of the job's samples, following next_cursor."""
    found = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = api.http.get(f"/v1/jobs/{job_id}/samples", params=query)
        assert response.status_code == 200, response.text
        found.append(response.json())
        cursor = found[-1]["next_cursor"]
        if cursor is None:
            return found


def test_pages_follow_the_cursor_through_every_sample_in_position_order(
    api: Api, job: tuple[str, list[Sample], list[Outcome]]
) -> None:
    job_id, samples, outcomes = job
    result = pages(api, job_id, limit=7)
    assert [len(page["data"]) for page in result] == [7, 7, 7, 7, 2]
    assert all(page["count"] == 30 for page in result)
    items = [item for page in result for item in page["data"]]
    assert [item["position"] for item in items] == list(range(30))
    assert [Sample.model_validate(item["sample"]) for item in items] == samples
    assert [(item["status"], item["stage"], item["reason"]) for item in items] == [
        (status.value, stage, reason) for status, stage, reason in outcomes
    ]


def test_each_item_carries_its_verdicts(
    api: Api, job: tuple[str, list[Sample], list[Outcome]]
) -> None:
    job_id, samples, _ = job
    items = api.http.get(f"/v1/jobs/{job_id}/samples", params={"limit": 5}).json()["data"]
    accepted, rejected, unverified = items[0], items[1], items[4]
    assert accepted["verdicts"] == [
        {"stage": "format", "accepted": True, "reason": None, "detail": None}
    ]
    assert rejected["verdicts"] == [
        {
            "stage": "format",
            "accepted": False,
            "reason": "unknown_tool",
            "detail": f"unknown_tool in {samples[1].id}",
        }
    ]
    assert unverified["verdicts"] == []
    assert rejected["id"] == f"{job_id}-0000001"


def test_status_and_reason_filter_the_pages_and_the_count(
    api: Api, job: tuple[str, list[Sample], list[Outcome]]
) -> None:
    job_id, _, outcomes = job
    rejected = pages(api, job_id, status="rejected", limit=4)
    items = [item for page in rejected for item in page["data"]]
    expected = [i for i, outcome in enumerate(outcomes) if outcome[0] == SampleStatus.rejected]
    assert [item["position"] for item in items] == expected
    assert rejected[0]["count"] == len(expected) == 12

    by_reason = pages(api, job_id, reason="unknown_tool")
    positions = [item["position"] for page in by_reason for item in page["data"]]
    assert positions == [i for i, outcome in enumerate(outcomes) if outcome == UNKNOWN_TOOL]

    nothing = api.http.get(
        f"/v1/jobs/{job_id}/samples", params={"status": "accepted", "reason": "unknown_tool"}
    ).json()
    assert nothing == {"data": [], "count": 0, "next_cursor": None}


def test_stage_and_style_filter_the_pages_and_the_count(
    api: Api, job: tuple[str, list[Sample], list[Outcome]]
) -> None:
    job_id, samples, outcomes = job
    by_stage = pages(api, job_id, stage="format", limit=5)
    positions = [item["position"] for page in by_stage for item in page["data"]]
    assert positions == [i for i, outcome in enumerate(outcomes) if outcome[1] == "format"]
    assert by_stage[0]["count"] == len(positions) == 24

    style = samples[0].meta.style
    assert style is not None
    by_style = pages(api, job_id, style=style.value, status="accepted", limit=3)
    items = [item for page in by_style for item in page["data"]]
    expected = [
        i
        for i, (sample, outcome) in enumerate(zip(samples, outcomes, strict=True))
        if sample.meta.style == style and outcome == ACCEPTED
    ]
    assert expected, "the fixture holds accepted samples of the style"
    assert [item["position"] for item in items] == expected
    assert {item["sample"]["meta"]["style"] for item in items} == {style.value}
    assert by_style[0]["count"] == len(expected)

    bad_style = api.http.get(f"/v1/jobs/{job_id}/samples", params={"style": "chatty"})
    assert bad_style.status_code == 422
    assert bad_style.json()["detail"].startswith("query parameter 'style': Input should be")


def test_a_job_without_samples_has_one_empty_page(api: Api) -> None:
    job_id = add_job(api.sessions, [])
    page = api.http.get(f"/v1/jobs/{job_id}/samples").json()
    assert page == {"data": [], "count": 0, "next_cursor": None}


def test_bad_parameters_say_what_to_change(
    api: Api, job: tuple[str, list[Sample], list[Outcome]]
) -> None:
    job_id = job[0]
    url = f"/v1/jobs/{job_id}/samples"

    bad_cursor = api.http.get(url, params={"cursor": "not-a-cursor"})
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["detail"] == (
        "query parameter 'cursor' ('not-a-cursor') is not a cursor this API gave; pass the "
        "next_cursor of the previous page unchanged, or leave it out for the first page"
    )

    bad_status = api.http.get(url, params={"status": "approved"})
    assert bad_status.status_code == 422
    assert bad_status.json()["detail"] == (
        "query parameter 'status': Input should be 'generated', 'accepted' or 'rejected' "
        "(got 'approved'); use one of those"
    )

    for limit in (0, 1001):
        too_many = api.http.get(url, params={"limit": limit})
        assert too_many.status_code == 422
        assert too_many.json()["detail"].startswith("query parameter 'limit': Input should be")
        assert too_many.json()["errors"][0] == {
            "in": "query",
            "field": "limit",
            "message": too_many.json()["detail"],
        }


def test_an_unknown_job_is_a_404_naming_it(api: Api) -> None:
    response = api.http.get("/v1/jobs/no-such-job/samples")
    assert response.status_code == 404
    assert response.json()["detail"].startswith("job 'no-such-job' does not exist;")
