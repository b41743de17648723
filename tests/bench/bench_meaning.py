"""Verification of meaning on public data: how many right answers the no-LLM meaning stages
accept, and how many wrong ones they reject, on BFCL's single-turn categories.

Run: pip install --no-deps bfcl-eval   (its data; nothing it depends on is needed)
     python tests/bench/bench_meaning.py [--data DIR] [--stages query,format,grounding,coverage]

Right samples are BFCL's questions with their ground-truth answers (`unified.formats` reads them
with the possible-answer files). Wrong samples are made from each right one, schema-valid and
seeded (`generators.wrong_answers`, which also makes a job's judge calibration set): a value
swapped for another row's value of the same type or a changed number, the query swapped for
another row's or for junk, a parallel call dropped, a call repeated with other values, every
call dropped (an irrelevance answer where a tool fits). BFCL's irrelevance questions are right
samples too: no offered tool fits them, and the right answer calls nothing.

The goal the project holds itself to with the no-LLM stages alone: accept at least 95% of right
answers and reject at least 90% of wrong ones.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from rich.console import Console
from rich.table import Table

from generators.wrong_answers import WrongAnswers
from unified.formats import read_samples
from unified.model import Sample
from verifiers.stages import DEFAULT_STAGES, StageContext, build_stages, run_stages

CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "live_simple")
IRRELEVANCE = "irrelevance"
"""Questions no offered tool fits: the right answer calls nothing (no possible-answer file)."""
HELD_OUT = ("live_multiple", "live_parallel", "live_parallel_multiple", "live_irrelevance")
"""Categories the stages' thresholds were not tuned on (`--held-out`)."""
ACCEPT_GOAL = 0.95
REJECT_GOAL = 0.90


def bfcl_data_dir() -> Path:
    """The data folder of the installed bfcl-eval package (found without importing it)."""
    spec = importlib.util.find_spec("bfcl_eval")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("bfcl-eval is not installed: pip install --no-deps bfcl-eval, or --data")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def right_samples(
    data: Path, categories: tuple[str, ...] = (*CATEGORIES, IRRELEVANCE)
) -> dict[str, list[Sample]]:
    """Each category's questions with their right answers; an irrelevance category's right
    answer calls nothing."""
    found = {}
    for category in categories:
        questions = data / f"BFCL_v4_{category}.json"
        answers = data / "possible_answer" / f"BFCL_v4_{category}.json"
        irrelevant = category.endswith(IRRELEVANCE)
        # a few live rows hold an assistant turn: multi-turn, which this set leaves out
        with read_samples(
            questions, "bfcl", answers=None if irrelevant else answers, on_error="skip"
        ) as reader:
            found[category] = list(reader)
    return found


def accepted(samples: list[Sample], stages: list[str]) -> int:
    pipeline = run_stages(build_stages(stages), samples, StageContext())
    return len(pipeline.survivors())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="BFCL's data folder (default: bfcl-eval's)")
    parser.add_argument("--stages", default=",".join(DEFAULT_STAGES))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--held-out",
        action="store_true",
        help=f"measure on {', '.join(HELD_OUT)}, which the thresholds were not tuned on",
    )
    args = parser.parse_args()
    stages = [stage.strip() for stage in args.stages.split(",") if stage.strip()]
    categories = HELD_OUT if args.held_out else (*CATEGORIES, IRRELEVANCE)
    by_category = right_samples(args.data or bfcl_data_dir(), categories)
    rows = [
        sample
        for category, samples in by_category.items()
        if not category.endswith(IRRELEVANCE)
        for sample in samples
    ]

    table = Table(title=f"stages: {', '.join(stages)}")
    for column in ("samples", "kind", "count", "accepted", "rejected", "goal"):
        table.add_column(column, justify="left" if column in ("samples", "kind") else "right")
    right_total = right_kept = 0
    for category, samples in by_category.items():
        kept = accepted(samples, stages)
        right_total, right_kept = right_total + len(samples), right_kept + kept
        table.add_row(category, "right", str(len(samples)), f"{kept / len(samples):.2%}", "", "")
    table.add_row("all", "right", str(right_total), f"{right_kept / right_total:.2%}", "",
                  f">= {ACCEPT_GOAL:.0%}", end_section=True)  # fmt: skip
    variants = WrongAnswers(rows, args.seed)
    wrong_total = wrong_rejected = 0
    for name, make in variants.makers().items():
        wrong = [made for sample in rows if sample.tool_calls() and (made := make(sample))]
        rejected = len(wrong) - accepted(wrong, stages)
        wrong_total, wrong_rejected = wrong_total + len(wrong), wrong_rejected + rejected
        table.add_row(name, "wrong", str(len(wrong)), "", f"{rejected / len(wrong):.2%}", "")
    table.add_row("all", "wrong", str(wrong_total), "", f"{wrong_rejected / wrong_total:.2%}",
                  f">= {REJECT_GOAL:.0%}")  # fmt: skip
    Console().print(table)


if __name__ == "__main__":
    main()
