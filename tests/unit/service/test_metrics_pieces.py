"""The pure parts of the metrics: server labels without secrets, what kind of failure a try had,
counts that wait for their transaction's commit, and which metric files belong to processes
that are gone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from llm.base import BackendUnavailable, LLMResult
from llm.http_session import Unreachable
from llm.metrics import error_kind, record_failure, record_result, server_label
from service.metrics.multiprocess import dead_process_files, process_is_running
from service.metrics.recorded import REJECTED, count_on_commit


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(
    ("base_url", "label"),
    [
        ("http://vllm:8000/v1", "http://vllm:8000/v1"),
        ("http://vllm:8000/v1/", "http://vllm:8000/v1"),
        ("https://user:s3cret@llm.example.com/v1?key=abc#x", "https://llm.example.com/v1"),
        ("http://[::1]:8001/v1", "http://[::1]:8001/v1"),
    ],
)
def test_a_server_label_keeps_no_credentials_or_query(base_url: str, label: str) -> None:
    assert server_label(base_url) == label


def raised_from(exc: Exception, cause: BaseException | None) -> Exception:
    try:
        raise exc from cause
    except Exception as raised:
        return raised


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (raised_from(RuntimeError("no answer"), TimeoutError()), "timeout"),
        (raised_from(RuntimeError("no connection"), Unreachable("refused")), "connection"),
        (raised_from(RuntimeError("HTTP 503: busy"), None), "http_status"),
        (raised_from(BackendUnavailable("HTTP 401"), None), "refused"),
        (
            raised_from(BackendUnavailable("not a completion"), KeyError("choices")),
            "invalid_response",
        ),
    ],
)
def test_a_failed_try_is_named_by_its_kind(exc: Exception, kind: str) -> None:
    assert error_kind(exc) == kind


def test_tries_count_requests_tokens_and_errors_per_server() -> None:
    server = "http://counted.test:9/v1"
    before = {
        "stop": value("actionforge_llm_requests_total", base_url=server, outcome="stop"),
        "error": value("actionforge_llm_requests_total", base_url=server, outcome="error"),
        "failed": value("actionforge_llm_requests_total", base_url=server, outcome="failed"),
        "prompt": value("actionforge_llm_tokens_total", base_url=server, kind="prompt"),
        "answer_error": value("actionforge_llm_errors_total", base_url=server, kind="answer_error"),
        "timeout": value("actionforge_llm_errors_total", base_url=server, kind="timeout"),
    }
    record_result(server + "/", LLMResult(text="{}", finish_reason="stop", prompt_tokens=7), 0.2)
    record_result(server, LLMResult(text="", finish_reason="error", error="HTTP 400"), 0.1)
    record_failure(server, raised_from(RuntimeError("late"), TimeoutError()), 30.0)
    after = {
        "stop": value("actionforge_llm_requests_total", base_url=server, outcome="stop"),
        "error": value("actionforge_llm_requests_total", base_url=server, outcome="error"),
        "failed": value("actionforge_llm_requests_total", base_url=server, outcome="failed"),
        "prompt": value("actionforge_llm_tokens_total", base_url=server, kind="prompt"),
        "answer_error": value("actionforge_llm_errors_total", base_url=server, kind="answer_error"),
        "timeout": value("actionforge_llm_errors_total", base_url=server, kind="timeout"),
    }
    assert {k: after[k] - before[k] for k in after} == {
        "stop": 1,
        "error": 1,
        "failed": 1,
        "prompt": 7,
        "answer_error": 1,
        "timeout": 1,
    }
    assert value("actionforge_llm_request_duration_seconds_count", base_url=server) >= 3


def test_counts_wait_for_the_commit_and_vanish_with_a_rollback() -> None:
    labels = {"stage": "unit-test-stage", "reason": "unit_test_reason"}
    before = value("actionforge_samples_rejected_total", **labels)
    with Session(create_engine("sqlite://")) as session:
        session.execute(text("SELECT 1"))
        count_on_commit(session, REJECTED, tuple(labels.values()), 5)
        assert value("actionforge_samples_rejected_total", **labels) == before
        session.rollback()
        session.execute(text("SELECT 1"))
        count_on_commit(session, REJECTED, tuple(labels.values()), 3)
        session.commit()
        session.execute(text("SELECT 1"))
        session.commit()  # nothing pending: nothing added again
    assert value("actionforge_samples_rejected_total", **labels) == before + 3


def test_only_files_of_processes_that_are_gone_are_stale(tmp_path: Path) -> None:
    names = [
        "counter_11.db",
        "histogram_11.db",
        "counter_12.db",
        "gauge_livesum_13.db",
        "notes.txt",
        "counter_x.db",
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    running = {12}
    stale = dead_process_files(tmp_path, lambda pid: pid in running)
    assert [path.name for path in stale] == [
        "counter_11.db",
        "gauge_livesum_13.db",
        "histogram_11.db",
    ]


def test_a_process_that_exited_is_not_running() -> None:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert process_is_running(os.getpid())
    assert not process_is_running(int(child.stdout))
