"""Settings come from AF_* variables and .env, default to the embedded setup, and refuse bad
values with a line that names the setting and says why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.settings import Settings, settings_error_line

GOOD_KEY = "k3y-0f-at-least-sixteen-characters"
OTHER_KEY = "an0ther-k3y-0f-at-least-sixteen"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No AF_* variable from the caller's shell, and a working directory without a .env file."""
    for name in list(os.environ):
        if name.startswith("AF_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def refusal(**environment: str) -> str:
    """The error line for `Settings()` under these environment variables."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        with pytest.raises(ValidationError) as caught:
            Settings()
    return settings_error_line(caught.value)


def test_defaults_are_the_embedded_setup_in_the_data_directory(tmp_path: Path) -> None:
    settings = Settings()

    data_dir = (tmp_path / "data").resolve()
    assert settings.resolved_database_url() == f"sqlite:///{data_dir / 'actionforge.db'}"
    assert settings.embedded_broker
    assert settings.resolved_broker_url() == f"sqla+sqlite:///{data_dir / 'queue.db'}"
    assert settings.api_keys == []
    assert settings.batch_size == 200


def test_af_variables_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AF_DATA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("AF_DATABASE_URL", "postgresql://af:secret@db:5432/actionforge")
    monkeypatch.setenv("AF_BROKER_URL", "redis://redis:6379/0")
    monkeypatch.setenv("AF_BATCH_SIZE", "200")
    monkeypatch.setenv("AF_TASK_TIME_LIMIT", "120")

    settings = Settings()

    assert settings.data_dir == tmp_path / "elsewhere"
    assert settings.resolved_database_url() == "postgresql://af:secret@db:5432/actionforge"
    assert not settings.embedded_broker
    assert settings.resolved_broker_url() == "redis://redis:6379/0"
    assert settings.batch_size == 200
    assert settings.task_time_limit == 120


def test_the_data_directory_moves_the_embedded_database_and_queue(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AF_DATA_DIR", str(tmp_path / "state"))

    settings = Settings()

    assert settings.resolved_database_url() == f"sqlite:///{tmp_path / 'state' / 'actionforge.db'}"
    assert settings.resolved_broker_url() == f"sqla+sqlite:///{tmp_path / 'state' / 'queue.db'}"


@pytest.mark.parametrize(
    "value",
    [f"{GOOD_KEY},{OTHER_KEY}", f" {GOOD_KEY} , {OTHER_KEY} ,", f'["{GOOD_KEY}", "{OTHER_KEY}"]'],
    ids=["comma-separated", "spaces-and-trailing-comma", "json-list"],
)
def test_api_keys_are_read_as_a_list(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("AF_API_KEYS", value)

    assert Settings().api_keys == [GOOD_KEY, OTHER_KEY]


def test_a_dotenv_file_is_read_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        "AF_BROKER_URL=redis://127.0.0.1:6379/3\n"
        f"AF_API_KEYS={GOOD_KEY}\n"
        "AF_BATCH_SIZE=7\n"
        "UNRELATED=ignored\n"
    )
    monkeypatch.setenv("AF_BATCH_SIZE", "9")

    settings = Settings()

    assert settings.resolved_broker_url() == "redis://127.0.0.1:6379/3"
    assert settings.api_keys == [GOOD_KEY]
    assert settings.batch_size == 9


def test_a_batch_size_of_zero_is_refused() -> None:
    assert refusal(AF_BATCH_SIZE="0") == (
        "invalid settings: AF_BATCH_SIZE: Input should be greater than or equal to 1 (got '0')"
    )


def test_a_batch_size_that_is_not_a_number_is_refused() -> None:
    line = refusal(AF_BATCH_SIZE="fifty")

    assert line.startswith("invalid settings: AF_BATCH_SIZE: ")
    assert "valid integer" in line
    assert "'fifty'" in line


def test_a_database_that_is_neither_sqlite_nor_postgresql_is_refused_without_its_password() -> None:
    line = refusal(AF_DATABASE_URL="mysql://af:hunter2@db/actionforge")

    assert line == (
        "invalid settings: AF_DATABASE_URL must be a sqlite:// or postgresql:// URL, "
        "got 'mysql://af:***@db/actionforge'"
    )


def test_a_database_setting_that_is_not_a_url_is_refused() -> None:
    line = refusal(AF_DATABASE_URL="the usual database")

    assert line.startswith("invalid settings: AF_DATABASE_URL is not a URL; give e.g. postgresql")
    assert "the usual database" not in line


@pytest.mark.parametrize("key", ["changeme", "xxx", "short-key-123"])
def test_a_placeholder_or_short_api_key_is_refused_without_echoing_it(key: str) -> None:
    line = refusal(AF_API_KEYS=f"{GOOD_KEY},{key}")

    assert line.startswith(
        "invalid settings: AF_API_KEYS holds a placeholder or a key shorter than 16 characters"
    )
    assert "secrets.token_urlsafe()" in line
    assert key not in line
    assert GOOD_KEY not in line


def test_api_keys_that_look_like_broken_json_are_refused() -> None:
    line = refusal(AF_API_KEYS=f'["{GOOD_KEY}"')

    assert line.startswith("invalid settings: AF_API_KEYS starts with '[' but is not a JSON list")
    assert "comma-separated" in line


def test_every_refused_setting_is_named_in_one_line() -> None:
    line = refusal(AF_BATCH_SIZE="0", AF_TASK_TIME_LIMIT="1", AF_DATABASE_URL="mysql://db/x")

    assert "\n" not in line
    assert "AF_BATCH_SIZE: " in line
    assert "AF_TASK_TIME_LIMIT: Input should be greater than or equal to 10 (got '1')" in line
    assert "AF_DATABASE_URL must be a sqlite:// or postgresql:// URL" in line
