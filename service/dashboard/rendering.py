"""How the dashboard answers: Jinja templates shipped in the package (autoescaped: samples hold
any text a model wrote), the session check every page runs first, and errors as pages."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Mapping
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.exceptions import HTTPException

from service.api.deps import SettingsDep, has_session
from service.api.problems import describe_problems
from service.errors import NotFound
from unified.errors import ActionForgeError

environment = Environment(
    loader=PackageLoader("service.dashboard", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

# Pages run only the package's own script and style sheet: a sample's text that slipped past
# escaping still could not run.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def pretty_json(value: Any) -> str:
    """A value as indented JSON, for <pre> blocks."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def number(value: int | float | None, digits: int = 0) -> str:
    """1234 -> '1,234'; None -> '-'."""
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def percent(part: float | None, whole: float | None = 1.0) -> str:
    """A share as '12.5%'; '-' without a whole."""
    if part is None or not whole:
        return "-"
    return f"{100 * part / whole:.1f}%"


def with_query(request: Request, **changes: Any) -> str:
    """The current page's path with its query parameters changed (None drops one)."""
    params = {key: value for key, value in request.query_params.items() if key not in changes}
    params.update({key: value for key, value in changes.items() if value not in (None, "")})
    query = urlencode(params)
    return f"{request.url.path}?{query}" if query else request.url.path


environment.filters["pretty_json"] = pretty_json
environment.filters["number"] = number
environment.filters["percent"] = percent
environment.globals["with_query"] = with_query


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    status_code: int = status.HTTP_200_OK,
) -> Response:
    """The page `template` with `context`, the request and whether a session is in use."""
    settings = request.app.state.settings
    html = environment.get_template(template).render(
        request=request, keys_required=bool(settings.api_keys), **context
    )
    return Response(html, status_code, headers=SECURITY_HEADERS, media_type="text/html")


class LoginRequired(Exception):
    """The service has API keys and the request carries no session of one."""


def require_session(request: Request, settings: SettingsDep) -> None:
    """Let a page through when no API key is set or the request has the session cookie of a
    known key; otherwise answer the login form."""
    if not has_session(request, settings):
        raise LoginRequired


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path of this site only."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


class PageRoute(APIRoute):
    """A dashboard route: a missing session answers the login form (401), and the API's
    errors answer a page that says what to change, with the API's status."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                context = {"next": safe_next(target), "refused": False}
                return render(request, "login.html", context, status.HTTP_401_UNAUTHORIZED)
            except RequestValidationError as exc:
                summary, _ = describe_problems(exc.errors())
                return _error(request, status.HTTP_422_UNPROCESSABLE_CONTENT, summary)
            except NotFound as exc:
                return _error(request, status.HTTP_404_NOT_FOUND, str(exc))
            except ActionForgeError as exc:
                return _error(request, status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc))
            except HTTPException as exc:
                return _error(request, exc.status_code, str(exc.detail))

        return page


def _error(request: Request, status_code: int, detail: str) -> Response:
    return render(request, "error.html", {"status": status_code, "detail": detail}, status_code)
