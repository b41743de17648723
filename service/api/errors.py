"""Error responses: every 4xx body is `{"detail": "<what is wrong and what to change>"}`.

Request validation errors also list each problem under `errors` (`{"in", "field", "message"}`):
422, or 400 when the body cannot be read (not UTF-8, not JSON, NaN or Infinity).
"""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException

from service.api.problems import describe_problems
from service.api.safe_text import NOT_A_NUMBER
from service.db.engine import database_unreachable
from service.errors import NotFound
from unified.errors import ActionForgeError

DATABASE_RETRY_AFTER_SECONDS = 5

# Problems of the body's syntax: the request gets a 400, not a 422.
_UNREADABLE = {"json_invalid", NOT_A_NUMBER}


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
