"""The service's commands: `serve`, `run`, `submit`, `status`, `samples` and `export`.

Only the signatures live here (the options they share are in `options`); each body is imported
when its command runs (from `jobs` and `local`), so that other commands start without loading the
web stack.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service.cli.commands.options import (
    CatalogArgument,
    CountOption,
    FormatOption,
    GeneratorOption,
    GeneratorOptionsOption,
    JobIdArgument,
    JudgeOption,
    KindOption,
    SeedOption,
    StageOptionsOption,
    StylesOption,
    UrlOption,
    VerifyOption,
)
from service.cli.console import readable_errors
from unified.errors import ActionForgeError


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the REST API (docs at /docs); with no AF_BROKER_URL, also the workers."""
    from service.cli.commands.local import serve_api

    serve_api(host, port)


def run(
    catalog: CatalogArgument,
    n: CountOption,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Dataset file to write; default: <catalog name>.jsonl."),
    ] = None,
    fmt: FormatOption = "unified",
    seed: SeedOption = 0,
    styles: StylesOption = None,
    generator: GeneratorOption = None,
    verify: VerifyOption = None,
    kind: KindOption = None,
    generator_options: GeneratorOptionsOption = None,
    judge: JudgeOption = None,
    stage_options: StageOptionsOption = None,
) -> None:
    """Run a whole job here and write its dataset (starts and stops the API and workers)."""
    from service.cli.commands.job_spec import job_spec
    from service.cli.commands.run_here import run_here

    with readable_errors():
        spec = job_spec(n, seed, styles, generator, verify, generator_options, judge, stage_options)
    run_here(catalog, spec, kind, fmt, out)


def submit(
    catalog: CatalogArgument,
    n: CountOption,
    seed: SeedOption = 0,
    styles: StylesOption = None,
    generator: GeneratorOption = None,
    verify: VerifyOption = None,
    kind: KindOption = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Show live progress until the job finishes.")
    ] = False,
    url: UrlOption = None,
    generator_options: GeneratorOptionsOption = None,
    judge: JudgeOption = None,
    stage_options: StageOptionsOption = None,
) -> None:
    """Upload a catalog and submit a job over it to a running API; print the job id."""
    from service.cli.commands.job_spec import job_spec
    from service.cli.commands.jobs import submit_job

    with readable_errors():
        spec = job_spec(n, seed, styles, generator, verify, generator_options, judge, stage_options)
    submit_job(catalog, spec, kind, wait, url)


def status(
    job_id: JobIdArgument,
    as_json: Annotated[bool, typer.Option("--json", help="Print the job as JSON.")] = False,
    url: UrlOption = None,
) -> None:
    """Show a job: its status, its funnel and, if it failed, its error."""
    from service.cli.commands.jobs import show_status

    show_status(job_id, as_json, url)


def export(
    job_id: JobIdArgument,
    out: Annotated[
        Path | None, typer.Option("--out", help="File to write (or give --to-hf).")
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="Export format (see `actionforge formats`); default: unified with --out, "
            "hf with --to-hf.",
        ),
    ] = None,
    to_hf: Annotated[
        Path | None,
        typer.Option(
            "--to-hf",
            help="Write a Hugging Face dataset folder here instead: data/train.jsonl and a "
            "dataset card (README.md) with the job's funnel.",
        ),
    ] = None,
    license_id: Annotated[
        str, typer.Option("--license", help="License id for the dataset card (--to-hf).")
    ] = "other",
    push_to_hub: Annotated[
        str | None,
        typer.Option(
            "--push-to-hub",
            help="Then upload the folder to this Hub dataset repo (needs huggingface_hub and "
            "a token: `hf auth login` or HF_TOKEN).",
        ),
    ] = None,
    url: UrlOption = None,
) -> None:
    """Stream a job's accepted samples from a running API into a dataset file or folder."""
    from service.cli.commands.jobs import export_job, export_job_to_hf

    if (out is None) == (to_hf is None):
        with readable_errors():
            raise ActionForgeError("give either --out FILE or --to-hf DIR")
    if to_hf is None:
        if push_to_hub is not None:
            with readable_errors():
                raise ActionForgeError("--push-to-hub uploads a --to-hf folder; give --to-hf DIR")
        assert out is not None
        export_job(job_id, fmt or "unified", out, url)
        return
    export_job_to_hf(job_id, fmt or "hf", to_hf, license_id, push_to_hub, url)


def register_service_commands(app: typer.Typer) -> None:
    """Add the service's commands to the `actionforge` app."""
    from service.cli.commands.samples import samples

    for command in (serve, run, submit, status, samples, export):
        app.command()(command)
