"""The API served over real HTTP for tests: shared by the API tests and the job-engine tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from service.api import create_app
from service.api.server import BackgroundServer
from service.db.migrate import upgrade_to_head
from service.settings import Settings


@dataclass
class Api:
    """A running API: its base URL, an HTTP client of it, and its database."""

    url: str
    http: httpx.Client
    sessions: sessionmaker[Session]
    settings: Settings
    app: FastAPI


@contextmanager
def running_api(settings: Settings) -> Iterator[Api]:
    """Migrate the settings' database, serve an app over it, and give a client of it."""
    upgrade_to_head(settings.resolved_database_url())
    app = create_app(settings)
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        yield Api(server.url, http, app.state.sessions, settings, app)
