"""The `Idempotency-Key` header of the routes that create something: the first answer to a key
is stored in the same transaction as what it created, and a retry with the same key and the
same request gets that answer again instead of creating a second one."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Header
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from service.db.models import IdempotentRequestRecord, as_utc, utcnow
from service.errors import InvalidRequest

HEADER = "Idempotency-Key"

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=HEADER,
        pattern=r"^[\x21-\x7e]{1,255}$",
        description="Any 1-255 printable ASCII characters, new for each request meant to "
        "create something (a UUID). A retry with the same key and the same request gets the "
        "first answer again, creating nothing; the same key with another request is a 422.",
    ),
]


def request_digest(*parts: bytes | str | None) -> str:
    """The SHA-256 of the request's parts, each length-prefixed so no two splits collide."""
    digest = hashlib.sha256()
    for part in parts:
        data = b"" if part is None else part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def replay(
    session: Session, route: str, key: str, digest: str, kept_hours: float
) -> JSONResponse | None:
    """The stored first answer to `key` on `route`, or None when the key is new or its answer
    is older than `kept_hours` (then forgotten, so the key creates anew); raises
    `InvalidRequest` when the key came with another request."""
    record = session.get(IdempotentRequestRecord, (route, key))
    if record is None:
        return None
    if as_utc(record.created_at) < utcnow() - timedelta(hours=kept_hours):
        session.delete(record)
        session.flush()
        return None
    if record.request_sha256 != digest:
        raise InvalidRequest(
            f"header {HEADER}: the key '{key}' was already used with a different request; "
            "send a new key for a new request, or the same request to get its first answer"
        )
    headers = {"Location": record.location} if record.location else None
    return JSONResponse(record.body, status_code=record.status_code, headers=headers)


def remember(
    session: Session,
    route: str,
    key: str,
    digest: str,
    status_code: int,
    body: dict[str, Any],
    location: str | None = None,
) -> None:
    """Store the answer to `key` in the session's transaction (the caller commits it with what
    the request created; a concurrent request with the same key then fails to commit)."""
    session.add(
        IdempotentRequestRecord(
            route=route,
            key=key,
            request_sha256=digest,
            status_code=status_code,
            body=body,
            location=location,
        )
    )
