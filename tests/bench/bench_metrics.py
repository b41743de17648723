"""What the metrics cost a verify step, side by side with the step's own work.

Run: python tests/bench/bench_metrics.py [--batch 50] [--rounds 200]

A batch of template samples from the travel catalog goes through the default stages
(`run_stages`), then the counts a verify step makes are taken (`count_verdicts`,
`count_outcomes`, the stage seconds) and published by a commit, in multiprocess mode (a metrics
folder, as under `serve`), against the same commit with nothing to publish. Prints milliseconds
per batch of each and the metrics' share of the stages' time. Times are CPU seconds of this
process, so other work on a shared machine does not change the ratio much.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from service.metrics.multiprocess import use_metrics_dir

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    use_metrics_dir(Path(tempfile.mkdtemp(prefix="bench-metrics-")))

    # Imported after the folder is set, as the worker does.
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session

    from generators.base import GenerationRequest, load_generator
    from service.metrics.recorded import count_outcomes, count_verdicts, observe_stage_seconds
    from unified.catalogs import load_catalog
    from verifiers.stages import DEFAULT_STAGES, StageContext, build_stages, run_stages

    tools = load_catalog(ROOT / "examples" / "travel_api.yaml").tools
    request = GenerationRequest(n=args.batch, seed=3, id_prefix="b-")
    samples = load_generator("template")().generate(tools, request)
    stages = build_stages(DEFAULT_STAGES)
    context = StageContext.for_catalog(tools, None)
    session = Session(create_engine("sqlite://"))

    def stages_once() -> object:
        return run_stages(stages, samples, context)

    pipeline = stages_once()

    def commit_once(with_metrics: bool) -> None:
        session.execute(text("SELECT 1"))
        if with_metrics:
            verdicts = [verdict for judged in pipeline.verdicts for verdict in judged]
            count_verdicts(session, verdicts)
            outcomes: Counter[tuple[str, str | None, str | None]] = Counter()
            for judged in pipeline.verdicts:
                last = judged[-1]
                status = "accepted" if last.accepted else "rejected"
                outcomes[(status, last.stage, None if last.accepted else last.reason)] += 1
            count_outcomes(session, "template", [(*key, n) for key, n in outcomes.items()])
            observe_stage_seconds(pipeline.seconds)
        session.commit()

    def cpu_ms(work: object, *arguments: object) -> float:
        started = time.process_time()
        for _ in range(args.rounds):
            work(*arguments)  # type: ignore[operator]
        return (time.process_time() - started) * 1000 / args.rounds

    stage_ms = cpu_ms(stages_once)
    plain_ms = cpu_ms(commit_once, False)
    counted_ms = cpu_ms(commit_once, True)
    metrics_ms = max(counted_ms - plain_ms, 0.0)

    table = Table(title=f"per batch of {args.batch} samples, {args.rounds} rounds (CPU ms)")
    for column in ("default stages", "commit", "commit + metrics", "metrics", "metrics / stages"):
        table.add_column(column, justify="right")
    table.add_row(
        f"{stage_ms:.3f}",
        f"{plain_ms:.3f}",
        f"{counted_ms:.3f}",
        f"{metrics_ms:.3f}",
        f"{metrics_ms / stage_ms:.2%}",
    )
    Console().print(table)


if __name__ == "__main__":
    main()
