"""Schemathesis against the real ASGI app, in-process, on SQLite and on PostgreSQL: requests made
from the published OpenAPI document (valid ones, boundary values, and invalid ones: NUL bytes,
huge numbers, wrong types, bodies that are not JSON) must never get a 5xx, and every response
must have a status and a body the document gives for that operation.

Bounded: a few generated examples per operation (plus schemathesis's boundary cases), the same
ones on every run, no shrinking and no example database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.checks import not_a_server_error
from schemathesis.config import HealthCheck
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from service.api import create_app
from service.db.migrate import upgrade_to_head
from service.settings import Settings

EXAMPLES_PER_OPERATION = 8
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]


def published_document() -> dict[str, object]:
    """The OpenAPI document the app serves; it does not depend on the database or settings."""
    return create_app(Settings(database_url="sqlite://")).openapi()


schema = schemathesis.openapi.from_dict(published_document())
schema.config.generation.update(
    max_examples=EXAMPLES_PER_OPERATION, deterministic=True, no_shrink=True, database="none"
)
# A shared machine must not fail the run for being slow.
schema.config.update(suppress_health_check=[HealthCheck.all])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FastAPI]:
    """The app over a migrated database: a SQLite file, then the session's PostgreSQL one."""
    data_dir: Path = tmp_path_factory.mktemp(f"schemathesis-{request.param}")
    if request.param == "sqlite":
        database_url = f"sqlite:///{data_dir / 'af.db'}"
    else:
        database_url = request.getfixturevalue("postgres_url")
    settings = Settings(data_dir=data_dir, database_url=database_url)
    upgrade_to_head(settings.resolved_database_url())
    served = create_app(settings)
    yield served
    served.state.engine.dispose()


@schema.parametrize()
def test_every_response_is_documented_and_none_is_a_server_error(
    case: schemathesis.Case, app: FastAPI
) -> None:
    case.call_and_validate(app=app, checks=CHECKS)
