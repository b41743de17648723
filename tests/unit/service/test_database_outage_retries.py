"""A batch task whose database does not answer waits for it (retries with a growing delay,
about 90 s in all), then leaves the batch open for the sweep: it never fails the batch with an
error it could not store, nor counts it as handled."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from service.queue import tasks
from service.settings import Settings


class Retry(Exception):
    def __init__(self, countdown: float) -> None:
        self.countdown = countdown


class FakeTask:
    def __init__(self, retries: int, tmp_path: Path) -> None:
        settings = Settings(data_dir=tmp_path)
        self.app = SimpleNamespace(settings=settings)
        self.request = SimpleNamespace(retries=retries, id="task-1")

    def retry(self, exc: Exception, countdown: float, max_retries: int) -> Retry:
        return Retry(countdown)


def outage(*_: Any) -> bool:
    raise OperationalError("SELECT 1", {}, Exception("connection refused"))


@pytest.fixture
def failed_batches(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    failed: list[str] = []
    monkeypatch.setattr(
        tasks.batches, "fail_batch", lambda _s, batch_id, _e: failed.append(batch_id)
    )
    return failed


def test_an_outage_is_waited_for_with_growing_delays(
    tmp_path: Path, failed_batches: list[str]
) -> None:
    waits = []
    for retries in range(tasks.DATABASE_RETRIES):
        with pytest.raises(Retry) as retry:
            tasks._run(FakeTask(retries, tmp_path), outage, "b1")
        waits.append(retry.value.countdown)
    assert waits == [1, 2, 4, 8, 15, 15, 15, 15, 15]
    assert sum(waits) > 15 * 5, "outlasts a restart of the database server"
    assert failed_batches == []


def test_past_the_retries_the_batch_is_left_to_the_sweep(
    tmp_path: Path, failed_batches: list[str]
) -> None:
    assert tasks._run(FakeTask(tasks.DATABASE_RETRIES, tmp_path), outage, "b1") is None
    assert failed_batches == [], "nothing was stored: the batch stays open for the sweep"


def test_a_failure_that_cannot_be_stored_is_left_to_the_sweep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*_: Any) -> bool:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(tasks.batches, "fail_batch", outage)
    assert tasks._run(FakeTask(tasks.MAX_RETRIES, tmp_path), crash, "b1") is None


def test_only_connection_errors_count_as_an_outage() -> None:
    assert tasks.database_unreachable(OperationalError("x", {}, Exception("gone")))
    assert not tasks.database_unreachable(IntegrityError("x", {}, Exception("duplicate")))
    assert not tasks.database_unreachable(ZeroDivisionError())
