"""Errors of the generators. Every message says what to change."""

from __future__ import annotations

from unified.errors import ActionForgeError


class GenerationError(ActionForgeError):
    """A generator cannot make samples from the request or the tools it was given."""


class TemplateError(GenerationError):
    """A generator template is missing, does not parse, or uses a variable it is not given.

    Names the template file, the place in it (a line, or the variable) and what to change.
    """

    def __init__(self, template: str, place: str | None, message: str) -> None:
        self.template = template
        self.place = place
        self.message = message
        where = f"{template}: {place}" if place else template
        super().__init__(f"{where}: {message}")
