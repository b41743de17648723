"""How the CLI shows a job: live progress while it runs, and its funnel once it has finished."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from service.api.schemas import JobPublic
from service.cli.client import ActionForgeClient
from service.cli.console import err_console, out_console

_COUNTS = (
    "{task.completed:,}/{task.total:,} · accepted [green]{task.fields[accepted]:,}[/] · "
    "rejected [red]{task.fields[rejected]:,}[/]"
)


def follow_job(client: ActionForgeClient, job: JobPublic) -> JobPublic:
    """Follow a job until it finishes (its event stream, or polling where that breaks off),
    showing its counts live on a terminal; the final job."""
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.fields[status]}"),
        BarColumn(bar_width=16),
        TextColumn(_COUNTS),
        TimeElapsedColumn(),
        console=err_console,
        disable=not err_console.is_terminal,
    )
    with progress:
        task = progress.add_task("job", total=job.spec.n, status=job.status, accepted=0, rejected=0)

        def show(current: JobPublic) -> None:
            counts = current.counts
            progress.update(
                task,
                completed=counts.accepted + counts.rejected,
                status=current.status,
                accepted=counts.accepted,
                rejected=counts.rejected,
            )

        return client.wait(job.id, show)


def funnel_table(job: JobPublic) -> Table:
    """The job's funnel: requested, generated, each verification stage in the job's order,
    accepted."""
    counts = job.counts
    table = Table()
    table.add_column("step")
    table.add_column("samples", justify="right")
    table.add_column("dropped", justify="right")
    table.add_column("of generated", justify="right")
    generated = counts.generated
    table.add_row("requested", f"{job.spec.n:,}", "", "")
    table.add_row("generated", f"{generated:,}", _dropped(job.spec.n - generated), "")
    for stage in _stages(job):
        stage_counts = counts.by_stage.get(stage)
        passed = stage_counts.passed if stage_counts else 0
        rejected = stage_counts.rejected if stage_counts else 0
        table.add_row(f"  {stage}", f"{passed:,}", _dropped(rejected), _share(passed, generated))
    table.add_row(
        "[bold green]accepted[/]",
        f"[bold]{counts.accepted:,}[/]",
        "",
        _share(counts.accepted, generated),
    )
    return table


def _reason_rows(job: JobPublic) -> list[tuple[str, str, int, list[str]]]:
    """(reason, stage, samples, example ids) per rejection, most common first."""
    counts = job.counts
    rows = [(r.reason or "", r.stage or "", r.samples, r.examples) for r in counts.rejections]
    if not rows:  # counts stored before rejections were: reasons only
        rows = [(reason, "", n, []) for reason, n in counts.by_reason.items()]
        rows.sort(key=lambda row: (-row[2], row[0]))
    return rows


def reasons_table(job: JobPublic) -> Table | None:
    """The job's rejections per reason code and stage, most common first; None when there
    were none."""
    rows = _reason_rows(job)
    if not rows:
        return None
    table = Table(title="rejected, by reason", title_justify="left", title_style="bold")
    table.add_column("reason", style="red")
    table.add_column("stage")
    table.add_column("samples", justify="right")
    table.add_column("of generated", justify="right")
    for reason, stage, n, _ in rows:
        table.add_row(escape(reason), escape(stage), f"{n:,}", _share(n, job.counts.generated))
    return table


def print_examples(job: JobPublic, console: Console = out_console) -> None:
    """A few sample ids per rejection reason, and the command that shows them."""
    rows = [row for row in _reason_rows(job) if row[3]]
    if not rows:
        return
    console.print("[bold]examples[/] (actionforge samples ID --reason REASON):")
    for reason, _, _, examples in rows:
        console.print(
            f"  [red]{escape(reason)}[/]: {' '.join(examples)}", highlight=False, soft_wrap=True
        )


def print_funnel(job: JobPublic, console: Console = out_console) -> None:
    """Print the job's funnel, its rejections by reason, and its error if it failed."""
    console.print(f"[bold]job {job.id}: {job.status}[/]{_duration(job)}", highlight=False)
    console.print(funnel_table(job))
    usage = job.counts.generation
    if usage is not None:
        console.print(
            f"LLM: {usage.requests:,} requests, {usage.prompt_tokens:,} prompt + "
            f"{usage.completion_tokens:,} completion tokens, "
            f"{usage.completion_tokens_per_s:,.1f} completion tokens/s in the engine",
            highlight=False,
        )
        if len(usage.servers) > 1:
            for url, server in usage.servers.items():
                console.print(
                    f"  {escape(url)}: {server.requests:,} requests, "
                    f"{server.completion_tokens_per_s:,.1f} completion tokens/s",
                    highlight=False,
                )
    reasons = reasons_table(job)
    if reasons is not None:
        console.print(reasons)
        print_examples(job, console)
    if job.error:
        console.print(f"[bold red]job error:[/] {job.error}", highlight=False, soft_wrap=True)


def _stages(job: JobPublic) -> list[str]:
    listed = list(job.spec.verify)
    return listed + [stage for stage in job.counts.by_stage if stage not in listed]


def _dropped(n: int) -> str:
    return f"[red]-{n:,}[/]" if n > 0 else ""


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else ""


def _duration(job: JobPublic) -> str:
    if job.finished_at is None:
        return ""
    seconds = (job.finished_at - job.created_at).total_seconds()
    rate = f", {job.counts.generated / seconds:,.1f} samples/s" if seconds > 0 else ""
    return f" in {seconds:,.1f} s{rate}"
