"""Verification throughput on one core: the format stage alone, and format + mock execution,
in this process and through `actionforge verify` on exported unified rows.

Run: python tests/bench/bench_verify.py [--samples 20000] [--rows 20000] [--before DIR]

Prints samples/s for verifying parsed samples, for parsing unified JSON lines and verifying
them, and for the format check followed by mock execution (`MockApi.observe`: each call's
arguments checked again and answered from the tool's response schema with Faker values) of the
samples the format check accepts, as the execution stage runs after it. The mix is typical
samples (simple, multiple, parallel, irrelevance; a fifth of them with a bad call). The floors
the project holds itself to, on one core: 5,000 samples/s for the format stage, 2,000 samples/s
for format + mock execution. Rates are per CPU second of this process (pinned to one core), so
other work on a shared machine does not lower them.

Then `actionforge verify` itself, as a user runs it, on `--rows` unified rows exported from a
template job on the bundled travel catalog (every fifth row with a call missing its arguments):
rows per CPU second of the command (pinned to one core; start-up included, and with the start-up
taken out: the CPU seconds of the same command on a one-row file subtracted), for `--stages
format` and `--stages format,execution --catalog`, and the start-up itself (`verify --help`, and
the one-row file: CPU and wall seconds). The issue's floors: 20,000 rows/s per core for format,
5,000 with mock execution. With `--before DIR` (a source tree of another version, e.g. made with
`git archive <rev> | tar -x -C DIR`) the same commands run on that version too, side by side, and
the verdict files of the two are compared byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from unified import Sample, Step, Tool, ToolCall
from verifiers import FormatVerifier
from verifiers.mock_api import MockApi

FLOOR = 5_000
EXECUTION_FLOOR = 2_000
CLI_FLOOR = 20_000
CLI_EXECUTION_FLOOR = 5_000
ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "examples" / "travel_api.yaml"

TOOLS = [
    Tool(
        name="get_weather",
        description="Current weather for a city.",
        parameters={
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 14},
            },
            "required": ["city"],
        },
        response={
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "temperature": {"type": "number", "minimum": -60, "maximum": 60},
                "conditions": {"type": "string", "enum": ["sunny", "cloudy", "rain", "snow"]},
                "forecast": {
                    "type": "array",
                    "maxItems": 5,
                    "items": {
                        "type": "object",
                        "properties": {
                            "date": {"type": "string", "format": "date"},
                            "high": {"type": "number"},
                            "low": {"type": "number"},
                        },
                        "required": ["date", "high", "low"],
                    },
                },
            },
            "required": ["city", "temperature", "conditions"],
        },
    ),
    Tool(
        name="search_flights",
        description="Search flights between two airports.",
        parameters={
            "type": "object",
            "properties": {
                "origin": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "destination": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "date": {"type": "string", "format": "date"},
                "passengers": {"type": "integer", "minimum": 1},
                "cabin": {"type": "string", "enum": ["economy", "business", "first"]},
            },
            "required": ["origin", "destination", "date"],
        },
        response={
            "type": "array",
            "maxItems": 4,
            "items": {
                "type": "object",
                "properties": {
                    "flight_number": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{3,4}$"},
                    "departure": {"type": "string", "format": "date-time"},
                    "price": {"type": "number", "minimum": 20},
                    "seats_left": {"type": "integer", "minimum": 0, "maximum": 300},
                },
                "required": ["flight_number", "departure", "price"],
            },
        },
    ),
    Tool(
        name="convert_currency",
        description="Convert an amount between currencies.",
        parameters={
            "type": "object",
            "properties": {
                "amount": {"type": "number"},
                "from_currency": {"type": "string"},
                "to_currency": {"type": "string"},
                "rates": {"type": "array", "items": {"type": "number"}},
            },
            "required": ["amount", "from_currency", "to_currency"],
        },
    ),
]

GOOD_CALLS = [
    ToolCall(name="get_weather", arguments={"city": "Paris", "unit": "celsius"}),
    ToolCall(name="get_weather", arguments={"city": "Oslo", "days": 3}),
    ToolCall(
        name="search_flights",
        arguments={"origin": "SFO", "destination": "JFK", "date": "2026-12-01", "passengers": 2},
    ),
    ToolCall(
        name="convert_currency",
        arguments={"amount": 120.5, "from_currency": "USD", "to_currency": "EUR"},
    ),
]
BAD_CALLS = [
    ToolCall(name="get_weather", arguments={"unit": "celsius"}),
    ToolCall(name="get_weather", arguments={"city": "Paris", "unit": "kelvin"}),
    ToolCall(name="search_flight", arguments={"origin": "SFO"}),
    ToolCall(name="convert_currency", arguments={"amount": "ten", "from_currency": "USD"}),
    ToolCall(name="get_weather", arguments='{"city": "Paris"'),
]


def make_samples(n: int, seed: int = 0) -> list[Sample]:
    rng = random.Random(seed)
    samples = []
    for i in range(n):
        shape = i % 5
        if shape == 4:
            calls = [rng.choice(BAD_CALLS), rng.choice(GOOD_CALLS)]
        elif shape == 3:
            calls = []
        else:
            calls = rng.sample(GOOD_CALLS, k=shape + 1)
        samples.append(
            Sample(
                id=f"s{i}",
                query="Plan my trip: weather, flights and money.",
                tools=TOOLS,
                steps=[Step(tool_calls=calls)],
            )
        )
    return samples


def rate(label: str, n: int, fn: object, floor: int = FLOOR) -> tuple[str, float, int]:
    # CPU time of this process, not wall time: per core, whatever else the machine runs.
    assert callable(fn)
    start = time.process_time()
    fn()
    return label, n / (time.process_time() - start), floor


def exported_rows(n: int, path: Path) -> None:
    """`n` unified rows as a template job on the travel catalog exports them; every fifth row
    with calls has its first call's arguments emptied (a missing required argument)."""
    from generators.base import GENERATORS, GenerationRequest
    from unified.catalogs import load_catalog
    from unified.formats import write_samples

    tools = load_catalog(CATALOG).tools
    samples = GENERATORS.get("template")().generate(tools, GenerationRequest(n=n, seed=7))
    for i, sample in enumerate(samples):
        calls = sample.tool_calls()
        if i % 5 == 4 and calls:
            calls[0].arguments = {}
    write_samples(samples, path, "unified")


