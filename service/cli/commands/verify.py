"""`actionforge verify FILE --stages format,execution,dedup`: run verification stages over a
dataset file, in order, and write one verdict per row (the verdict that decided it).

Rows are verified in chunks, in file order, with one stage context: the dedup stage keeps the
first copy of a duplicate in the file and names it by its row index. The execution stage makes
the calls against the mock API of the `--catalog` (and runs a Python catalog's functions in the
sandbox). A row that cannot be read as a sample gets the verdict of the `read` stage,
`unreadable_row`, with what to change as its detail; only a file that cannot be read at all stops
the command. Multi-turn rows are judged turn by turn by the stages that judge conversations
(generation, query, format, grounding, coverage, dedup); any other stage gives them
`multi_turn_not_judged`.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from llm.base import BackendConfig
from service.cli.console import err_console, out_console
from unified.catalogs import load_catalog
from unified.errors import ActionForgeError, RowError
from unified.formats import FORMATS, read_samples
from unified.formats.base import SampleReader
from unified.model import Sample
from verifiers.stages import (
    EXECUTION_STAGE,
    SEMANTIC_STAGE,
    StageContext,
    build_stages,
    check_stage_names,
    check_stage_options,
    check_stage_order,
    run_stages,
)
from verifiers.verdict import Reason, Verdict

CHUNK = 256
GC_THRESHOLD = 10_000
"""Allocations between young-generation collections while rows are verified (with Python's
default, 700, a tenth to a fifth of the time went to collecting each row's short-lived objects)."""
PYTHON_CATALOG = "python"
READ_STAGE = "read"


def stage_names(stages: str) -> list[str]:
    """`format,execution` -> ["format", "execution"], each checked to be a known stage."""
    names = [name.strip() for name in stages.split(",") if name.strip()]
    if not names:
        raise ActionForgeError("--stages is empty; list stages in order, e.g. format,execution")
    check_stage_names(names)
    try:
        check_stage_order(names)
    except ActionForgeError as exc:
        raise ActionForgeError(f"--stages: {exc}") from None
    return names


def stage_context(names: Sequence[str], catalog: Path | None) -> StageContext:
    """The context the stages run in: the catalog's tools (and a Python catalog's source) when
    given, else each row's own tools. The execution stage needs a catalog."""
    if catalog is None:
        if EXECUTION_STAGE in names:
            raise ActionForgeError(
                f"--stages {EXECUTION_STAGE} needs --catalog: the calls are made against the "
                "catalog's tools (a mock API, or a Python module's functions); give --catalog FILE"
            )
        return StageContext()
    loaded = load_catalog(catalog)
    document = catalog.read_text(encoding="utf-8-sig") if loaded.kind == PYTHON_CATALOG else None
    return StageContext.for_catalog(loaded.tools, document, catalog_only=True)


def verify_file(
    input_file: Path,
    from_format: str,
    out: Path,
    stages: str,
    catalog: Path | None,
    reader_options: dict[str, Any],
    judge: dict[str, Any] | None = None,
) -> None:
    """Verify every row of `input_file` with `stages`; one verdict per row, in input order,
    into `out`; a table of outcomes on the terminal. `judge` configures the semantic stage's
    LLM (a `BackendConfig` as a dict)."""
    names = stage_names(stages)
    FORMATS.get(from_format)
    context = stage_context(names, catalog)
    if judge is not None:
        try:
            config = BackendConfig.model_validate(judge)
        except ValidationError as exc:
            problem = exc.errors()[0]
            field = ".".join(str(part) for part in problem["loc"]) or "judge"
            raise ActionForgeError(f"--judge: {field}: {problem['msg']}") from None
        context.options[SEMANTIC_STAGE] = check_stage_options(SEMANTIC_STAGE, {"judge": config})
    pipeline = build_stages(names)
    counts: Counter[str] = Counter()
    options = {**reader_options, "on_error": "skip"}
    with (
        read_samples(input_file, from_format, **options) as reader,
        out.open("wb") as sink,
        _progress() as progress,
        _fewer_collections(),
    ):
        task = progress.add_task("verify")
        index = 0
        for chunk in _chunks(_rows_in_order(reader)):
            # Judged under their row numbers: ids repeat in some files, and dedup names rows.
            numbered = [
                row.model_copy(update={"id": str(index + i)})
                for i, row in enumerate(chunk)
                if isinstance(row, Sample)
            ]
            judged = iter(run_stages(pipeline, numbered, context).verdicts)
            for row in chunk:
                if isinstance(row, Sample):
                    verdict, row_id = _deciding(next(judged)), row.id
                else:
                    verdict, row_id = _unreadable(row), None
                counts[verdict.reason or "accepted"] += 1
                line = {"index": index, "id": row_id, **verdict.model_dump()}
                sink.write(orjson.dumps(line) + b"\n")
                index += 1
            progress.advance(task, len(chunk))
    print_counts(counts, out, names)


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Leave what is loaded (modules, the catalog, compiled schemas) out of garbage collection
    and collect less often while inside; as before afterwards."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def _rows_in_order(reader: SampleReader) -> Iterator[Sample | RowError]:
    """The reader's samples with the rows it skipped in between, in file order."""
    skipped: list[RowError] = []
    reader.report_skipped(skipped.append)
    for sample in reader:
        yield from skipped
        skipped.clear()
        yield sample
    yield from skipped


def _unreadable(error: RowError) -> Verdict:
    return Verdict.reject(READ_STAGE, Reason.unreadable_row, error.message)


def _chunks(rows: Iterator[Sample | RowError]) -> Iterator[list[Sample | RowError]]:
    while chunk := list(islice(rows, CHUNK)):
        yield chunk


def _deciding(verdicts: list[Verdict]) -> Verdict:
    # run_stages gives every sample at least one verdict when there is a stage.
    return verdicts[-1]


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("verified {task.completed:,} rows"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )


def print_counts(counts: Counter[str], out: Path, names: Sequence[str]) -> None:
    """The outcomes: accepted, then each reason code, with their shares."""
    total = sum(counts.values())
    table = Table(title=f"{total:,} rows verified ({', '.join(names)})")
    table.add_column("outcome")
    table.add_column("rows", justify="right")
    table.add_column("share", justify="right")
    accepted = counts.pop("accepted", 0)
    table.add_row("[green]accepted[/]", f"{accepted:,}", f"{accepted / max(total, 1):.1%}")
    for reason, n in counts.most_common():
        table.add_row(f"[red]{reason}[/]", f"{n:,}", f"{n / max(total, 1):.1%}")
    out_console.print(table)
    out_console.print(f"verdicts written to {out}", highlight=False)
