"""The consoles the CLI writes to, and how it turns errors into one readable line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from unified.errors import ActionForgeError

out_console = Console()
err_console = Console(stderr=True)


def fail(message: str) -> NoReturn:
    """Print one readable line and exit 2. The message is shown as written: brackets in it (an
    extra such as `actionforge[train]`, a JSON path) are not read as markup."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def warn(message: str) -> None:
    """Print one warning line, shown as written."""
    err_console.print(
        f"[bold yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True
    )


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
