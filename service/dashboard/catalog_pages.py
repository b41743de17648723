"""The catalogs (`/catalogs`) and one catalog's page (`/catalogs/{id}`): its tools with their
parameter schemas, and the jobs made from it; read with the REST routes' own functions."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.api.deps import SessionDep
from service.api.pagination import Offset
from service.api.routes.catalogs import list_catalogs, read_catalog
from service.api.routes.jobs import list_jobs
from service.api.schemas import JobProgress
from service.dashboard.rendering import PageRoute, render
from service.db.models import CatalogRecord

router = APIRouter(route_class=PageRoute, include_in_schema=False)

CATALOGS_PER_PAGE = 50
JOBS_PER_CATALOG = 50


@router.get("/catalogs")
def catalogs_page(request: Request, session: SessionDep, offset: Offset = 0) -> Response:
    """The stored catalogs, newest first, with their tools' names and how many jobs each has."""
    page = list_catalogs(session, limit=CATALOGS_PER_PAGE, offset=offset)
    jobs = {
        catalog.id: list_jobs(
            session, job_status=None, catalog_id=catalog.id, limit=1, offset=0
        ).count
        for catalog in page.data
    }
    context = {
        "catalogs": page.data,
        "count": page.count,
        "jobs": jobs,
        "offset": offset,
        "per_page": CATALOGS_PER_PAGE,
    }
    return render(request, "catalogs.html", context)


@router.get("/catalogs/{catalog_id}")
def catalog_page(request: Request, session: SessionDep, catalog_id: str) -> Response:
    """One catalog: each tool with its parameter schema, and the jobs made from it."""
    catalog = read_catalog(session, catalog_id)
    jobs = list_jobs(
        session, job_status=None, catalog_id=catalog_id, limit=JOBS_PER_CATALOG, offset=0
    )
    context = {
        "catalog": catalog,
        "jobs": [JobProgress.model_validate(job.model_dump()) for job in jobs.data],
        "jobs_count": jobs.count,
    }
    return render(request, "catalog.html", context)


def catalog_names(session: Session, ids: set[str]) -> dict[str, str]:
    """The names of the catalogs with these ids."""
    rows = session.execute(
        select(CatalogRecord.id, CatalogRecord.name).where(CatalogRecord.id.in_(ids))
    )
    return {catalog_id: name for catalog_id, name in rows}
