"""Jobs from the command line: `submit`, `status` and `export` talk to a running API (`run`,
which starts the service itself, is in `run_here` and uses the helpers here)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from service.api.schemas import JobPublic
from service.cli.client import ActionForgeClient, client_for
from service.cli.commands.companions import note_companion_files
from service.cli.commands.display import follow_job, print_funnel
from service.cli.commands.local import load_settings
from service.cli.commands.options import export_suffix
from service.cli.console import err_console, out_console, readable_errors, warn
from service.db.models import JobStatus
from service.export.dataset_card import CARD_FILE, data_file, dataset_card
from unified.errors import ActionForgeError


def submit_job(
    catalog: Path, spec: dict[str, Any], kind: str | None, wait: bool, url: str | None
) -> None:
    """Upload `catalog`, submit a job with `spec`, print its id; with `wait`, follow it to the
    end and print its funnel (exit 1 unless it succeeded)."""
    settings = load_settings()
    with readable_errors(), client_for(settings, url) as client:
        job = submit_catalog_job(client, catalog, spec, kind)
        out_console.print(job.id, highlight=False)
        if not wait:
            err_console.print(f"follow it with: actionforge status {job.id}", highlight=False)
            return
        job = follow_job(client, job)
    print_funnel(job)
    if job.status != JobStatus.succeeded:
        raise typer.Exit(1)


def show_status(job_id: str, as_json: bool, url: str | None) -> None:
    """Print a job's funnel (or, with `as_json`, the job as JSON)."""
    settings = load_settings()
    with readable_errors(), client_for(settings, url) as client:
        job = client.job(job_id)
    if as_json:
        sys.stdout.write(job.model_dump_json(indent=2) + "\n")
        return
    print_funnel(job)


def export_job(job_id: str, fmt: str, out: Path, url: str | None) -> None:
    """Stream a job's accepted samples in `fmt` into the file `out`."""
    settings = load_settings()
    with readable_errors(), client_for(settings, url) as client:
        export_to_file(client, job_id, fmt, out)


def export_job_to_hf(
    job_id: str, fmt: str, folder: Path, license_id: str, repo: str | None, url: str | None
) -> None:
    """Write a job's accepted samples in `fmt` as a Hugging Face dataset folder (the rows under
    data/, a dataset card with the job's funnel), then upload it to the Hub repo `repo` if given."""
    settings = load_settings()
    with readable_errors(), client_for(settings, url) as client:
        suffix = export_suffix(fmt)
        job = client.job(job_id)
        catalog = client.catalog(job.catalog_id)
        relative = data_file(suffix)
        rows_path = folder / relative
        rows_path.parent.mkdir(parents=True, exist_ok=True)
        result = client.export(job_id, fmt, rows_path)
        card = dataset_card(job, catalog, result.rows, fmt, relative, license_id)
        (folder / CARD_FILE).write_text(card, encoding="utf-8")
        err_console.print(
            f"wrote {result.rows:,} {fmt} rows to {rows_path} and the dataset card to "
            f"{folder / CARD_FILE}: datasets.load_dataset('{folder}') reads it",
            highlight=False,
        )
        if repo is not None:
            push_folder(folder, repo)


def push_folder(folder: Path, repo: str) -> None:
    """Upload a dataset folder to the Hub dataset repo `repo` (created if missing)."""
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise ActionForgeError(
            "--push-to-hub needs huggingface_hub: pip install huggingface_hub"
        ) from None
    api = HfApi()
    try:
        api.create_repo(repo, repo_type="dataset", exist_ok=True)
        commit = api.upload_folder(repo_id=repo, folder_path=folder, repo_type="dataset")
    except Exception as exc:  # the Hub's errors are many (auth, network, name); say which
        first = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        raise ActionForgeError(
            f"--push-to-hub {repo}: {first}; the folder {folder} is written and can be "
            "uploaded again"
        ) from None
    err_console.print(f"pushed {folder} to {commit}", highlight=False)


def submit_catalog_job(
    client: ActionForgeClient, catalog: Path, spec: dict[str, Any], kind: str | None
) -> JobPublic:
    uploaded = client.upload_catalog(catalog, kind)
    err_console.print(
        f"catalog {catalog.name}: {len(uploaded.tools)} tools ({uploaded.kind}), id {uploaded.id}",
        highlight=False,
    )
    for warning in uploaded.warnings:
        warn(f"{catalog.name}: {warning}")
    job = client.submit_job(uploaded.id, spec)
    err_console.print(f"job {job.id} queued: {job.spec.n:,} samples", highlight=False)
    return job


def follow_or_cancel(client: ActionForgeClient, job: JobPublic) -> JobPublic:
    """Follow the job; on Ctrl-C cancel it, since the service it runs on is about to stop."""
    try:
        return follow_job(client, job)
    except KeyboardInterrupt:
        client.cancel_job(job.id)
        err_console.print(f"interrupted: job {job.id} cancelled", highlight=False)
        raise typer.Exit(130) from None


def export_to_file(client: ActionForgeClient, job_id: str, fmt: str, out: Path) -> None:
    result = client.export(job_id, fmt, out)
    err_console.print(
        f"wrote {result.rows:,} {fmt} rows ({result.bytes_written:,} bytes) to {out}",
        highlight=False,
    )
    note_companion_files(fmt, out)
    if not result.complete:
        err_console.print(
            f"[yellow]job {job_id} is {result.job_status}:[/] the file holds the samples "
            "accepted so far; export again once it has finished",
            highlight=False,
        )
