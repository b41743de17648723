"""Calibration before trust: a job's semantic judge is scored on a set made from the job's own
catalog before it judges anything. A judge that passes everything fails the job at once with
`judge_uncalibrated` and the figures; one that tells right from wrong (even outvoted once in
three) is trusted, stored with its figures, and asked again only for the job's own samples.
Real API and database, the engine's own steps, a scripted OpenAI-compatible judge over HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from api_support import TRAVEL_CATALOG, Api
from scripted_llm import Reply, ScriptedServer, scripted_llm_server, user_text
from sqlalchemy import select

from generators.calibration_set import calibration_set
from service.db.models import SampleRecord
from service.pipeline.batches import generate_batch, verify_batch
from unified.catalogs import load_catalog
from verifiers.judge import judge_prompt, load_judge_template
from verifiers.stages import StageContext

SEED = 3
SIZE = 12


def labelled_prompts(size: int = SIZE) -> dict[str, bool]:
    """The judge prompts of the travel catalog's calibration set, each with whether it shows a
    right answer: what a judge that knows the answers would go by."""
    tools = load_catalog(TRAVEL_CATALOG).tools
    context = StageContext.for_catalog(tools)
    template = load_judge_template()
    return {
        judge_prompt(template, sample, context.tools_for(sample)): right
        for sample, right in calibration_set(tools, size, seed=SEED)
    }


def verdict(passed: bool) -> Reply:
    return Reply(json.dumps({"reason": "scripted", "pass": passed}))


def run_job(api: Api, server: ScriptedServer, batches: int = 1, **semantic: Any) -> dict[str, Any]:
    """A template job of `batches` batches of 4 judged by `server`, run by the engine's own
    steps; the job as the API shows it."""
    upload = api.http.post(
        "/v1/catalogs", files={"file": (TRAVEL_CATALOG.name, TRAVEL_CATALOG.read_bytes())}
    )
    assert upload.status_code == 201, upload.text
    judge = {"backend": "openai", "model": "scripted", "base_url": server.base_url}
    body = {
        "catalog_id": upload.json()["id"],
        "n": 4 * batches,
        "batch_size": 4,
        "seed": SEED,
        "generator": "template",
        "verify": ["format", {"semantic": {"judge": judge, "calibration_size": SIZE, **semantic}}],
    }
    response = api.http.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    for index in range(batches):
        assert generate_batch(api.sessions, f"{job_id}-{index:06d}")
        verify_batch(api.sessions, f"{job_id}-{index:06d}")
    shown = api.http.get(f"/v1/jobs/{job_id}")
    assert shown.status_code == 200, shown.text
    job: dict[str, Any] = shown.json()
    return job


def semantic_verdicts(api: Api, job_id: str) -> int:
    with api.sessions() as session:
        rows = session.scalars(select(SampleRecord).where(SampleRecord.job_id == job_id)).all()
    return sum(row.stage == "semantic" or row.status == "accepted" for row in rows)


def test_a_judge_that_passes_everything_fails_the_job_before_judging_it(api: Api) -> None:
    with scripted_llm_server(lambda body: verdict(True)) as server:
        job = run_job(api, server)
    assert job["status"] == "failed"
    assert job["error"] == (
        "judge_uncalibrated: the judge accepted 6 of 6 right answers and rejected 0 of 6 wrong "
        "ones from this catalog (balanced accuracy 0.50, at least 0.80 needed); use a stronger "
        "judge model, ask it for more votes, or lower the semantic stage's min_accuracy "
        "(AF_JUDGE_MIN_ACCURACY)"
    )
    assert job["judge_calibration"] == {
        "right": 6,
        "right_accepted": 6,
        "wrong": 6,
        "wrong_rejected": 0,
        "accuracy": 0.5,
        "min_accuracy": 0.8,
        "votes": 1,
    }
    # The calibration set only: none of the job's own samples reached the judge.
    assert len(server.requests) == SIZE
    assert semantic_verdicts(api, job["id"]) == 0


def test_a_judge_that_knows_right_from_wrong_is_trusted_and_judges_the_job(api: Api) -> None:
    labels = labelled_prompts()
    assert sorted(labels.values()) == [False] * (SIZE // 2) + [True] * (SIZE // 2)

    def knowing(body: dict[str, Any]) -> Reply:
        right = labels.get(user_text(body))
        if right is None:  # one of the job's own samples
            return verdict(True)
        # One vote in three is wrong: the majority still decides right.
        return verdict(right if body.get("seed") != 2 else not right)

    with scripted_llm_server(knowing) as server:
        job = run_job(api, server, batches=2, votes=3)
    assert (job["status"], job["error"]) == ("succeeded", None)
    calibration = job["judge_calibration"]
    assert (calibration["accuracy"], calibration["votes"]) == (1.0, 3)
    temperatures = {body.get("temperature") for body in server.requests}
    assert temperatures == {0.7}  # votes are drawn, not one answer thrice
    # Calibrated once for two batches: the set thrice, then the job's samples thrice each.
    judged = semantic_verdicts(api, job["id"])
    assert judged == job["counts"]["by_stage"]["semantic"]["passed"] > 0
    assert len(server.requests) == 3 * SIZE + 3 * judged


def test_min_accuracy_zero_skips_calibration_and_a_stricter_one_fails_a_fair_judge(
    api: Api,
) -> None:
    with scripted_llm_server(lambda body: verdict(True)) as server:
        job = run_job(api, server, min_accuracy=0)
    assert (job["status"], job["judge_calibration"]) == ("succeeded", None)
    assert len(server.requests) == semantic_verdicts(api, job["id"]) > 0

    labels = labelled_prompts()
    wrong_once: Callable[[dict[str, Any]], Reply] = _judge_missing_one_wrong_answer(labels)
    with scripted_llm_server(wrong_once) as server:
        job = run_job(api, server, min_accuracy=0.95)
    assert job["status"] == "failed"
    assert job["error"].startswith(
        "judge_uncalibrated: the judge accepted 6 of 6 right answers and rejected 5 of 6 wrong "
        "ones from this catalog (balanced accuracy 0.92, at least 0.95 needed)"
    )


def _judge_missing_one_wrong_answer(labels: dict[str, bool]) -> Callable[[dict[str, Any]], Reply]:
    missed = next(prompt for prompt, right in labels.items() if not right)

    def judge(body: dict[str, Any]) -> Reply:
        prompt = user_text(body)
        return verdict(labels.get(prompt, True) or prompt == missed)

    return judge
