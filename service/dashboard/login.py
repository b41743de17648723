"""Logging in to the dashboard: a key entered once in a form is checked against AF_API_KEYS and
kept for the browser session as an HttpOnly cookie (a digest of the key, which opens reads
only); logging out drops it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response, status
from fastapi.responses import RedirectResponse

from service.api.deps import SESSION_COOKIE, SettingsDep, is_known_key, session_token
from service.dashboard.rendering import PageRoute, render, safe_next

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/login")
def login_form(request: Request, settings: SettingsDep, next: str | None = None) -> Response:
    """The login form; straight on to `next` when the service has no keys."""
    if not settings.api_keys:
        return RedirectResponse(safe_next(next), status.HTTP_303_SEE_OTHER)
    return render(request, "login.html", {"next": safe_next(next), "refused": False})


@router.post("/login")
def log_in(
    request: Request,
    settings: SettingsDep,
    key: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Keep the session of a known key and go on to `next`; a key the server does not know
    gets the form again (401)."""
    target = safe_next(next)
    key = key.strip()
    if settings.api_keys and not is_known_key(key, settings):
        context = {"next": target, "refused": True}
        return render(request, "login.html", context, status.HTTP_401_UNAUTHORIZED)
    response = RedirectResponse(target, status.HTTP_303_SEE_OTHER)
    if settings.api_keys:
        response.set_cookie(
            SESSION_COOKIE,
            session_token(key),
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
    return response


@router.post("/logout")
def log_out() -> Response:
    """Drop the session cookie."""
    response = RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE)
    return response
