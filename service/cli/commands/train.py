"""`actionforge train` and `actionforge eval`: LoRA fine-tuning on a dataset file and tool-call
evaluation of a model (with an optional adapter), with progress and metric tables.

The bodies call `trainer.train.train` and `trainer.evaluate.evaluate`, the same functions the
workers call. torch and transformers load only when a command runs. `train --job ID` trains on
a job's accepted samples, fetched from a running API.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich import box
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from service.cli.console import err_console, out_console, readable_errors
from unified.errors import ActionForgeError
from unified.formats import read_samples
from unified.model import Sample

if TYPE_CHECKING:
    from trainer.evaluate import EvalReport
    from trainer.train import TrainResult

FromOption = Annotated[str, typer.Option("--from", help="Format of the --data file.")]
AdapterOption = Annotated[
    Path | None,
    typer.Option("--adapter", help="LoRA adapter folder written by `actionforge train`."),
]


def train_command(
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Dataset file of samples (any format `formats` lists)."),
    ] = None,
    job: Annotated[
        str | None,
        typer.Option("--job", help="Train on this job's accepted samples, fetched from the API."),
    ] = None,
    url: Annotated[
        str | None, typer.Option("--url", help="API base URL for --job; default: AF_API_URL.")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="Base model folder (or cached name); default: the config's."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML or JSON file of training settings.")
    ] = None,
    adapter: Annotated[
        Path | None,
        typer.Option("--adapter", help="Continue training this adapter (a train output folder)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for the adapter and metrics; default: the config's."),
    ] = None,
    fmt: FromOption = "unified",
) -> None:
    """Fine-tune a model with LoRA on a dataset file's samples (or a job's accepted samples);
    write the adapter."""
    from trainer.config import TrainConfig, load_config
    from trainer.modeling import check_adapter_path, check_model_path
    from trainer.train import train

    with readable_errors():
        settings = load_config(config) if config is not None else TrainConfig()
        settings = settings.with_overrides(
            base_model=model, output_dir=str(out) if out is not None else None
        )
        if (data is None) == (job is None):
            raise ActionForgeError(
                "give the samples to train on: either --data FILE or --job ID (not both)"
            )
        check_model_path(settings.base_model)
        if adapter is not None:
            check_adapter_path(adapter)
        samples = _read(data, fmt) if data is not None else _job_samples(str(job), url)
        with _quiet_libraries(), _progress("training", "steps") as progress:
            task = progress.add_task("train", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            result = train(settings, samples, adapter, progress=advance)
    out_console.print(_train_table(result))
    out_console.print(
        f"adapter and train_metrics.json written to {result.output_dir}",
        highlight=False,
        soft_wrap=True,
    )


def eval_command(
    model: Annotated[
        str | None, typer.Option("--model", help="Base model folder (or cached name).")
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Dataset file of samples (any format `formats` lists)."),
    ] = None,
    adapter: AdapterOption = None,
    predictions: Annotated[
        Path | None,
        typer.Option(
            "--predictions",
            help="Score these predictions on BFCL-style questions with BFCL's AST rules "
            "(JSON Lines: id, category, question, tools, reference, prediction); no model.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="With --predictions: write one verdict line per row here."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the metrics as JSON instead of a table.")
    ] = False,
    compare_base: Annotated[
        bool,
        typer.Option(
            "--compare-base", help="With --adapter: also evaluate the base model; show deltas."
        ),
    ] = False,
    fmt: FromOption = "unified",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Prompts per batch.")] = 8,
    max_new_tokens: Annotated[
        int, typer.Option("--max-new-tokens", min=1, help="Longest answer in tokens.")
    ] = 256,
) -> None:
    """Evaluate a model's tool calls on a dataset file: accuracy overall and per query style.
    With --predictions: score given predictions with BFCL's AST rules instead."""
    if predictions is not None:
        with readable_errors():
            if model is not None or data is not None or adapter is not None:
                raise ActionForgeError(
                    "--predictions scores given answers without a model; "
                    "leave out --model, --data and --adapter"
                )
            from service.cli.commands.predictions import score_predictions

            score_predictions(predictions, out, as_json)
        return
    from trainer.evaluate import compare, evaluate
    from trainer.modeling import check_adapter_path, check_model_path

    with readable_errors():
        if model is None or data is None:
            raise ActionForgeError(
                "give --model PATH and --data FILE to evaluate a model "
                "(or --predictions FILE --out VERDICTS to score given predictions)"
            )
        if out is not None:
            raise ActionForgeError("--out goes with --predictions; leave it out")
        if compare_base and adapter is None:
            raise ActionForgeError("--compare-base compares against an adapter; add --adapter DIR")
        check_model_path(model)
        if adapter is not None:
            check_adapter_path(adapter)
        samples = _read(data, fmt)
        runs: list[tuple[str, Path | None]] = [("adapter" if adapter else "model", adapter)]
        if compare_base and adapter is not None:
            runs.insert(0, ("base", None))
        reports: dict[str, EvalReport] = {}
        seconds = 0.0
        with _quiet_libraries(), _progress("answering", "samples") as progress:
            for label, adapter_dir in runs:
                task = progress.add_task(label, total=len(samples))

                def advance(done: int, total: int, task: Any = task) -> None:
                    progress.update(task, completed=done, total=total)

                run = evaluate(
                    model,
                    samples,
                    adapter_dir,
                    batch_size=batch_size,
                    max_new_tokens=max_new_tokens,
                    progress=advance,
                )
                reports[label] = run.report
                seconds += run.seconds
    final = reports[runs[-1][0]]
    if as_json:
        body: dict[str, Any] = {
            "model": model,
            "adapter": str(adapter) if adapter else None,
            "samples": len(samples),
            "seconds": round(seconds, 3),
            "metrics": final.to_dict(),
        }
        if "base" in reports:
            body["base_metrics"] = reports["base"].to_dict()
            body["delta"] = [
                {"group": d.group, "metric": d.metric, "before": d.before, "after": d.after}
                for d in compare(reports["base"], final)
            ]
        sys.stdout.write(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    title = f"{Path(model).name}" + (f" + {adapter.name}" if adapter else "") + f" on {data.name}"
    out_console.print(metrics_table(final, title))
    if "base" in reports:
        out_console.print(delta_table(reports["base"], final))


def register_train_commands(app: typer.Typer) -> None:
    """Add `train` and `eval` to the `actionforge` app."""
    app.command("train")(train_command)
    app.command("eval")(eval_command)


def metrics_table(report: EvalReport, title: str) -> Table:
    """One row per group (overall, then each query style), one column per metric; fits 80
    columns. The conversation columns (turn and conversation accuracy) are shown only when
    the report judged a multi-turn sample."""
    from trainer.evaluate import CONVERSATION_METRICS

    conversations = report.overall.conversations > 0
    caption = (
        "tool name / exact call / format pass: of samples that expect calls; "
        "irrel.: no call where none fits"
    )
    if conversations:
        caption += (
            "; a conversation counts one sample per turn; turn: right turns of conversations; "
            "conv.: conversations with every turn right"
        )
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, caption=caption)
    table.add_column("style", no_wrap=True)
    table.add_column("samples", justify="right")
    headers = ["accuracy", "tool\nname", "exact\ncall", "irrel.", "format\npass"]
    if conversations:
        headers += ["turn", "conv."]
    for header in headers:
        table.add_column(header, justify="right")
    table.add_column("bad\nJSON", justify="right")
    for group, counts in report.groups():
        rates = counts.rates()
        shown = [
            value
            for name, value in rates.items()
            if conversations or name not in CONVERSATION_METRICS
        ]
        table.add_row(
            f"[bold]{group}[/]" if group == "overall" else group,
            f"{counts.samples:,}",
            *(_percent(value) for value in shown),
            f"{counts.unparseable:,}",
        )
    return table


