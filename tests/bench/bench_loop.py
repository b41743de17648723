"""The whole loop on a real model: does training on verified data make a model call tools better
than training on as much unverified data? (APIGen's claim and its control.)

Run: pip install --no-deps bfcl-eval   (its data: the held-out questions)
     python tests/bench/bench_loop.py [--n 120] [--per-category 10] [--epochs 2] [--seed 7]
         [--model DIR] [--out results.json] [--max-new-tokens 128] [--threads 1] [--keep DIR]
         [--samples DIR/generated.jsonl] [--gradient-accumulation 1]
     Smoke run: --n 18 --per-category 1 --epochs 1 --max-new-tokens 64
     `--samples` takes the generated samples an earlier run kept (`--keep`) instead of generating
     again; training needs memory in proportion to --batch-size (about 15 GB at 4 with 2,048-token
     samples): lower it and raise --gradient-accumulation for the same steps in less memory.

The model is SmolLM2-135M-Instruct (tests/smollm2_model.py; `--model DIR` gives its float32
folder, such as another checkout's .cache/smollm2-0.1.2), on the CPU throughout:

1. Generation: the llm generator (backend "openai") writes `--n` samples, spread evenly over
   catalogs that are not BFCL's (CATALOGS: the travel example, OpenAPI documents, OpenAI and
   xLAM function lists, a Python module), in the default mix of query styles, with SmolLM2
   served by vLLM's OpenAI-compatible CPU server (stopped once generation is done).
2. Verification: every generated sample goes through the `generation` stage (which the llm
   generator requires first) and the default stages (DEFAULT_STAGES: query, format, grounding,
   coverage), one catalog at a time with that catalog's context.
   - verified set: the samples every stage accepts;
   - control set: as many samples, drawn with the seed from all the generated samples that pass
     the `generation` and `format` stages only: the generator's data as it wrote it, unjudged
     for meaning, but parseable, with known tools and schema-valid arguments, so it can be
     trained on. It may hold verified samples (as many as chance puts there; the table says
     how many).
3. Training: one LoRA adapter on each set with `trainer.train.train`, the same TrainConfig for
   both (epochs, learning rate, batch, max_length, seed).
4. Evaluation: the base model, the verified adapter and the control adapter answer the same
   seeded subset of BFCL's public single-turn questions (`--per-category` from each of
   simple_python, multiple, parallel, parallel_multiple, irrelevance; questions whose prompt
   plus `--max-new-tokens` would not fit SmolLM2's 2048-token context are left out before the
   draw) with `trainer.evaluate` (greedy), scored by BFCL's AST rules against their possible
   answers. Accuracy is exact calls, or no call on an irrelevance question, over the questions.

Training and evaluation run in this process with `--threads` torch threads (default 1): on a
2-core machine shared with other work, two threads wait on each other at every operation and
ran an evaluation several times slower than one.

It prints the funnel, the training runs, accuracy per category for each side and how long every
step took, and writes all figures (and the models' answers) to `--out`. A benchmark of figures:
nothing is asserted. The machine's CPUs may be shared: the seconds are what this run took.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from llm_fixtures import MAX_MODEL_LEN, running_vllm_server  # noqa: E402
from smollm2_model import MODEL, cached_smollm2  # noqa: E402

from generators.base import GenerationRequest, derived_seed  # noqa: E402
from generators.llm.generator import LlmGenerator  # noqa: E402
from llm.base import BackendUnavailable  # noqa: E402
from unified.catalogs import load_catalog  # noqa: E402
from unified.formats import read_samples  # noqa: E402
from unified.model import Sample  # noqa: E402
from verifiers.stages import (  # noqa: E402
    DEFAULT_STAGES,
    FORMAT_STAGE,
    GENERATION_STAGE,
    StageContext,
    build_stages,
    run_stages,
)

CATALOGS = (
    "examples/travel_api.yaml",
    "tests/data/openapi/oai-v3.0-petstore-expanded.yaml",
    "tests/data/openapi/oai-v2.0-uber.json",
    "tests/data/openapi/swagger-codegen-v2.0-petstore.yaml",
    "tests/data/openapi/apis-guru-v3.0-apis.guru.yaml",
    "tests/data/functions/openai_cookbook_tools.json",
    "tests/data/functions/openai_responses_tools.json",
    "tests/data/functions/xlam_tools.json",
    "tests/data/python/hints_and_docstrings.py",
)
"""Catalogs the samples are generated from: none of them BFCL's (the BFCL-derived files under
tests/data are left out), each loaded cleanly with at least two tools."""
VERIFY_STAGES = (GENERATION_STAGE, *DEFAULT_STAGES)
CONTROL_STAGES = (GENERATION_STAGE, FORMAT_STAGE)
CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance")
SIDES = ("base", "verified", "control")
CHUNK = 32
"""Samples per generator call (the backend keeps 16 requests in flight)."""
GENERATION_MAX_TOKENS = 400  # as the SmolLM2 job test
REQUEST_TIMEOUT_S = 1200.0
CREATED = "2026-12-06T12:00:00+00:00"
TOP_REASONS = 8


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Timings:
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        log(f"{name} ...")
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = time.perf_counter() - started
            log(f"{name}: {self.seconds[name]:.1f} s")


# --- generation and verification ------------------------------------------------------------


@dataclass
class Generated:
    """One catalog's samples and their verdicts."""

    catalog: str
    samples: list[Sample]
    verified: list[bool] = field(default_factory=list)
    reasons: list[str | None] = field(default_factory=list)  # first rejecting stage's reason
    stages: list[str | None] = field(default_factory=list)  # the stage that rejected it
    control_ok: list[bool] = field(default_factory=list)


