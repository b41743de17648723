"""The FastAPI application: routes under `/v1`, OpenAPI docs at `/docs`, the dashboard at `/`."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI

from service.api.deps import require_api_key
from service.api.documented_errors import DATABASE_AWAY, INVALID, KEY_REQUIRED
from service.api.errors import install_error_handlers
from service.api.openapi_document import publish_openapi_31
from service.api.request_text import refuse_unsafe_text
from service.api.routes import catalogs, events, export, health, jobs, metrics, models, samples
from service.dashboard import install_dashboard
from service.db.engine import make_engine, session_factory
from service.settings import Settings

API_PREFIX = "/v1"
THREAD_SWITCH_INTERVAL = 0.001
"""Seconds a thread runs before one waiting for the interpreter gets its turn (Python's default
is 0.005): streamed exports run in threads, and a status request waits a turn at each step it
takes; two exports at once made a turn a 0.4 s wait at p99 (tests/bench/bench_export.py)."""


def create_app(settings: Settings) -> FastAPI:
    """An API app over the database `settings` name. It does not migrate the database: `serve`
    does that before it starts the app."""

    engine = make_engine(settings.resolved_database_url())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        before = sys.getswitchinterval()
        sys.setswitchinterval(min(before, THREAD_SWITCH_INTERVAL))
        yield
        sys.setswitchinterval(before)
        engine.dispose()

    app = FastAPI(
        title="ActionForge",
        summary="Verified function-calling training data from your API catalogs.",
        version=health.package_version(),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    app.state.metrics_registry = metrics.metrics_registry(app.state.sessions, settings)
    install_error_handlers(app)

    open_routes = APIRouter(prefix=API_PREFIX)  # health only, which takes no input
    open_routes.include_router(health.router)
    keyed_routes = APIRouter(
        prefix=API_PREFIX,
        # In this order: a caller without a key learns nothing about its input.
        dependencies=[Depends(require_api_key), Depends(refuse_unsafe_text)],
        responses={**KEY_REQUIRED, **INVALID, **DATABASE_AWAY},
    )
    for module in (catalogs, jobs, events, samples, export, models):
        keyed_routes.include_router(module.router)
    app.include_router(open_routes)
    app.include_router(keyed_routes)
    app.include_router(
        metrics.router,
        dependencies=[Depends(metrics.require_metrics_key), Depends(refuse_unsafe_text)],
        responses={**KEY_REQUIRED, **INVALID},
    )
    install_dashboard(app)
    publish_openapi_31(app)
    return app