def _pin_to_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def timed_command(tree: Path, arguments: list[str]) -> tuple[float, float]:
    """CPU and wall seconds of `actionforge ARGUMENTS` run from the source tree `tree`,
    pinned to one core."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "service.cli.app", *arguments],
        env=env,
        cwd=tree,
        check=True,
        stdout=subprocess.DEVNULL,
        preexec_fn=_pin_to_one_core,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def cli_rows(trees: dict[str, Path], rows: int, work: Path) -> None:
    """`actionforge verify` on exported rows, per version: rows/s per core and start-up."""
    data = work / "rows.jsonl"
    exported_rows(rows, data)
    tiny = work / "tiny.jsonl"
    tiny.write_bytes(data.read_bytes().split(b"\n", 1)[0] + b"\n")
    runs = {
        "format": ["--stages", "format"],
        "format + execution": ["--stages", "format,execution", "--catalog", str(CATALOG)],
    }
    floors = {"format": CLI_FLOOR, "format + execution": CLI_EXECUTION_FLOOR}
    table = Table(title=f"actionforge verify, {rows:,} exported unified rows, one core")
    table.add_column("measure")
    for label in trees:
        table.add_column(label, justify="right")
    if len(trees) == 2:
        table.add_column("after / before", justify="right")
    digests: dict[str, dict[str, str]] = {label: {} for label in trees}
    figures: dict[str, list[tuple[str, float, str]]] = {label: [] for label in trees}
    for label, tree in trees.items():
        help_cpu, help_wall = timed_command(tree, ["verify", "--help"])
        figures[label].append(("start-up: verify --help, CPU s", help_cpu, f"{help_cpu:.2f}"))
        figures[label].append(("start-up: verify --help, wall s", help_wall, f"{help_wall:.2f}"))
        for run, stages in runs.items():
            out = work / f"{label}-{run.replace(' ', '')}.jsonl"
            tiny_cpu, tiny_wall = timed_command(
                tree, ["verify", str(tiny), "--from", "unified", "--out", str(out), *stages]
            )
            cpu, _ = timed_command(
                tree, ["verify", str(data), "--from", "unified", "--out", str(out), *stages]
            )
            digests[label][run] = hashlib.sha256(out.read_bytes()).hexdigest()
            whole, steady = rows / cpu, rows / max(cpu - tiny_cpu, 1e-9)
            figures[label].append((f"{run}: one-row file, CPU s", tiny_cpu, f"{tiny_cpu:.2f}"))
            figures[label].append((f"{run}: one-row file, wall s", tiny_wall, f"{tiny_wall:.2f}"))
            figures[label].append(
                (f"{run}: rows/s per core, start-up included", whole, f"{whole:,.0f}")
            )
            figures[label].append(
                (
                    f"{run}: rows/s per core, start-up out (floor {floors[run]:,})",
                    steady,
                    f"{steady:,.0f}",
                )
            )
    labels = list(trees)
    for i, (measure, *_) in enumerate(figures[labels[0]]):
        cells = [figures[label][i][2] for label in labels]
        if len(labels) == 2:
            before, after = figures[labels[0]][i][1], figures[labels[1]][i][1]
            cells.append(f"{after / before:.2f}" if before else "-")
        table.add_row(measure, *cells)
    console = Console()
    console.print(table)
    if len(labels) == 2:
        for run in runs:
            same = digests[labels[0]][run] == digests[labels[1]][run]
            console.print(
                f"{run}: verdict files of {labels[0]} and {labels[1]} "
                + ("identical" if same else "DIFFER")
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=20_000, help="rows for actionforge verify")
    parser.add_argument(
        "--before", type=Path, help="source tree of a version to compare with, side by side"
    )
    args = parser.parse_args()
    trees = {"before": args.before.resolve()} if args.before else {}
    trees["this tree"] = ROOT
    with tempfile.TemporaryDirectory(prefix="af-bench-verify-") as work:
        cli_rows(trees, args.rows, Path(work))
    _pin_to_one_core()
    samples = make_samples(args.samples)
    lines = [s.to_json() for s in samples]
    verifier = FormatVerifier()
    verifier.verify(samples[0])  # compile outside the timing, as a worker would once

    def verify_parsed() -> None:
        for s in samples:
            verifier.verify(s)

    def parse_and_verify() -> None:
        for line in lines:
            verifier.verify(Sample.model_validate_json(line))

    mock = MockApi(TOOLS)
    executed = 0

    def verify_and_execute() -> None:
        nonlocal executed
        executed = 0
        for s in samples:
            if verifier.verify(s).accepted:
                _, verdict = mock.observe(s)
                executed += verdict.accepted

    rows = [
        rate("format: verify parsed samples", args.samples, verify_parsed),
        rate("format: parse unified JSON + verify", args.samples, parse_and_verify),
        rate(
            "format + mock execution (observe)",
            args.samples,
            verify_and_execute,
            EXECUTION_FLOOR,
        ),
    ]
    accepted = sum(verifier.verify(s).accepted for s in samples)
    table = Table(title=f"Verification, one core, {args.samples:,} samples")
    table.add_column("measure")
    table.add_column("samples/s per core", justify="right")
    table.add_column("floor", justify="right")
    table.add_column("x floor", justify="right")
    for label, value, floor in rows:
        table.add_row(label, f"{value:,.0f}", f"{floor:,}/s", f"{value / floor:.1f}")
    console = Console()
    console.print(table)
    console.print(
        f"format accepted {accepted:,} of {args.samples:,} (a fifth carry a bad call); "
        f"mock execution answered every call of {executed:,} of them"
    )


if __name__ == "__main__":
    main()