def split_evenly(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def generate_all(
    model_dir: Path, n: int, seed: int, scratch: Path
) -> tuple[list[Generated], dict[str, Any]]:
    """`n` samples over CATALOGS from SmolLM2 on vLLM's server; (per catalog, usage totals).
    Each catalog's samples are appended to `scratch`/generated.jsonl as they come."""
    log_file = scratch / "vllm-server.log"
    (scratch / "generated.jsonl").write_text("", encoding="utf-8")
    found: list[Generated] = []
    usage: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    wall_s = 0.0
    lost: list[str] = []
    with running_vllm_server(
        model_dir, log_file, extra_args=["--served-model-name", MODEL.served_name]
    ) as server:
        log(f"vLLM server up at {server.base_url} (log: {log_file})")
        options = {
            "backend": "openai",
            "model": MODEL.served_name,
            "base_url": server.base_url,
            "max_tokens": GENERATION_MAX_TOKENS,
            "created": CREATED,
            # 16 answers in flight share a contended CPU at ~15 tokens/s in all: one answer of
            # max_tokens can take minutes, and the default 120 s would retry it for ever
            "timeout_s": REQUEST_TIMEOUT_S,
            "max_retries": 1,
        }
        generator = LlmGenerator()
        done = 0
        for path, count in zip(CATALOGS, split_evenly(n, len(CATALOGS)), strict=True):
            tools = load_catalog(ROOT / path).tools
            samples: list[Sample] = []
            for chunk, start in enumerate(range(0, count, CHUNK)):
                request = GenerationRequest(
                    n=min(CHUNK, count - start),
                    seed=derived_seed(seed, path, chunk),
                    id_prefix=f"{Path(path).stem}-{chunk}-",
                    options=options,
                )
                try:
                    made, spent = generator.generate_with_usage(tools, request)
                except BackendUnavailable as exc:  # a chunk lost, the run goes on
                    lost.append(f"{path} chunk {chunk} ({request.n} samples): {exc}")
                    log(f"LOST {lost[-1]}")
                    continue
                samples += made
                usage.update(
                    requests=spent.requests,
                    prompt_tokens=spent.prompt_tokens,
                    completion_tokens=spent.completion_tokens,
                )
                wall_s += spent.wall_s
                failures.update(spent.failures)
                done += len(made)
                log(f"generated {done}/{n} ({path})")
            found.append(Generated(path, samples))
            with (scratch / "generated.jsonl").open("a", encoding="utf-8") as out:
                out.writelines(sample.model_dump_json() + "\n" for sample in samples)
    return found, {**usage, "wall_s": wall_s, "failures": dict(failures), "lost_chunks": lost}


def load_generated(path: Path) -> list[Generated]:
    """The samples an earlier run kept (`generated.jsonl`), per catalog of CATALOGS: each
    sample's id starts with its catalog file's stem."""
    with read_samples(path, "unified") as reader:
        samples = list(reader)
    found = []
    for catalog in CATALOGS:
        prefix = f"{Path(catalog).stem}-"
        found.append(Generated(catalog, [s for s in samples if s.id.startswith(prefix)]))
    if sum(len(g.samples) for g in found) != len(samples):
        raise SystemExit(f"{path}: some samples are not from the catalogs of this benchmark")
    return found


def verify_all(found: list[Generated]) -> None:
    """Fill in each sample's verdicts: the default stages, and the control's format check."""
    for generated in found:
        path = ROOT / generated.catalog
        catalog = load_catalog(path)
        document = path.read_text(encoding="utf-8") if path.suffix == ".py" else None
        context = StageContext.for_catalog(catalog.tools, document)
        result = run_stages(build_stages(VERIFY_STAGES), generated.samples, context)
        survivors = set(result.survivors())
        for index, verdicts in enumerate(result.verdicts):
            rejected = next((v for v in verdicts if not v.accepted), None)
            generated.verified.append(index in survivors)
            generated.reasons.append(rejected.reason if rejected else None)
            generated.stages.append(rejected.stage if rejected else None)
        control = run_stages(build_stages(CONTROL_STAGES), generated.samples, context)
        kept = set(control.survivors())
        generated.control_ok = [i in kept for i in range(len(generated.samples))]


# --- BFCL questions -------------------------------------------------------------------------


def bfcl_data_dir() -> Path:
    """The data folder of the installed bfcl-eval package (found without importing it)."""
    spec = importlib.util.find_spec("bfcl_eval")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("bfcl-eval is not installed: pip install --no-deps bfcl-eval")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def bfcl_questions(
    model_dir: Path, per_category: int, max_new_tokens: int, seed: int
) -> tuple[list[Sample], list[str], dict[str, dict[str, int]]]:
    """A seeded subset of each category's questions that fit the context: (questions, their
    categories, per category how many there are, fit, and were drawn)."""
    from trainer.encode import ChatEncoder
    from trainer.modeling import load_tokenizer
    from trainer.render import render

    encoder = ChatEncoder(load_tokenizer(str(model_dir)))
    data = bfcl_data_dir()
    rng = random.Random(seed)
    questions: list[Sample] = []
    categories: list[str] = []
    counts: dict[str, dict[str, int]] = {}
    for category in CATEGORIES:
        irrelevant = category == "irrelevance"
        answers = data / "possible_answer" / f"BFCL_v4_{category}.json"
        with read_samples(
            data / f"BFCL_v4_{category}.json",
            "bfcl",
            answers=None if irrelevant else answers,
            on_error="skip",
        ) as reader:
            rows = list(reader)
        budget = MAX_MODEL_LEN - max_new_tokens
        fit = [s for s in rows if len(encoder.prompt_ids(render(s))) <= budget]
        drawn = rng.sample(fit, min(per_category, len(fit)))
        counts[category] = {"questions": len(rows), "fit": len(fit), "drawn": len(drawn)}
        questions += drawn
        categories += [category] * len(drawn)
    return questions, categories, counts


# --- the report -----------------------------------------------------------------------------


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def funnel_tables(found: list[Generated], sets: dict[str, list[Sample]], pool: int) -> list[Table]:
    samples = [s for g in found for s in g.samples]
    stages = [st for g in found for st in g.stages]
    reasons = Counter(r for g in found for r in g.reasons if r)
    accepted = sum(v for g in found for v in g.verified)
    funnel = Table(title=f"Funnel: {len(samples)} generated, {accepted} accepted")
    for header in ("stage", "reached", "rejected"):
        funnel.add_column(header, justify="left" if header == "stage" else "right")
    reached = len(samples)
    for stage in VERIFY_STAGES:
        rejected = sum(1 for st in stages if st == stage)
        funnel.add_row(stage, str(reached), str(rejected))
        reached -= rejected
    funnel.add_row("accepted", str(reached), "", end_section=True)
    funnel.add_row("control pool (generation + format)", str(pool), "")
    verified_ids = {s.id for s in sets["verified"]}
    overlap = sum(s.id in verified_ids for s in sets["control"])
    funnel.add_row(f"control set drawn ({overlap} also verified)", str(len(sets["control"])), "")

    by_reason = Table(title=f"Rejected by reason (top {TOP_REASONS})")
    by_reason.add_column("reason")
    by_reason.add_column("samples", justify="right")
    by_reason.add_column("share", justify="right")
    for reason, count in reasons.most_common(TOP_REASONS):
        by_reason.add_row(reason, str(count), f"{count / len(samples):.0%}")

    per_catalog = Table(title="Per catalog")
    for header in ("catalog", "generated", "accepted", "control pool"):
        per_catalog.add_column(header, justify="left" if header == "catalog" else "right")
    for g in found:
        per_catalog.add_row(
            Path(g.catalog).name, str(len(g.samples)), str(sum(g.verified)), str(sum(g.control_ok))
        )
    return [funnel, by_reason, per_catalog]


def train_table(results: dict[str, dict[str, Any]]) -> Table:
    table = Table(title="Training (same TrainConfig for both)")
    headers = ("set", "samples", "dropped too long", "steps", "loss first", "loss last", "train s")
    for header in (*headers, "total s"):
        table.add_column(header, justify="left" if header == "set" else "right")
    for name, result in results.items():
        if result.get("skipped"):
            table.add_row(name, "0", "", "", "", "", "", "", style="dim")
            continue
        table.add_row(
            name,
            str(result["samples"]),
            str(len(result["dropped_too_long"])),
            str(result["steps"]),
            loss(result["loss_first"]),
            loss(result["loss_last"]),
            f"{result['train_seconds']:.0f}",
            f"{result['total_seconds']:.0f}",
        )
    return table


def accuracy_table(reports: dict[str, dict[str, Any]], drawn: dict[str, int]) -> Table:
    table = Table(
        title="Accuracy on held-out BFCL questions (exact calls, or no call where none fits)"
    )
    table.add_column("category")
    table.add_column("questions", justify="right")
    for side in reports:
        table.add_column(side, justify="right")
    for category in (*CATEGORIES, "overall"):
        cells = [rate(reports[side][category]["accuracy"]) for side in reports]
        table.add_row(
            category, str(drawn.get(category, "")), *cells, end_section=category == CATEGORIES[-1]
        )
    return table


def metrics_table(reports: dict[str, dict[str, Any]]) -> Table:
    table = Table(title="Per category and side")
    headers = ("category", "side", "accuracy", "exact call", "tool name", "format pass")
    for header in (*headers, "irrelevance", "unparseable"):
        table.add_column(header, justify="left" if header in ("category", "side") else "right")
    for category in (*CATEGORIES, "overall"):
        for position, side in enumerate(reports):
            counts = reports[side][category]
            table.add_row(
                category if position == 0 else "",
                side,
                rate(counts["accuracy"]),
                rate(counts["exact_call_accuracy"]),
                rate(counts["tool_name_accuracy"]),
                rate(counts["format_pass_rate"]),
                rate(counts["irrelevance_accuracy"]),
                str(counts["unparseable"]),
                end_section=position == len(reports) - 1,
            )
    return table


def timing_table(seconds: dict[str, float]) -> Table:
    table = Table(title="Time per step")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    for name, value in seconds.items():
        table.add_row(name, f"{value:.1f}")
    table.add_row("all", f"{sum(seconds.values()):.1f}", end_section=True)
    return table


# --- main -----------------------------------------------------------------------------------


def quiet_libraries() -> None:
    import datasets
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    logging.getLogger("trl").setLevel(logging.ERROR)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def write_jsonl(path: Path, samples: Sequence[Sample]) -> None:
    path.write_text("".join(s.model_dump_json() + "\n" for s in samples), encoding="utf-8")


def progress(name: str) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        log(f"{name}: {done}/{total}")

    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=120, help="samples to generate")
    parser.add_argument("--per-category", type=int, default=10, help="BFCL questions per category")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--model", type=Path, help="SmolLM2's float32 folder (default: fetched)")
    parser.add_argument("--out", type=Path, default=Path("results.json"))
    parser.add_argument("--max-new-tokens", type=int, default=128, help="per evaluated answer")
    parser.add_argument("--eval-batch-size", type=int, default=16)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads for training and evaluation"
    )
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--batch-size", type=int, default=4, help="training batch")
    parser.add_argument("--max-length", type=int, default=MAX_MODEL_LEN, help="training tokens")
    parser.add_argument("--keep", type=Path, help="keep the sets, adapters and server log here")
    parser.add_argument(
        "--samples", type=Path, help="an earlier run's kept generated.jsonl: skip generation"
    )
    parser.add_argument("--gradient-accumulation", type=int, default=1)
    args = parser.parse_args()
    quiet_libraries()
    import torch

    torch.set_num_threads(args.threads)

    from trainer.config import TrainConfig
    from trainer.evaluate import evaluate, score
    from trainer.train import train

    model_dir = args.model or cached_smollm2()
    timings = Timings()
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as temporary:
        scratch = args.keep or Path(temporary)
        scratch.mkdir(parents=True, exist_ok=True)

        if args.samples is not None:
            found = load_generated(args.samples)
            usage = {"reused": str(args.samples), "wall_s": 0.0, "failures": {}, "lost_chunks": []}
            log(f"{sum(len(g.samples) for g in found)} generated samples read from {args.samples}")
        else:
            with timings.step("generation (server start, generate, stop)"):
                found, usage = generate_all(model_dir, args.n, args.seed, scratch)
        with timings.step("verification"):
            verify_all(found)

        everything = [s for g in found for s in g.samples]
        verified = [s for g in found for s, ok in zip(g.samples, g.verified, strict=True) if ok]
        pool = [s for g in found for s, ok in zip(g.samples, g.control_ok, strict=True) if ok]
        control = random.Random(args.seed).sample(pool, min(len(verified), len(pool)))
        sets = {"verified": verified, "control": control}
        for name, samples in sets.items():
            write_jsonl(scratch / f"{name}.jsonl", samples)
        log(f"{len(everything)} generated, {len(verified)} verified, control pool {len(pool)}")

        config = TrainConfig(
            base_model=str(model_dir),
            epochs=args.epochs,
            learning_rate=args.learning_rate,
            batch_size=args.batch_size,
            gradient_accumulation=args.gradient_accumulation,
            max_length=args.max_length,
            lora_r=16,
            lora_alpha=32,
            seed=args.seed,
            logging_steps=1,
        )
        trained: dict[str, dict[str, Any]] = {}
        adapters: dict[str, Path | None] = {"base": None}
        for name, samples in sets.items():
            if not samples:
                log(f"no {name} samples: nothing to train")
                trained[name] = {"skipped": True}
                continue
            with timings.step(f"training on {name} ({len(samples)} samples)"):
                result = train(config.with_overrides(output_dir=str(scratch / name)), samples)
            trained[name] = result.to_dict()
            adapters[name] = result.output_dir

        questions, categories, drawn_counts = bfcl_questions(
            model_dir, args.per_category, args.max_new_tokens, args.seed
        )
        reports: dict[str, dict[str, Any]] = {}
        answers: dict[str, dict[str, str]] = {}
        for side in SIDES:
            if side not in adapters:
                continue
            with timings.step(f"evaluation of {side} ({len(questions)} questions)"):
                evaluation = evaluate(
                    str(model_dir),
                    questions,
                    adapters[side],
                    batch_size=args.eval_batch_size,
                    max_new_tokens=args.max_new_tokens,
                    progress=progress(f"evaluation of {side}"),
                )
            per_category: dict[str, Any] = {}
            for category in CATEGORIES:
                picked = [i for i, c in enumerate(categories) if c == category]
                report = score(
                    [evaluation.answers[i] for i in picked], [questions[i] for i in picked]
                )
                per_category[category] = report.overall.to_dict()
            per_category["overall"] = evaluation.report.overall.to_dict()
            reports[side] = per_category
            answers[side] = {q.id: a for q, a in zip(questions, evaluation.answers, strict=True)}

    reasons = Counter(r for g in found for r in g.reasons if r)
    figures = {
        "settings": {**vars(args), "model": str(model_dir), "out": str(args.out)},
        "catalogs": list(CATALOGS),
        "train_config": config.to_dict(),
        "generation_usage": usage,
        "funnel": {
            "generated": len(everything),
            "accepted": len(verified),
            "rejected_by_reason": dict(reasons.most_common()),
            "rejected_by_stage": dict(Counter(st for g in found for st in g.stages if st)),
            "per_catalog": {
                g.catalog: {
                    "generated": len(g.samples),
                    "accepted": sum(g.verified),
                    "control_pool": sum(g.control_ok),
                }
                for g in found
            },
            "control_pool": len(pool),
            "control": len(control),
            "control_also_verified": len({s.id for s in verified} & {s.id for s in control}),
        },
        "training": trained,
        "bfcl_questions": drawn_counts,
        "evaluation": reports,
        "seconds": timings.seconds,
        "answers": answers,
    }
    args.out.write_text(json.dumps(figures, indent=2, default=str) + "\n", encoding="utf-8")
    console = Console(width=140)
    console.print(
        f"SmolLM2-135M-Instruct ({model_dir}), n={args.n}, seed={args.seed}, epochs={args.epochs}, "
        f"lr={args.learning_rate}, batch={args.batch_size}; "
        f"generation usage: {usage.get('requests', 0)} requests, "
        f"{usage.get('prompt_tokens', 0):,} prompt / {usage.get('completion_tokens', 0):,} "
        f"completion tokens in {usage['wall_s']:.0f} s, failed generations {usage['failures']}, "
        f"chunks lost to the server: {len(usage['lost_chunks'])}"
    )
    for line in usage["lost_chunks"]:
        console.print(f"  lost: {line}")
    for table in funnel_tables(found, sets, len(pool)):
        console.print(table)
    console.print(train_table(trained))
    drawn = {c: counts["drawn"] for c, counts in drawn_counts.items()}
    drawn["overall"] = len(questions)
    left_out = {c: counts["questions"] - counts["fit"] for c, counts in drawn_counts.items()}
    console.print(
        "BFCL questions per category: "
        + ", ".join(f"{c} {v['drawn']} of {v['fit']} that fit" for c, v in drawn_counts.items())
        + f"; left out as too long for {MAX_MODEL_LEN} tokens: {left_out}"
    )
    console.print(accuracy_table(reports, drawn))
    console.print(metrics_table(reports))
    console.print(timing_table(timings.seconds))

    console.print(f"figures written to {args.out}")


if __name__ == "__main__":
    main()
