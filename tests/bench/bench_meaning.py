"""Verification of meaning on public data: how many right answers the no-LLM meaning stages
accept, and how many wrong ones they reject, on BFCL's single-turn categories.

Run: pip install --no-deps bfcl-eval   (its data; nothing it depends on is needed)
     python tests/bench/bench_meaning.py [--data DIR] [--stages query,format,grounding,coverage]
         [--held-out] [--judge '{"backend": "openai", "model": M, "base_url": URL}'
         --judge-limit 20 --votes 1]

With `--judge`, a seeded subset of every row is also judged: the columns say how many right
answers the judge alone and the stages followed by the judge accept (of wrong ones: reject).

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
import random
from pathlib import Path

from rich.console import Console
from rich.table import Table

from generators.wrong_answers import WrongAnswers
from llm.base import BackendConfig
from llm.shared import shared_backend
from unified.formats import read_samples
from unified.model import Sample
from verifiers.judge import SemanticJudge
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


class JudgeColumns:
    """With `--judge`: on a seeded subset of each row, how many the judge alone and the stages
    followed by the judge accept (every one of them is asked of the judge)."""

    def __init__(self, judge: str, limit: int, votes: int, seed: int) -> None:
        config = BackendConfig.model_validate_json(judge)
        self.judge = SemanticJudge(shared_backend(config), votes=votes)
        self.limit = limit
        self.rng = random.Random(seed)

    def accepted(self, samples: list[Sample], stages: list[str]) -> tuple[int, int, int]:
        """(subset size, accepted by the judge alone, accepted by the stages and the judge)."""
        subset = self.rng.sample(samples, min(self.limit, len(samples)))
        by_judge = [v.accepted for v in self.judge.judge(subset, StageContext())]
        by_stages = set(run_stages(build_stages(stages), subset, StageContext()).survivors())
        both = sum(ok for i, ok in enumerate(by_judge) if i in by_stages)
        return len(subset), sum(by_judge), both


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="BFCL's data folder (default: bfcl-eval's)")
    parser.add_argument("--stages", default=",".join(DEFAULT_STAGES))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--judge",
        help='also judge a subset of each row with this LLM: {"backend": "openai", "model": M, '
        '"base_url": URL}',
    )
    parser.add_argument("--judge-limit", type=int, default=20, help="samples judged per row")
    parser.add_argument("--votes", type=int, default=1, help="the judge's votes per sample")
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

    judged = (
        JudgeColumns(args.judge, args.judge_limit, args.votes, args.seed) if args.judge else None
    )
    table = Table(title=f"stages: {', '.join(stages)}")
    columns = ["samples", "kind", "count", "accepted", "rejected", "goal"]
    if judged is not None:
        columns += ["judged", "judge alone", "stages + judge"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("samples", "kind") else "right")

    def judge_cells(samples: list[Sample], right: bool) -> list[str]:
        if judged is None:
            return []
        size, alone, both = judged.accepted(samples, stages)
        shown = [alone, both] if right else [size - alone, size - both]
        return [str(size), *(f"{count / size:.0%}" for count in shown)]

    right_total = right_kept = 0
    for category, samples in by_category.items():
        kept = accepted(samples, stages)
        right_total, right_kept = right_total + len(samples), right_kept + kept
        share = f"{kept / len(samples):.2%}"
        table.add_row(category, "right", str(len(samples)), share, "", "",
                      *judge_cells(samples, right=True))  # fmt: skip
    table.add_row("all", "right", str(right_total), f"{right_kept / right_total:.2%}", "",
                  f">= {ACCEPT_GOAL:.0%}", end_section=True)  # fmt: skip
    variants = WrongAnswers(rows, args.seed)
    wrong_total = wrong_rejected = 0
    for name, make in variants.makers().items():
        wrong = [made for sample in rows if sample.tool_calls() and (made := make(sample))]
        rejected = len(wrong) - accepted(wrong, stages)
        wrong_total, wrong_rejected = wrong_total + len(wrong), wrong_rejected + rejected
        share = f"{rejected / len(wrong):.2%}"
        table.add_row(name, "wrong", str(len(wrong)), "", share, "",
                      *judge_cells(wrong, right=False))  # fmt: skip
    table.add_row("all", "wrong", str(wrong_total), "", f"{wrong_rejected / wrong_total:.2%}",
                  f">= {REJECT_GOAL:.0%}")  # fmt: skip
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
