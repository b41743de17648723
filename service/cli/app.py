"""The `actionforge` command line."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from service.cli.commands import register_service_commands
from service.cli.commands.companions import note_companion_files
from service.cli.commands.mock import mock
from service.cli.commands.models import register_models_commands
from service.cli.commands.train import register_train_commands
from service.cli.console import err_console, out_console, readable_errors, warn
from service.export.registry import export_format_names
from unified.catalogs import DEFAULT_MAX_BYTES, LOADERS, load_catalog
from unified.formats import FORMATS, read_samples, write_samples
from unified.model import Tool, unified_json_schema_text
from verifiers.stages import DEFAULT_STAGES

app = typer.Typer(
    help="ActionForge: verified function-calling training data from your API catalogs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
catalog_app = typer.Typer(help="Inspect API catalogs.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")

KindOption = Annotated[
    str | None,
    typer.Option("--kind", help="Catalog kind; detected from the content when omitted."),
]
MaxBytesOption = Annotated[
    int, typer.Option("--max-bytes", help="Refuse catalog files larger than this.")
]
FromOption = Annotated[str, typer.Option("--from", help="Input format.")]
AnswersOption = Annotated[
    Path | None,
    typer.Option("--answers", help="BFCL possible-answer file that goes with the questions."),
]


FunctionsOption = Annotated[
    Path | None,
    typer.Option(
        "--functions",
        help="BFCL function documents for multi-turn questions that carry no function list.",
    ),
]


def _reader_options(answers: Path | None, functions: Path | None = None) -> dict[str, Any]:
    given = {"answers": answers, "functions": functions}
    return {key: value for key, value in given.items() if value is not None}


def _progress(label: str) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn(f"{label} {{task.completed:,}} rows"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )


@catalog_app.command("show")
def catalog_show(
    file: Annotated[Path, typer.Argument(help="OpenAPI/Swagger, JSON function list or .py")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the tools as an OpenAI tools list.")
    ] = False,
    kind: KindOption = None,
    max_bytes: MaxBytesOption = DEFAULT_MAX_BYTES,
) -> None:
    """Show the tools of a catalog."""
    with readable_errors():
        catalog = load_catalog(file, kind=kind, max_bytes=max_bytes)
    for warning in catalog.warnings:
        warn(f"{file}: {warning}")
    if as_json:
        sys.stdout.write(
            orjson.dumps([t.openai() for t in catalog.tools], option=orjson.OPT_INDENT_2).decode()
            + "\n"
        )
        return
    title = f"{catalog.title or file.name} ({catalog.kind}, {len(catalog.tools)} tools)"
    table = Table(title=title)
    table.add_column("tool", style="bold")
    table.add_column("arguments (* required)")
    table.add_column("description", overflow="fold")
    for tool in catalog.tools:
        table.add_row(tool.name, _arguments_summary(tool), tool.description[:160])
    out_console.print(table)


def _arguments_summary(tool: Tool) -> str:
    properties = tool.parameters.get("properties") or {}
    required = set(tool.parameters.get("required") or [])
    parts = []
    for name, schema in properties.items():
        kind = schema.get("type", "any") if isinstance(schema, dict) else "any"
        if isinstance(kind, list):
            kind = "|".join(map(str, kind))
        parts.append(f"{name}{'*' if name in required else ''}: {kind}")
    return ", ".join(parts)


@app.command()
def convert(
    input_file: Annotated[Path, typer.Argument(metavar="IN", help="Dataset file to read.")],
    from_format: FromOption,
    to_format: Annotated[str, typer.Option("--to", help="Output format.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Output file; standard output when omitted.")
    ] = None,
    answers: AnswersOption = None,
    functions: FunctionsOption = None,
) -> None:
    """Convert a dataset between formats, row by row."""
    with readable_errors():
        FORMATS.get(from_format)
        FORMATS.get(to_format)
        samples = read_samples(input_file, from_format, **_reader_options(answers, functions))
        with _progress("converted") as progress:
            task = progress.add_task("convert")

            def counted() -> Iterator[Any]:
                for sample in samples:
                    yield sample
                    progress.advance(task)

            written = write_samples(counted(), out if out is not None else sys.stdout, to_format)
    if out is not None:
        err_console.print(f"wrote {written:,} rows to {out}", highlight=False)
        with readable_errors():
            note_companion_files(to_format, out)


@app.command()
def verify(
    input_file: Annotated[Path, typer.Argument(metavar="IN", help="Dataset file to verify.")],
    from_format: FromOption,
    out: Annotated[Path, typer.Option("--out", help="Where to write one verdict per row.")],
    stages: Annotated[
        str,
        typer.Option(
            "--stages",
            help="Stages to run in order, comma-separated: query, format, grounding, coverage, "
            "execution (needs --catalog), semantic (needs --judge), dedup.",
        ),
    ] = ",".join(DEFAULT_STAGES),
    catalog: Annotated[
        Path | None,
        typer.Option("--catalog", help="Check calls against this catalog's tools, not the row's."),
    ] = None,
    answers: AnswersOption = None,
    functions: FunctionsOption = None,
    judge: Annotated[
        str | None,
        typer.Option(
            "--judge",
            help="The semantic stage's LLM as a JSON object or @file: backend, model, base_url.",
        ),
    ] = None,
) -> None:
    """Verify every row's tool calls; write one verdict per input row, in input order (the
    verdict of the stage that rejected it, or of the last stage)."""
    from service.cli.commands.json_options import parse_json_object
    from service.cli.commands.verify import verify_file

    with readable_errors():
        judge_config = parse_json_object("--judge", judge) if judge is not None else None
        verify_file(
            input_file,
            from_format,
            out,
            stages,
            catalog,
            _reader_options(answers, functions),
            judge_config,
        )


@app.command()
def formats() -> None:
    """List the dataset formats, export formats and catalog kinds this version reads and
    writes."""
    out_console.print("dataset formats: " + ", ".join(FORMATS.names()), highlight=False)
    out_console.print("export formats: " + ", ".join(export_format_names()), highlight=False)
    out_console.print("catalog kinds: " + ", ".join(LOADERS.names()), highlight=False)


@app.command()
def schema() -> None:
    """Print the JSON Schema of a unified sample (published as docs/unified-sample.schema.json)."""
    sys.stdout.write(unified_json_schema_text())


# --- service: serve, run, submit, status, export (bodies in service/cli/commands/) ------------

register_service_commands(app)
register_train_commands(app)
register_models_commands(app)
app.command()(mock)


# --- service: worker (body in service/worker.py) -------------------------------------------


@app.command()
def worker(
    queues: Annotated[
        str,
        typer.Option(
            "-Q", "--queues", help="Comma-separated queues to work: generate, verify, train."
        ),
    ] = "generate,verify",
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", "-c", min=1, help="Pool processes; default: CPU cores."),
    ] = None,
) -> None:
    """Work batches from the queues until stopped (applies migrations first)."""
    from service.worker import worker_cli

    worker_cli(queues, concurrency)


# --- end service: worker -------------------------------------------------------------------


def main() -> None:
    app()


if __name__ == "__main__":
    main()
