"""A real API server per database (SQLite and PostgreSQL), called over real HTTP with httpx;
and a real headless Chromium (Debian's) driven by Playwright for the dashboard's pages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from api_support import Api, running_api
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

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


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium (scripts/setup-tests installs it; Playwright never downloads
    a browser of its own). Per module: Playwright's sync API keeps an event loop running in the
    main thread while it is open, where later tests' `asyncio.run` would find it."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing; install it with scripts/setup-tests "
            "(apt-get install chromium chromium-driver)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context's page; the test fails if a page logged an error (a script
    error, a refused resource, a Content-Security-Policy violation)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(f"script error: {error}"))

    def on_console(message: ConsoleMessage) -> None:
        # A page answered with 401 or 404 on purpose logs its own status; nothing else may.
        own_status = message.location.get("url") == opened.url and "status of 4" in message.text
        if message.type == "error" and not own_status:
            problems.append(f"console: {message.text} ({message.location.get('url')})")

    opened.on("console", on_console)
    yield opened
    context.close()
    assert problems == []
