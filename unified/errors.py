"""Errors of the unified library. Every message says where the problem is and what to change."""

from __future__ import annotations


class ActionForgeError(Exception):
    """Base of every error ActionForge raises on bad input; its message is meant for the user."""


class UnknownNameError(ActionForgeError, LookupError):
    """A registry was asked for a name it does not know."""


class CatalogError(ActionForgeError):
    """An API catalog cannot be loaded. Names the file, the place in it, and what to change."""

    def __init__(self, document: str, place: str | None, message: str) -> None:
        self.document = document
        self.place = place
        self.message = message
        where = f"{document}: {place}" if place else document
        super().__init__(f"{where}: {message}")


class RowError(ActionForgeError):
    """A row of a dataset file cannot be read or written in the requested format."""

    def __init__(self, document: str, row: int | None, message: str) -> None:
        self.document = document
        self.row = row
        self.message = message
        where = f"{document}: row {row}" if row is not None else document
        super().__init__(f"{where}: {message}")
