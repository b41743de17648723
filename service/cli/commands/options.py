"""The options the service's commands share, as Typer annotations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service.export.registry import export_format_names, exporter
from unified.errors import ActionForgeError, UnknownNameError
from unified.model import QueryStyle

CatalogArgument = Annotated[
    Path,
    typer.Argument(help="OpenAPI/Swagger document, JSON function list or Python module."),
]
JobIdArgument = Annotated[str, typer.Argument(metavar="ID", help="The job's id.")]
CountOption = Annotated[int, typer.Option("--n", min=1, help="Samples to generate.")]
SeedOption = Annotated[int, typer.Option("--seed", help="Same seed, same samples.")]
StylesOption = Annotated[
    str | None,
    typer.Option(
        "--styles",
        help="Query style weights, e.g. simple=1,parallel=2; default: the built-in mix. Styles: "
        + ", ".join(QueryStyle)
        + ".",
    ),
]
GeneratorOption = Annotated[
    str | None, typer.Option("--generator", help="Generator name: template (default) or llm.")
]
GeneratorOptionsOption = Annotated[
    str | None,
    typer.Option(
        "--generator-options",
        help="The generator's options as a JSON object or @file, e.g. for llm: '{\"backend\": "
        '"openai", "model": "m", "base_url": "http://127.0.0.1:8001/v1"}\'.',
    ),
]
JudgeOption = Annotated[
    str | None,
    typer.Option(
        "--judge",
        help="The semantic stage's LLM as a JSON object or @file: backend, model, base_url.",
    ),
]
VerifyOption = Annotated[
    str | None,
    typer.Option(
        "--verify",
        help="Verification stages in order, comma-separated; default: query, format, "
        "grounding, coverage.",
    ),
]
StageOptionsOption = Annotated[
    str | None,
    typer.Option(
        "--stage-options",
        help="Options per stage as a JSON object or @file, e.g. "
        '\'{"semantic": {"judge": {"backend": "openai", "model": "m"}}}\'.',
    ),
]
KindOption = Annotated[
    str | None,
    typer.Option("--kind", help="Catalog kind; detected from the content when omitted."),
]
UrlOption = Annotated[str | None, typer.Option("--url", help="API base URL; default: AF_API_URL.")]
FormatOption = Annotated[
    str,
    typer.Option(
        "--format",
        help=f"Export format: {', '.join(export_format_names())} "
        "(dpo: preference pairs, an accepted and a rejected answer to each query).",
    ),
]


def export_suffix(fmt: str) -> str:
    """The file suffix of export format `fmt` (given as --format); an `ActionForgeError` that
    lists the formats for an unknown one."""
    try:
        return exporter(fmt).suffix
    except UnknownNameError:
        raise ActionForgeError(
            f"--format: cannot export in '{fmt}'; use one of: {', '.join(export_format_names())}"
        ) from None
