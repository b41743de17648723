"""A real API server per database (SQLite and PostgreSQL), called over real HTTP with httpx."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from api_support import Api, running_api

from service.settings import Settings


@pytest.fixture(scope="session")
def sqlite_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data_dir = tmp_path_factory.mktemp("api-sqlite")
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'af.db'}")
    with running_api(settings) as api:
        yield api


@pytest.fixture(scope="session")
def postgresql_api(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("api-postgresql"), database_url=postgres_url
    )
    with running_api(settings) as api:
        yield api


@pytest.fixture(params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest) -> Api:
    """The API served over SQLite, then over PostgreSQL."""
    served: Api = request.getfixturevalue(f"{request.param}_api")
    return served


@pytest.fixture
def own_api(tmp_path: Path) -> Iterator[Callable[..., Api]]:
    """Start an API of this test's own on SQLite, with the settings the test changes."""
    with ExitStack() as stack:

        def start(**changes: Any) -> Api:
            database_url = f"sqlite:///{tmp_path / 'af.db'}"
            settings = Settings(data_dir=tmp_path, database_url=database_url, **changes)
            return stack.enter_context(running_api(settings))

        yield start