def delta_table(before: EvalReport, after: EvalReport) -> Table:
    """Each metric of each group before (base model) and after (with the adapter)."""
    from trainer.evaluate import compare

    table = Table(title="base model -> with adapter")
    for header in ("style", "metric", "base", "adapter", "change"):
        table.add_column(header, justify="left" if header in ("style", "metric") else "right")
    from trainer.evaluate import CONVERSATION_METRICS

    for delta in compare(before, after):
        if delta.metric in CONVERSATION_METRICS and delta.before is None and delta.after is None:
            continue  # no conversation in this group
        change = delta.change
        shown = "-" if change is None else f"{change * 100:+.1f} pt"
        colour = "green" if change and change > 0 else "red" if change and change < 0 else ""
        table.add_row(
            delta.group,
            delta.metric,
            _percent(delta.before),
            _percent(delta.after),
            f"[{colour}]{shown}[/]" if colour else shown,
        )
    return table


def _train_table(result: TrainResult) -> Table:
    table = Table(title="LoRA training", show_header=False)
    table.add_column("")
    table.add_column("", justify="right")
    rows = [
        ("samples trained", f"{result.samples:,}"),
        ("replayed", f"{result.replayed:,}"),
        ("dropped: longer than max_length", f"{len(result.dropped_too_long):,}"),
        ("skipped: no answer", f"{len(result.skipped_no_answer):,}"),
        ("held out", f"{len(result.heldout_ids):,}"),
        ("steps", f"{result.steps:,}"),
        ("train loss first -> last", f"{_num(result.loss_first)} -> {_num(result.loss_last)}"),
        (
            "held-out loss before -> after",
            f"{_num(result.heldout_loss_before)} -> {_num(result.heldout_loss_after)}",
        ),
        ("tokens", f"{result.tokens:,}"),
        ("train time", f"{result.train_seconds:.1f} s"),
        ("tokens/s", f"{result.tokens_per_second:,.0f}"),
        ("device", f"{result.device} ({result.dtype})"),
        ("continued from", str(result.started_from) if result.started_from else "-"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def _read(data: Path, fmt: str) -> list[Sample]:
    from trainer.errors import TrainingDataError

    samples = list(read_samples(data, fmt))
    if not samples:
        raise TrainingDataError(f"{data}: no samples in the file; give a file with rows")
    return samples


def _job_samples(job_id: str, url: str | None) -> list[Sample]:
    from service.cli.client import client_for
    from service.cli.commands.local import load_settings
    from trainer.errors import TrainingDataError

    with client_for(load_settings(), url) as client:
        samples = client.accepted_samples(job_id)
    if not samples:
        raise TrainingDataError(
            f"job {job_id} has no accepted samples yet; wait for it (actionforge status "
            f"{job_id}) or give another job"
        )
    err_console.print(f"job {job_id}: {len(samples):,} accepted samples", highlight=False)
    return samples


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _progress(label: str, unit: str) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn(f"{label} {{task.description}}"),
        BarColumn(bar_width=24),
        TextColumn(f"{{task.completed:,}}/{{task.total}} {unit}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )


@contextmanager
def _quiet_libraries() -> Iterator[None]:
    """No per-file progress bars from transformers while ours runs (restored afterwards)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
