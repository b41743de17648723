"""/metrics on the embedded default: `actionforge serve` (its own process, with the embedded
queue's worker processes) runs three jobs, then /metrics is scraped over real HTTP and read with
prometheus-client's parser. What the workers counted equals what the API says of the jobs: samples
generated, accepted, rejected by stage and reason, every stage's verdicts; the stage and
generation histograms saw every batch; jobs by status and the queues are read at the scrape; the
LLM counts equal what a scripted server over real HTTP answered (its 503s as errors, its tokens);
exports count their rows; and every metric the Grafana dashboard asks for is in the scrape."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from engine_helpers import TRAVEL_CATALOG
from jobs_over_http import upload_catalog, wait_for_job_over_http
from llm_fixtures import free_port
from scraped_metrics import ROOT, Scrape, scrape, served, service_environment
from scripted_llm import Reply, ScriptedServer, scripted_llm_server, user_text

from llm.metrics import server_label

pytestmark = pytest.mark.slow

DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "actionforge.json"
TEMPLATE_JOB = {"n": 60, "seed": 4, "batch_size": 20, "verify": ["query", "format", "dedup"]}
LLM_SAMPLES = 9


@dataclass
class ScriptedAnswers:
    """Answers in turn: 503 (a retry follows), an unparseable answer, one cut off by length."""

    served: Counter[str] = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __call__(self, body: dict[str, Any]) -> Reply:
        turn = sum(self.served.values()) % 3
        self.served[("busy", "unparseable", "length")[turn]] += 1
        if turn == 0:
            return Reply(content="busy, try again", status=503)
        reply = (
            Reply(content="this is not json at all")
            if turn == 1
            else Reply(content='{"calls": [', finish_reason="length")
        )
        # What the scripted server reports as usage.
        self.prompt_tokens += len(user_text(body).split())
        self.completion_tokens += max(1, len(reply.content.split()))
        return reply


@dataclass
class Ran:
    url: str
    jobs: list[dict[str, Any]]
    scrape: Scrape
    llm: ScriptedServer
    answers: ScriptedAnswers
    exported: dict[str, int]


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ran]:
    """Two template jobs on one catalog (the second all duplicates of the first), an llm job
    against the scripted server, exports of the first; then one scrape."""
    tmp = tmp_path_factory.mktemp("metrics-embedded")
    answers = ScriptedAnswers()
    env = service_environment(data_dir=tmp / "data", batch_size=20)
    with (
        scripted_llm_server(answers) as llm,
        served(free_port(), env, tmp / "serve.log", tmp) as url,
        httpx.Client(base_url=url, timeout=60) as http,
    ):
        response = upload_catalog(http, TRAVEL_CATALOG.read_bytes())
        assert response.status_code == 201, response.text
        catalog_id = response.json()["id"]
        llm_job = {
            "n": LLM_SAMPLES,
            "seed": 1,
            "generator": "llm",
            "verify": ["format"],
            "generator_options": {
                "backend": "openai",
                "model": "scripted",
                "base_url": llm.base_url,
                "max_tokens": 32,
                "max_retries": 3,
            },
        }
        jobs = []
        for spec in (TEMPLATE_JOB, TEMPLATE_JOB, llm_job):
            submitted = http.post("/v1/jobs", json={"catalog_id": catalog_id, **spec})
            assert submitted.status_code == 202, submitted.text
            jobs.append(wait_for_job_over_http(http, submitted.json()["id"]))
        exported = {}
        for fmt in ("unified", "parquet"):
            body = http.get(f"/v1/jobs/{jobs[0]['id']}/export", params={"format": fmt})
            assert body.status_code == 200, body.text
            exported[fmt] = jobs[0]["counts"]["accepted"]
        yield Ran(url, jobs, scrape(f"{url}/metrics"), llm, answers, exported)


def test_the_jobs_ran_as_the_test_needs(ran: Ran) -> None:
    assert [job["status"] for job in ran.jobs] == ["succeeded", "succeeded", "succeeded"]
    first, second, llm = (job["counts"] for job in ran.jobs)
    assert first["accepted"] > 0
    assert second["rejected"] > 0 and second["by_reason"].get("duplicate", 0) > 0
    assert llm["rejected"] == LLM_SAMPLES
    assert ran.answers.served["busy"] > 0


def test_sample_counters_equal_the_jobs_counts(ran: Ran) -> None:
    counts = [job["counts"] for job in ran.jobs]
    metrics = ran.scrape
    generated = metrics.by("actionforge_samples_generated_total", "generator")
    assert generated == {("template",): 120, ("llm",): LLM_SAMPLES}
    assert sum(generated.values()) == sum(c["generated"] for c in counts)
    accepted = metrics.by("actionforge_samples_accepted_total", "generator")
    assert sum(accepted.values()) == sum(c["accepted"] for c in counts)
    assert accepted[("template",)] == counts[0]["accepted"] + counts[1]["accepted"]

    rejected: Counter[tuple[str, str]] = Counter()
    for job_counts in counts:
        for rejection in job_counts["rejections"]:
            rejected[(rejection["stage"], rejection["reason"])] += rejection["samples"]
    assert metrics.by("actionforge_samples_rejected_total", "stage", "reason") == rejected
    assert sum(rejected.values()) == sum(c["rejected"] for c in counts)

    verdicts: Counter[tuple[str, str]] = Counter()
    for job_counts in counts:
        for stage, judged in job_counts["by_stage"].items():
            verdicts[(stage, "passed")] += judged["passed"]
            verdicts[(stage, "rejected")] += judged["rejected"]
    found = metrics.by("actionforge_stage_verdicts_total", "stage", "outcome")
    assert found == +verdicts  # unary + drops the zeros


def test_histograms_saw_every_batch(ran: Ran) -> None:
    metrics = ran.scrape
    batches = metrics.by("actionforge_generation_duration_seconds_count", "generator")
    assert batches == {("template",): 6, ("llm",): 1}
    assert metrics.total("actionforge_generation_duration_seconds_sum") > 0
    # The first stage of a job sees every batch; dedup judges each batch that has survivors.
    stage_batches = metrics.by("actionforge_stage_duration_seconds_count", "stage")
    assert stage_batches[("query",)] == 6
    assert stage_batches[("generation",)] == 1
    assert stage_batches[("dedup",)] >= 3
    for (stage,), observed in stage_batches.items():
        infinite = metrics.total(
            "actionforge_stage_duration_seconds_bucket", stage=stage, le="+Inf"
        )
        assert infinite == observed, stage
        assert metrics.total("actionforge_stage_duration_seconds_sum", stage=stage) > 0, stage


def test_jobs_by_status_and_queues_are_read_at_the_scrape(ran: Ran) -> None:
    metrics = ran.scrape
    assert metrics.by("actionforge_jobs", "status") == {("succeeded",): 3}
    assert {labels["status"] for labels, _ in metrics.samples["actionforge_jobs"]} == {
        "queued",
        "running",
        "succeeded",
        "failed",
        "cancelled",
    }
    queues = {
        labels["queue"]: value for labels, value in metrics.samples["actionforge_queue_messages"]
    }
    assert queues == {"generate": 0, "verify": 0, "train": 0}
    assert metrics.by("actionforge_dependency_up", "dependency") == {
        ("database",): 1,
        ("broker",): 1,
    }


def test_llm_requests_tokens_and_errors_equal_what_the_server_saw(ran: Ran) -> None:
    metrics = ran.scrape
    server = server_label(ran.llm.base_url)
    served = ran.answers.served
    assert metrics.by("actionforge_llm_requests_total", "base_url", "outcome") == {
        (server, "failed"): served["busy"],
        (server, "stop"): served["unparseable"],
        (server, "length"): served["length"],
    }
    assert metrics.total("actionforge_llm_requests_total") == len(ran.llm.requests)
    assert metrics.by("actionforge_llm_errors_total", "kind") == {("http_status",): served["busy"]}
    assert metrics.by("actionforge_llm_tokens_total", "kind") == {
        ("prompt",): ran.answers.prompt_tokens,
        ("completion",): ran.answers.completion_tokens,
    }
    tries = metrics.total("actionforge_llm_request_duration_seconds_count", base_url=server)
    assert tries == len(ran.llm.requests)
    usage = ran.jobs[2]["counts"]["generation"]
    assert usage["prompt_tokens"] == ran.answers.prompt_tokens


def test_exports_count_their_rows(ran: Ran) -> None:
    assert ran.scrape.by("actionforge_export_rows_total", "format") == {
        ("unified",): ran.exported["unified"],
        ("parquet",): ran.exported["parquet"],
    }


def dashboard_metric_names() -> set[str]:
    """Every metric name the Grafana dashboard's queries ask for."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert exprs, "the dashboard has no queries"
    return {name for expr in exprs for name in re.findall(r"\bactionforge_\w+", expr)}


def test_every_metric_the_grafana_dashboard_asks_for_is_in_a_real_scrape(ran: Ran) -> None:
    asked = dashboard_metric_names()
    assert len(asked) >= 12
    assert sorted(asked - ran.scrape.names()) == []
    dashboard = json.loads(DASHBOARD.read_text())
    sources = {json.dumps(panel["datasource"], sort_keys=True) for panel in dashboard["panels"]}
    provisioned = (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yaml").read_text()
    assert sources == {json.dumps({"type": "prometheus", "uid": "actionforge-prometheus"})}
    assert "uid: actionforge-prometheus" in provisioned
