"""`GET /v1/health`: the one route that needs no API key."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from service.api.deps import SessionDep, SettingsDep
from service.api.schemas import Health, Message
from service.pipeline.leases import stranded_batches, workers_seen_since
from service.queue.app import celery_for
from service.queue.broker_status import waiting_messages
from service.queue.sending import GENERATE_QUEUE, VERIFY_QUEUE

router = APIRouter(tags=["health"])

BROKER_TIMEOUT_SECONDS = 0.5
# A worker counts as live when its sweep timer said so within this many sweep intervals.
LIVE_WORKER_INTERVALS = 3


def package_version() -> str:
    """The installed version of ActionForge."""
    try:
        return version("actionforge")
    except PackageNotFoundError:
        return "unknown"


@router.get(
    "/health",
    responses={
        503: {"model": Message, "description": "The database or the broker does not answer."}
    },
)
def health(session: SessionDep, settings: SettingsDep) -> Health:
    """Answer when the API is up and its database and broker answer; report the live workers,
    the messages waiting and the batches stranded (idle past their lease, which the next
    sweep sends again)."""
    try:
        session.execute(text("SELECT 1"))
        workers = workers_seen_since(
            session, LIVE_WORKER_INTERVALS * settings.sweep_interval_seconds
        )
        stranded = stranded_batches(session, settings.batch_lease_seconds)
    except SQLAlchemyError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"the database does not answer ({type(exc).__name__}); check AF_DATABASE_URL "
            "and that the database is running",
        ) from None
    try:
        waiting = waiting_messages(
            celery_for(settings), [GENERATE_QUEUE, VERIFY_QUEUE], BROKER_TIMEOUT_SECONDS
        )
    except Exception as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"the broker does not answer ({type(exc).__name__}); check AF_BROKER_URL and that "
            "the broker is running (submitted jobs are kept and sent once it is back)",
        ) from None
    return Health(
        database=session.get_bind().dialect.name,
        broker="embedded" if settings.embedded_broker else "ok",
        workers=workers,
        waiting_messages=sum(waiting.values()),
        stranded_batches=stranded,
        version=package_version(),
    )
