"""The error responses of the OpenAPI document, shared by the routes that can give them, so the
document lists every status the API answers with the body it has."""

from __future__ import annotations

from typing import Any

from service.api.schemas import Message, RequestRefused

Responses = dict[int | str, dict[str, Any]]

KEY_REQUIRED: Responses = {
    401: {
        "model": Message,
        "description": "No X-API-Key header, or a key this server does not know (only when "
        "AF_API_KEYS is set).",
    }
}

DATABASE_AWAY: Responses = {
    503: {
        "model": Message,
        "description": "The database does not answer; nothing was changed. Try again after "
        "the Retry-After header's seconds.",
    }
}

UNREADABLE_BODY: Responses = {
    400: {
        "model": RequestRefused,
        "description": "The body cannot be read: not UTF-8, not JSON, or NaN/Infinity.",
    }
}


def refused(description: str) -> Responses:
    """A 422 with the body validation errors and other refusals share."""
    return {422: {"model": RequestRefused, "description": description}}


INVALID = refused(
    "A parameter or field is not valid (a control character, out of bounds, ...); `errors` "
    "names each."
)


def not_found(description: str = "Nothing has the id in the path.") -> Responses:
    """A 404 naming the id that matched nothing."""
    return {404: {"model": Message, "description": description}}
