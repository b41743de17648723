"""The consoles the CLI writes to, and how it turns errors into one readable line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console

from unified.errors import ActionForgeError

out_console = Console()
err_console = Console(stderr=True)


def fail(message: str) -> NoReturn:
    """Print one readable line and exit 2."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@contextmanager
def readable_errors() -> Iterator[None]:
    """Turn ActionForge errors and OS errors raised inside into one line and exit 2."""
    try:
        yield
    except ActionForgeError as exc:
        fail(str(exc))
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        fail(f"{where}{exc.strerror or exc}")
