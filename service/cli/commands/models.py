"""`actionforge models`: the model versions a running API has trained, with their key metrics;
`models train CATALOG_ID` asks for a training run, `models download ID` fetches an adapter;
`models fetch NAME` gets a real base model (llm/model_fetch.py) into a folder vLLM serves."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml
from rich import box
from rich.table import Table

from llm.model_fetch import KNOWN_MODELS, fetch_model
from service.cli.console import err_console, out_console, readable_errors
from unified.errors import ActionForgeError

if TYPE_CHECKING:
    from service.api.model_schemas import ModelVersionPublic

UrlOption = Annotated[str | None, typer.Option("--url", help="API base URL; default: AF_API_URL.")]
POLL_SECONDS = 2.0

models_app = typer.Typer(
    help="Model versions: LoRA adapters trained on a catalog's accepted samples.",
    invoke_without_command=True,
)


@models_app.callback()
def models(
    context: typer.Context,
    catalog: Annotated[
        str | None, typer.Option("--catalog", help="Only this catalog's versions.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the versions as JSON.")] = False,
    url: UrlOption = None,
) -> None:
    """List the model versions with their key metrics on the held-out samples."""
    if context.invoked_subcommand is not None:
        return
    from service.cli.client import client_for
    from service.cli.commands.local import load_settings

    with readable_errors(), client_for(load_settings(), url) as client:
        page = client.models(catalog)
    if as_json:
        sys.stdout.write(page.model_dump_json(indent=2) + "\n")
        return
    if not page.data:
        err_console.print(
            "no model versions yet" + (f" of catalog {catalog}" if catalog else ""),
            highlight=False,
        )
        return
    out_console.print(versions_table(page.data))


@models_app.command("train")
def train(
    catalog_id: Annotated[str, typer.Argument(metavar="CATALOG_ID", help="The catalog's id.")],
    force: Annotated[
        bool,
        typer.Option("--force", help="Train even below AF_TRAIN_MIN_NEW_SAMPLES new samples."),
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="YAML or JSON file of training settings for this run."),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait until the version is ready or failed.")
    ] = False,
    url: UrlOption = None,
) -> None:
    """Queue a training run of a catalog's next model version; print its id."""
    from service.cli.client import client_for
    from service.cli.commands.local import load_settings

    with readable_errors(), client_for(load_settings(), url) as client:
        overrides = _read_overrides(config) if config is not None else {}
        version = client.request_training(catalog_id, force=force, config=overrides)
        out_console.print(version.id, highlight=False)
        err_console.print(
            f"version {version.version} of catalog {catalog_id} queued: "
            f"{version.new_samples:,} new samples",
            highlight=False,
        )
        if not wait:
            return
        while version.status in ("queued", "training"):
            time.sleep(POLL_SECONDS)
            version = client.model(version.id)
    out_console.print(versions_table([version]))
    if version.status != "ready":
        err_console.print(f"[red]failed:[/] {version.error}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


@models_app.command("download")
def download(
    version_id: Annotated[str, typer.Argument(metavar="ID", help="The model version's id.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="File to write; default: <catalog>-v<n>.tar.gz.")
    ] = None,
    url: UrlOption = None,
) -> None:
    """Download a ready version's LoRA adapter folder as a .tar.gz."""
    from service.cli.client import client_for
    from service.cli.commands.local import load_settings

    with readable_errors(), client_for(load_settings(), url) as client:
        version = client.model(version_id)
        target = out or Path(f"{version.catalog_id}-v{version.version}.tar.gz")
        written = client.download_model(version_id, target)
    err_console.print(f"wrote {written:,} bytes to {target}", highlight=False)


@models_app.command("fetch")
def fetch(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help=f"One of: {', '.join(KNOWN_MODELS)}.")
    ],
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="Folder to write the model to; default: $AF_MODELS_DIR/NAME or "
            "~/.cache/actionforge/models/NAME.",
        ),
    ] = None,
) -> None:
    """Fetch a known base model into a float32 safetensors folder that vLLM serves; print the
    folder (at once when it is already complete)."""
    with readable_errors():
        folder = fetch_model(name, directory, progress=_progress)
    sys.stdout.write(f"{folder}\n")


def _progress(message: str) -> None:
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)


def register_models_commands(app: typer.Typer) -> None:
    """Add `models` (list, `train`, `download`, `fetch`) to the `actionforge` app."""
    app.add_typer(models_app, name="models")


def versions_table(versions: list[ModelVersionPublic]) -> Table:
    """One row per version: its number, id, parent, status, samples and key held-out metrics."""
    numbers = {version.id: version.version for version in versions}
    table = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        caption="samples: new + replayed / held out; metrics on the held-out samples; "
        "Δ acc.: accuracy change against the parent version",
    )
    for header in ("catalog", "v", "id", "parent", "status", "samples"):
        table.add_column(header, no_wrap=header != "catalog")
    for header in ("tool\nname", "exact\ncall", "irrel.", "format\npass", "Δ acc."):
        table.add_column(header, justify="right")
    ordered = sorted(versions, key=lambda v: (v.catalog_id, v.version))
    for version in ordered:
        summary = version.summary
        parent = "-"
        if version.parent_id is not None:
            parent = f"v{numbers[version.parent_id]}" if version.parent_id in numbers else "yes"
        table.add_row(
            version.catalog_id,
            str(version.version),
            version.id,
            parent,
            _status(version.status),
            f"{version.new_samples:,}+{version.replay_samples:,}/{version.heldout_samples:,}",
            _percent(summary.tool_name_accuracy),
            _percent(summary.exact_call_accuracy),
            _percent(summary.irrelevance_accuracy),
            _percent(summary.format_pass_rate),
            _change(summary.accuracy_vs_parent),
        )
    return table


def _read_overrides(path: Path) -> dict[str, Any]:
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ActionForgeError(f"{path}: not valid YAML or JSON ({exc})") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ActionForgeError(
            f"{path}: holds a {type(values).__name__}, not a mapping of settings such as "
            "'max_steps: 100'"
        )
    return values


def _status(status: str) -> str:
    colour = {"ready": "green", "failed": "red", "training": "yellow"}.get(status)
    return f"[{colour}]{status}[/]" if colour else status


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _change(value: float | None) -> str:
    if value is None:
        return "-"
    shown = f"{value * 100:+.1f} pt"
    return f"[green]{shown}[/]" if value > 0 else f"[red]{shown}[/]" if value < 0 else shown
