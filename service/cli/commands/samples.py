"""`actionforge samples ID`: a job's samples from a running API, filtered by status and reason,
as a table (id, status, stage, reason, detail, query) or as JSON."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from service.cli.commands.options import JobIdArgument, UrlOption

if TYPE_CHECKING:
    from rich.table import Table

    from service.api.schemas import SamplePublic

QUERY_WIDTH = 60
DETAIL_WIDTH = 80


def samples(
    job_id: JobIdArgument,
    status: Annotated[
        str | None,
        typer.Option(
            "--status", help="Only samples in this status: generated, accepted, rejected."
        ),
    ] = None,
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="Only samples rejected for this reason code."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")] = 20,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print one JSON object: the samples (data) and how many match (count)."
        ),
    ] = False,
    url: UrlOption = None,
) -> None:
    """Show a job's samples in position order: why each was rejected, and its query."""
    from service.cli.client import client_for
    from service.cli.commands.local import load_settings
    from service.cli.console import out_console, readable_errors

    settings = load_settings()
    with readable_errors(), client_for(settings, url) as client:
        found, count = client.first_samples(job_id, limit, status=status, reason=reason)
    if as_json:
        data = ",".join(item.model_dump_json(by_alias=True) for item in found)
        sys.stdout.write(f'{{"data":[{data}],"count":{count}}}\n')
        return
    out_console.print(samples_table(found, count))


def samples_table(found: list[SamplePublic], count: int) -> Table:
    """One row per sample: id, status, the stage that decided it, reason, detail, query."""
    from rich.markup import escape
    from rich.table import Table

    shown = f"{len(found):,} of {count:,} samples" if count else "no samples"
    table = Table(title=shown, title_justify="left")
    table.add_column("id", no_wrap=True)
    table.add_column("status")
    table.add_column("stage")
    table.add_column("reason", style="red")
    table.add_column("detail", overflow="fold")
    table.add_column("query", overflow="fold")
    for item in found:
        status = {"accepted": "[green]accepted[/]", "rejected": "[red]rejected[/]"}.get(
            item.status, item.status
        )
        table.add_row(
            escape(item.id),
            status,
            escape(item.stage or ""),
            escape(item.reason or ""),
            escape(_cut(_detail(item), DETAIL_WIDTH)),
            escape(_cut(item.sample.query, QUERY_WIDTH)),
        )
    return table


def _detail(item: SamplePublic) -> str:
    """The detail of the verdict that decided the sample (the last one)."""
    return (item.verdicts[-1].detail or "") if item.verdicts else ""


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
