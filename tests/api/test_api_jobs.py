"""`/v1/jobs`: submitting (and every refusal), reading, listing and cancelling jobs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from api_support import Api, add_catalog, add_job, real_samples
from sqlalchemy import func, select

from generators.base import GENERATORS
from service.db.models import BatchRecord, JobRecord, JobStatus
from verifiers.stages import STAGES


def test_a_submitted_job_is_queued_with_its_batches_planned(api: Api) -> None:
    catalog_id = add_catalog(api.sessions)
    response = api.http.post(
        "/v1/jobs",
        json={"catalog_id": catalog_id, "n": 120, "seed": 7, "styles": {"simple": 1}},
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued"
    assert job["error"] is None
    assert job["catalog_id"] == catalog_id
    assert job["spec"] == {
        "n": 120,
        "styles": {"simple": 1.0},
        "generator": "template",
        "seed": 7,
        "generator_options": {},
        "verify": ["query", "format", "grounding", "coverage"],
        "stage_options": {},
        "batch_size": api.settings.batch_size,
        "judge": None,
    }
    counts = job["counts"]
    assert (counts["generated"], counts["accepted"], counts["rejected"]) == (0, 0, 0)
    assert counts["by_stage"] == {
        stage: {"passed": 0, "rejected": 0}
        for stage in ("query", "format", "grounding", "coverage")
    }
    assert counts["by_reason"] == {}
    with api.sessions() as session:
        batches = session.scalar(
            select(func.count()).select_from(BatchRecord).where(BatchRecord.job_id == job["id"])
        )
    assert batches == -(-120 // api.settings.batch_size)

    read = api.http.get(f"/v1/jobs/{job['id']}").json()
    assert {key: read[key] for key in ("id", "status", "spec", "created_at")} == {
        key: job[key] for key in ("id", "status", "spec", "created_at")
    }

    cancelled = api.http.post(f"/v1/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["finished_at"] is not None
    assert api.http.get(f"/v1/jobs/{job['id']}").json()["status"] == "cancelled"


def test_an_unknown_catalog_is_a_404_naming_it(api: Api) -> None:
    response = api.http.post("/v1/jobs", json={"catalog_id": "no-such-catalog", "n": 5})
    assert response.status_code == 404
    assert response.json()["detail"].startswith("catalog 'no-such-catalog' does not exist;")


def test_n_must_be_at_least_one_and_present(api: Api) -> None:
    catalog_id = add_catalog(api.sessions)
    zero = api.http.post("/v1/jobs", json={"catalog_id": catalog_id, "n": 0})
    assert zero.status_code == 422
    assert zero.json()["detail"] == (
        "field 'n' of the request body: Input should be greater than or equal to 1 (got 0); "
        "fix its value"
    )
    missing = api.http.post("/v1/jobs", json={"catalog_id": catalog_id})
    assert missing.status_code == 422
    assert missing.json()["detail"] == "field 'n' of the request body: Field required; add it"


def test_unknown_generators_stages_and_styles_list_the_known_ones(api: Api) -> None:
    catalog_id = add_catalog(api.sessions)
    generator = api.http.post(
        "/v1/jobs", json={"catalog_id": catalog_id, "n": 5, "generator": "gpt-9"}
    )
    assert generator.status_code == 422
    known_generators = ", ".join(GENERATORS.names())
    assert "template" in known_generators
    assert generator.json()["detail"] == (
        f"generator: Unknown generator 'gpt-9'. Known: {known_generators}; "
        "set 'generator' to one of them"
    )

    stage = api.http.post(
        "/v1/jobs", json={"catalog_id": catalog_id, "n": 5, "verify": ["format", "vibes"]}
    )
    assert stage.status_code == 422
    known_stages = ", ".join(STAGES.names())
    assert "format" in known_stages
    assert stage.json()["detail"] == (
        f"verify: Unknown verification stage 'vibes'. Known: {known_stages}; list only known stages"
    )

    style = api.http.post(
        "/v1/jobs", json={"catalog_id": catalog_id, "n": 5, "styles": {"chatty": 1}}
    )
    assert style.status_code == 422
    assert style.json()["detail"].startswith(
        "key 'chatty' of field 'styles' of the request body: Input should be 'simple', "
    )
    assert style.json()["detail"].endswith("(got 'chatty'); use one of those")


def test_llm_jobs_are_checked_before_anything_is_queued(api: Api) -> None:
    catalog_id = add_catalog(api.sessions)

    def post(**spec: object) -> tuple[int, dict[str, object]]:
        response = api.http.post("/v1/jobs", json={"catalog_id": catalog_id, "n": 5, **spec})
        body: dict[str, object] = response.json()
        return response.status_code, body

    code, body = post(generator="llm", generator_options={"model": "m", "temprature": 0.2})
    assert code == 422
    assert str(body["detail"]).startswith(
        "generator_options: llm generator: unknown option 'temprature'; known options: "
    )
    code, body = post(generator="llm", generator_options={"backend": "openai"})
    assert code == 422
    assert "the llm generator needs 'model'" in str(body["detail"])
    assert "AF_LLM_MODEL" in str(body["detail"])
    code, body = post(generator_options={"temperature": 0.2})
    assert (code, body["detail"]) == (
        422,
        "generator_options: template generator: unknown option 'temperature'; "
        "known options: templates_dir, created",
    )
    code, body = post(verify=["format", "semantic"])
    assert code == 422
    assert str(body["detail"]).startswith(
        "verify: stage 'semantic': option 'judge' is required (the LLM the stage asks: "
    )
    assert "AF_LLM_BASE_URL and AF_LLM_MODEL" in str(body["detail"])

    # The stage that rejects failed generations goes first, and batches fit the engine.
    code, body = post(
        generator="llm",
        generator_options={"backend": "openai", "model": "m", "base_url": "http://x:1/v1"},
        verify=["format", "semantic"],
        judge={"backend": "openai", "model": "m", "base_url": "http://x:1/v1"},
    )
    assert code == 202, body
    spec = body["spec"]
    assert isinstance(spec, dict)
    assert spec["verify"] == ["generation", "format", "semantic"]
    assert spec["batch_size"] == api.settings.llm_batch_size
    assert spec["judge"]["base_url"] == "http://x:1/v1"
    api.http.post(f"/v1/jobs/{body['id']}/cancel")


def test_llm_jobs_that_name_no_llm_use_the_services_and_store_it(
    own_api: Callable[..., Api],
) -> None:
    api = own_api(llm_base_url="http://vllm:8000/v1", llm_model="served-model")
    catalog_id = add_catalog(api.sessions)

    def spec_of(**spec: object) -> dict[str, Any]:
        body = {"catalog_id": catalog_id, "n": 5, "generator": "llm", **spec}
        response = api.http.post("/v1/jobs", json=body)
        assert response.status_code == 202, response.text
        stored: dict[str, Any] = response.json()["spec"]
        return stored

    spec = spec_of(verify=["format", "semantic"])
    assert spec["generator_options"] == {
        "backend": "openai",
        "base_url": "http://vllm:8000/v1",
        "model": "served-model",
    }
    assert spec["judge"]["base_url"] == "http://vllm:8000/v1"
    assert spec["judge"]["model"] == "served-model"
    # What a job names wins; the in-process engine gets no server URL.
    spec = spec_of(generator_options={"backend": "vllm", "model": "/models/local"})
    assert spec["generator_options"] == {"backend": "vllm", "model": "/models/local"}
    assert spec["judge"] is None
    spec = spec_of(generator_options={"base_url": "http://other:9/v1", "temperature": 0.2})
    assert spec["generator_options"] == {
        "backend": "openai",
        "base_url": "http://other:9/v1",
        "model": "served-model",
        "temperature": 0.2,
    }
    # Template jobs are left alone.
    response = api.http.post("/v1/jobs", json={"catalog_id": catalog_id, "n": 5})
    assert response.json()["spec"]["generator_options"] == {}


def test_stage_options_inline_or_by_name_are_checked_and_stored(api: Api) -> None:
    catalog_id = add_catalog(api.sessions)
    judge = {"backend": "openai", "model": "m", "base_url": "http://x:1/v1"}

    def post(**spec: object) -> tuple[int, dict[str, Any]]:
        response = api.http.post("/v1/jobs", json={"catalog_id": catalog_id, "n": 5, **spec})
        body: dict[str, Any] = response.json()
        return response.status_code, body

    code, body = post(verify=["format", {"semantic": {"judge": judge}}])
    assert code == 202, body
    assert body["spec"]["verify"] == ["format", "semantic"]
    assert body["spec"]["stage_options"] == {"semantic": {"judge": judge}}
    assert body["spec"]["judge"]["base_url"] == "http://x:1/v1"  # the shorthand shows it
    api.http.post(f"/v1/jobs/{body['id']}/cancel")

    code, body = post(verify=["format", "semantic"], stage_options={"semantic": {"judge": judge}})
    assert code == 202, body
    assert body["spec"]["stage_options"] == {"semantic": {"judge": judge}}
    api.http.post(f"/v1/jobs/{body['id']}/cancel")

    code, body = post(verify=["format", {"semantic": {"jduge": judge}}])
    assert (code, body["detail"]) == (
        422,
        "verify: stage 'semantic': unknown option 'jduge'; known options: judge, votes, "
        "min_accuracy, calibration_size",
    )
    code, body = post(verify=["format"], stage_options={"format": {"strict": True}})
    assert (code, body["detail"]) == (
        422,
        "verify: stage 'format': unknown option 'strict'; known options: none",
    )
    code, body = post(verify=["format"], stage_options={"dedup": {}})
    assert code == 422
    assert body["detail"].startswith("stage_options: stage 'dedup' is not in verify")
    code, body = post(verify=["format"], stage_options=5)
    assert code == 422
    assert body["detail"].startswith("field 'stage_options' of the request body: ")
    other = {**judge, "model": "other"}
    code, body = post(verify=[{"semantic": {"judge": judge}}], judge=other)
    assert code == 422
    assert (
        "judge and the semantic stage's judge option differ; give the judge once"
        in (body["detail"])
    )
    code, body = post(verify=["format", {"semantic": {}, "dedup": {}}])
    assert code == 422
    assert (
        "an entry is a stage name or one {name: {options}}; got an object with 2 keys"
        in (body["detail"])
    )


def test_a_plugin_generator_or_stage_missing_a_member_is_refused_with_what_to_do(
    api: Api,
) -> None:
    catalog_id = add_catalog(api.sessions)
    GENERATORS.register("bare-for-api-tests", f"{__name__}:BareGenerator")
    STAGES.register("bare-for-api-tests", f"{__name__}:BareStage")
    try:
        generator = api.http.post(
            "/v1/jobs",
            json={"catalog_id": catalog_id, "n": 5, "generator": "bare-for-api-tests"},
        )
        stage = api.http.post(
            "/v1/jobs",
            json={"catalog_id": catalog_id, "n": 5, "verify": ["format", "bare-for-api-tests"]},
        )
    finally:
        GENERATORS.unregister("bare-for-api-tests")
        STAGES.unregister("bare-for-api-tests")
    assert generator.status_code == 422
    assert generator.json()["detail"] == (
        "generator: generator 'bare-for-api-tests' lacks uses_llm, required_stages, "
        "check_options, with_llm_defaults, generate_with_usage; subclass "
        "generators.base.GeneratorBase, which gives every member a default"
    )
    assert stage.status_code == 422
    assert stage.json()["detail"] == (
        "verify: stage 'bare-for-api-tests' lacks options_model, ordered, with_llm_defaults; "
        "subclass verifiers.stages.StageBase, which gives every member but verify_batch a "
        "default (an ordered stage defines prepare, lookup_keys, judge_in_order too)"
    )


class BareGenerator:
    """A generator written before the protocol had more than `generate`."""

    def generate(self, tools: object, request: object) -> list[object]:
        return []


class BareStage:
    """A stage written before the protocol had more than `verify_batch`."""

    name = "bare-for-api-tests"

    def verify_batch(self, samples: list[object], context: object) -> list[object]:
        return []


def test_unknown_fields_are_refused_and_broken_json_is_a_400(api: Api) -> None:
    catalog_id = add_catalog(api.sessions)
    extra = api.http.post("/v1/jobs", json={"catalog_id": catalog_id, "n": 5, "count": 5})
    assert extra.status_code == 422
    assert extra.json()["detail"].startswith("field 'count' of the request body: Extra inputs")
    assert extra.json()["detail"].endswith("remove it")

    broken = api.http.post(
        "/v1/jobs", content=b'{"n": 5,', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400
    assert broken.json()["detail"] == (
        "the request body is not valid JSON at character 8 "
        "(Expecting property name enclosed in double quotes); send valid JSON"
    )

    several = api.http.post("/v1/jobs", json={"n": -1})
    assert several.status_code == 422
    assert [error["field"] for error in several.json()["errors"]] == ["n", "catalog_id"]
    assert "(and 1 more: field 'catalog_id' of the request body" in several.json()["detail"]


def test_jobs_are_listed_newest_first_and_filtered_by_status(api: Api) -> None:
    samples = real_samples()[:1]
    first = add_job(api.sessions, samples, status=JobStatus.failed)
    second = add_job(api.sessions, samples, status=JobStatus.succeeded)
    third = add_job(api.sessions, samples, status=JobStatus.failed)

    listing = api.http.get("/v1/jobs", params={"limit": 1000}).json()
    listed = [job["id"] for job in listing["data"]]
    assert listed.index(third) < listed.index(second) < listed.index(first)
    created = [job["created_at"] for job in listing["data"]]
    assert created == sorted(created, reverse=True)
    with api.sessions() as session:
        assert listing["count"] == session.scalar(select(func.count()).select_from(JobRecord))

    failed = api.http.get("/v1/jobs", params={"status": "failed", "limit": 1000}).json()
    failed_ids = [job["id"] for job in failed["data"]]
    assert {job["status"] for job in failed["data"]} == {"failed"}
    assert third in failed_ids and first in failed_ids and second not in failed_ids
    assert failed["count"] == len(failed_ids)

    page = api.http.get("/v1/jobs", params={"limit": 1, "offset": 1}).json()
    assert [job["id"] for job in page["data"]] == listed[1:2]

    bad = api.http.get("/v1/jobs", params={"status": "done"})
    assert bad.status_code == 422
    assert bad.json()["detail"].startswith("query parameter 'status': Input should be 'queued'")


def test_jobs_are_filtered_by_catalog(api: Api) -> None:
    first = add_job(api.sessions, real_samples()[:1])
    add_job(api.sessions, real_samples()[:1])  # another job, on a catalog of its own
    with api.sessions() as session:
        catalog_id = session.get_one(JobRecord, first).catalog_id
    listed = api.http.get("/v1/jobs", params={"catalog_id": catalog_id}).json()
    assert [job["id"] for job in listed["data"]] == [first]
    assert listed["count"] == 1

    unknown = api.http.get("/v1/jobs", params={"catalog_id": "no-such-catalog"})
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == (
        "catalog 'no-such-catalog' does not exist; list the catalogs with GET /v1/catalogs"
    )


def test_a_finished_job_cannot_be_cancelled(api: Api) -> None:
    job_id = add_job(api.sessions, real_samples()[:1], status=JobStatus.succeeded)
    response = api.http.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code == 422
    assert response.json()["detail"] == (
        f"job '{job_id}' already succeeded; only queued or running jobs can be cancelled"
    )


def test_unknown_jobs_are_404s_naming_them(api: Api) -> None:
    for method, url in (
        ("GET", "/v1/jobs/no-such-job"),
        ("POST", "/v1/jobs/no-such-job/cancel"),
        ("GET", "/v1/jobs/no-such-job/export"),
    ):
        response = api.http.request(method, url)
        assert response.status_code == 404, url
        assert response.json()["detail"].startswith("job 'no-such-job' does not exist;")
