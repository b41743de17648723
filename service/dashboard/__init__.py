"""The dashboard: server-rendered pages of the jobs, catalogs and model versions, served at `/`
by the API's own app, with their style sheet and script shipped in the package."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from service.api.request_text import refuse_unsafe_text
from service.dashboard import catalog_pages, job_pages, login, model_pages
from service.dashboard.rendering import require_session

STATIC_PATH = "/static"


def install_dashboard(app: FastAPI) -> None:
    """Add the pages, the login form and the static files to `app`. Every page needs the
    session of a known key when AF_API_KEYS is set, and refuses unsafe text in its
    parameters as the API does."""
    app.include_router(login.router)
    guarded = [Depends(require_session), Depends(refuse_unsafe_text)]
    for module in (job_pages, catalog_pages, model_pages):
        app.include_router(module.router, dependencies=guarded)
    app.mount(STATIC_PATH, StaticFiles(packages=[("service.dashboard", "static")]), name="static")
