from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli.app import app
from service.settings import get_settings

runner = CliRunner()


def test_worker_with_an_unknown_queue_says_which_queues_exist() -> None:
    result = runner.invoke(app, ["worker", "-Q", "generate,gpu"])
    assert result.exit_code == 2
    assert (
        "-Q: unknown queue 'gpu'; give a comma-separated list of generate, verify, train"
        in result.stderr
    )


def test_worker_with_bad_settings_says_which_setting_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AF_DATABASE_URL", "mysql://db/actionforge")
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["worker"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "AF_DATABASE_URL must be a sqlite:// or postgresql:// URL" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_worker_that_cannot_reach_its_database_says_which_and_what_to_check(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AF_DATABASE_URL", "postgresql://postgres:secret@127.0.0.1:1/actionforge")
    monkeypatch.setenv("AF_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["worker"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1
    assert line.startswith("error: cannot ")
    assert "the database postgresql://postgres:***@127.0.0.1:1/actionforge" in line
    assert "AF_DATABASE_URL" in line
    assert "secret" not in line
