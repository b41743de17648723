"""Dependencies shared by the routes: settings, database sessions and the API key check."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import JobRecord
from service.errors import NotFound
from service.settings import Settings

API_KEY_HEADER = "X-API-Key"
SESSION_COOKIE = "actionforge_session"
"""The dashboard's session cookie: set once a page's login form was given a known key."""
READ_METHODS = frozenset({"GET", "HEAD"})

_api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="One of the keys in AF_API_KEYS; not needed when AF_API_KEYS is empty.",
)


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_sessions(request: Request) -> sessionmaker[Session]:
    """The app's session factory, for work that outlives the request (streamed exports)."""
    sessions: sessionmaker[Session] = request.app.state.sessions
    return sessions


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionsDep = Annotated[sessionmaker[Session], Depends(get_sessions)]


def get_session(sessions: SessionsDep) -> Iterator[Session]:
    """A database session for one request, closed when the route function returns."""
    with sessions() as session:
        yield session


# Closed when the route function returns, before the response is sent: a streamed export
# must not keep a connection (and its transaction) for as long as the download takes.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def session_token(key: str) -> str:
    """What the session cookie holds for `key`: a digest of it, so the cookie (which opens
    reads only) never carries the key itself, and dropping the key from AF_API_KEYS ends
    every session opened with it."""
    return hashlib.sha256(b"actionforge dashboard session\0" + key.encode()).hexdigest()


def _is_one_of(candidate: str, known: Iterable[str]) -> bool:
    return any(secrets.compare_digest(candidate.encode(), value.encode()) for value in known)


def is_known_key(key: str, settings: Settings) -> bool:
    """Whether `key` is one of AF_API_KEYS (compared in constant time)."""
    return _is_one_of(key, settings.api_keys)


def has_session(request: Request, settings: Settings) -> bool:
    """Whether the request carries the session cookie of a configured key (always true when
    no keys are set)."""
    if not settings.api_keys:
        return True
    token = request.cookies.get(SESSION_COOKIE)
    return token is not None and _is_one_of(token, map(session_token, settings.api_keys))


def require_api_key(
    request: Request,
    settings: SettingsDep,
    key: Annotated[str | None, Security(_api_key_header)],
) -> None:
    """Refuse the request with 401 unless it carries a configured API key (when any are set).

    A request that reads (GET, HEAD) may carry the dashboard's session cookie instead of the
    header: that is how the dashboard's pages follow a job's event stream."""
    if not settings.api_keys:
        return
    if key is None:
        if request.method in READ_METHODS and has_session(request, settings):
            return
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            f"missing the {API_KEY_HEADER} header; send one of the keys set in AF_API_KEYS",
        )
    if not is_known_key(key, settings):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            f"the {API_KEY_HEADER} header holds a key this server does not know; "
            "send one of the keys set in AF_API_KEYS",
        )


def get_job(session: SessionDep, job_id: str) -> JobRecord:
    """The job named in the path; 404 naming the id when there is none."""
    job = session.get(JobRecord, job_id)
    if job is None:
        raise NotFound(
            f"job '{job_id}' does not exist; list the jobs with GET /v1/jobs "
            "or submit one with POST /v1/jobs"
        )
    return job


JobDep = Annotated[JobRecord, Depends(get_job)]
