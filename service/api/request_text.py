"""The check every route runs before its own: no parameter and no string of a JSON body holds a
character `service.api.safe_text` refuses (a 422 naming each field)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from service.api.safe_text import TextRule, json_problems, text_problem


async def refuse_unsafe_text(request: Request) -> None:
    """Raise a validation error listing every path parameter, query parameter and JSON body
    string that holds a refused character. Runs after the API key check, before the route's
    own parameters are validated, so no such text reaches the database."""
    problems = list(_parameter_problems(request))
    if await _has_json_body(request):
        problems.extend(json_problems(await request.json(), ("body",)))
    if problems:
        raise RequestValidationError(problems)


def _parameter_problems(request: Request) -> Iterator[dict[str, Any]]:
    given = [("path", name, str(value)) for name, value in request.path_params.items()]
    given += [("query", name, value) for name, value in request.query_params.multi_items()]
    for source, name, value in given:
        problem = text_problem(value, TextRule.PARAMETER, (source, name))
        if problem is not None:
            yield problem


async def _has_json_body(request: Request) -> bool:
    """Whether the route reads a JSON body and the request sent one. FastAPI has parsed it by now
    (and answered 400 if it could not), so `request.json()` gives the cached result. Routes that
    read their body themselves (catalog uploads, with their size limit) check their own."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or route.body_field is None:
        return False
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    is_json = media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )
    return is_json and bool(await request.body())
