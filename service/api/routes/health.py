"""`GET /v1/health`: the one route that needs no API key."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from service.api.deps import SessionDep
from service.api.schemas import Health, Message

router = APIRouter(tags=["health"])


def package_version() -> str:
    """The installed version of ActionForge."""
    try:
        return version("actionforge")
    except PackageNotFoundError:
        return "unknown"


@router.get("/health", responses={503: {"model": Message}})
def health(session: SessionDep) -> Health:
    """Answer when the API is up and its database answers a query."""
    try:
        session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"the database does not answer ({type(exc).__name__}); check AF_DATABASE_URL "
            "and that the database is running",
        ) from None
    bind = session.get_bind()
    return Health(database=bind.dialect.name, version=package_version())
