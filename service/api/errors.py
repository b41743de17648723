"""Error responses: every 4xx body is `{"detail": "<what is wrong and what to change>"}`.

Request validation errors also list each problem under `errors` (`{"in", "field", "message"}`):
422, or 400 when the body cannot be read (not UTF-8, not JSON, NaN or Infinity).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException

from service.api.safe_text import NOT_A_NUMBER, UNSAFE_CHARACTER
from service.db.engine import database_unreachable
from service.errors import NotFound
from unified.errors import ActionForgeError

DATABASE_RETRY_AFTER_SECONDS = 5

_PLACES = {
    "body": "field '{}' of the request body",
    "query": "query parameter '{}'",
    "path": "path parameter '{}'",
    "header": "header '{}'",
    "cookie": "cookie '{}'",
}

_FIXES = {
    "missing": "add it",
    "extra_forbidden": "remove it",
    "model_attributes_type": "send a JSON object",
    "dict_type": "send a JSON object",
    "model_type": "send a JSON object",
    "enum": "use one of those",
    "literal_error": "use one of those",
    UNSAFE_CHARACTER: "remove it",
    NOT_A_NUMBER: "send a number",
}

# Problems of the body's syntax: the request gets a 400, not a 422.
_UNREADABLE = {"json_invalid", NOT_A_NUMBER}


def describe_problem(error: dict[str, Any]) -> dict[str, str]:
    """One validation problem as `{in, field, message}`; the message names the field and the fix."""
    location = [str(part) for part in error.get("loc", ())]
    source, path = (location[0], location[1:]) if location else ("body", [])
    if error.get("type") == "json_invalid":
        return _json_problem(source, path, error)
    is_key = bool(path) and path[-1] == "[key]"
    if is_key:
        path = path[:-1]
    field = ".".join(path)
    kind = error.get("type", "")
    if is_key and len(path) > 1:
        owner = _PLACES.get(source, "'{}'").format(".".join(path[:-1]))
        where = f"key '{path[-1]}' of {owner}"
    elif field:
        where = _PLACES.get(source, "'{}'").format(field)
    elif source == "body":
        where = "the request body"
    else:
        where = f"the {source}"
    fix = _FIXES.get(kind, "fix its value")
    got = ""
    if kind != "missing" and "input" in error:
        got = f" (got {_short(error['input'])})"
    message = f"{where}: {error.get('msg', 'is not valid')}{got}; {fix}"
    return {"in": source, "field": field, "message": message}


def _json_problem(source: str, path: list[str], error: dict[str, Any]) -> dict[str, str]:
    at = f" at character {path[0]}" if path else ""
    reason = (error.get("ctx") or {}).get("error")
    because = f" ({reason})" if reason else ""
    message = f"the request {source} is not valid JSON{at}{because}; send valid JSON"
    return {"in": source, "field": "", "message": message}


def describe_problems(errors: Sequence[Any]) -> tuple[str, list[dict[str, str]]]:
    """A one-line summary of validation problems and the list of them, each described."""
    problems = [describe_problem(dict(error)) for error in errors]
    if not problems:
        return "the request is not valid; check it against the API docs at /docs", problems
    summary = problems[0]["message"]
    if len(problems) > 1:
        rest = "; ".join(problem["message"] for problem in problems[1:])
        summary += f" (and {len(problems) - 1} more: {rest})"
    return summary, problems


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    summary, problems = describe_problems(exc.errors())
    unreadable = any(error.get("type") in _UNREADABLE for error in exc.errors())
    code = status.HTTP_400_BAD_REQUEST if unreadable else status.HTTP_422_UNPROCESSABLE_CONTENT
    return JSONResponse({"detail": summary, "errors": problems}, code)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code != status.HTTP_400_BAD_REQUEST or exc.__cause__ is None:
        return await http_exception_handler(request, exc)
    # FastAPI's answer to a JSON body it could not decode: "There was an error parsing the body"
    # with the reason only in the exception's cause.
    cause = exc.__cause__
    if isinstance(cause, UnicodeDecodeError):
        reason = f"not {cause.encoding} text: {cause.reason} at byte {cause.start}"
    else:
        reason = str(cause) or type(cause).__name__
    message = f"the request body cannot be read ({reason}); send JSON encoded as UTF-8"
    problem = {"in": "body", "field": "", "message": message}
    return JSONResponse({"detail": message, "errors": [problem]}, exc.status_code)


async def _not_found(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status.HTTP_404_NOT_FOUND)


async def _invalid(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _database_error(_request: Request, exc: Exception) -> JSONResponse:
    if not database_unreachable(exc):
        raise exc
    message = (
        f"the database does not answer ({type(exc).__name__}); nothing was changed, try again "
        "shortly (GET /v1/health says when it is back)"
    )
    return JSONResponse(
        {"detail": message},
        status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


def install_error_handlers(app: FastAPI) -> None:
    """Map validation errors (422, or 400 for an unreadable body), FastAPI's 400 for a body it
    cannot decode, ActionForge errors (`NotFound`: 404; `InvalidRequest`, a `CatalogError`
    and every other: 422) and a database that does not answer (503 with Retry-After) to
    readable responses."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(ActionForgeError, _invalid)
    app.add_exception_handler(DBAPIError, _database_error)
