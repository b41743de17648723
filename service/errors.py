"""Errors of the service layer; the API maps them to 4xx, the CLI to one readable line."""

from __future__ import annotations

from unified.errors import ActionForgeError


class NotFound(ActionForgeError):
    """A catalog, job or other record named by id does not exist."""


class InvalidRequest(ActionForgeError):
    """A request is well formed but cannot be carried out as given; the message says why."""
