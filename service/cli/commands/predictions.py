"""`actionforge eval --predictions FILE --out VERDICTS`: score given predictions on BFCL-style
questions with BFCL's AST rules (`trainer.bfcl_predictions`); no model is loaded."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
from rich import box
from rich.table import Table

from service.cli.console import out_console
from trainer.bfcl_predictions import CategoryTally, score_file, tally, write_verdicts
from unified.errors import ActionForgeError

TOP_REASONS = 3


def score_predictions(predictions: Path, out: Path | None, as_json: bool) -> None:
    """Score every line of `predictions`, write the verdicts to `out`, show the tallies."""
    if out is None:
        raise ActionForgeError("--predictions needs --out VERDICTS.jsonl for the verdict lines")
    rows = list(score_file(predictions))
    if not rows:
        raise ActionForgeError(f"{predictions}: no predictions in the file; give a file with rows")
    write_verdicts(rows, out)
    tallies = tally(rows)
    if as_json:
        body = {
            category: {
                "rows": counts.rows,
                "valid": counts.valid,
                "accuracy": counts.accuracy,
                "reasons": dict(counts.reasons.most_common()),
            }
            for category, counts in tallies.items()
        }
        sys.stdout.write(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    out_console.print(_table(tallies, predictions.name))
    out_console.print(f"wrote {len(rows):,} verdicts to {out}", highlight=False, soft_wrap=True)


def _table(tallies: dict[str, CategoryTally], title: str) -> Table:
    table = Table(title=f"BFCL AST rules on {title}", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("category", no_wrap=True)
    for header in ("rows", "valid", "accuracy"):
        table.add_column(header, justify="right")
    table.add_column("most frequent failures")
    for category, counts in tallies.items():
        failures = [(r, n) for r, n in counts.reasons.most_common() if r != "valid"]
        table.add_row(
            f"[bold]{category}[/]" if category == "overall" else category,
            f"{counts.rows:,}",
            f"{counts.valid:,}",
            f"{counts.accuracy:.1%}",
            ", ".join(f"{reason} {n}" for reason, n in failures[:TOP_REASONS]) or "-",
        )
    return table
