"""Import and export throughput and peak memory of the dataset formats.

Run: python tests/bench/bench_formats.py [--rows 200000] [--formats xlam,openai]

For each format, a synthetic file is exported (written row by row from a generator) at N/4 and
at N rows, then imported back (BFCL, which is import only, gets question and answer files
written directly). Every measurement runs in a fresh child process, so its peak RSS
(`ru_maxrss`, minus what the process held before the measurement) is that measurement's
alone; with `--tracemalloc` the child also reports the peak of Python allocations, at the cost
of a much slower run. Flat memory from N/4 to N shows that no whole file is held in memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from unified.formats import FORMATS, read_samples, write_samples
from unified.model import Example, Sample, SampleMeta, Step, Tool, ToolCall

WRITABLE = ["unified", "xlam", "openai", "sharegpt"]
ALL_FORMATS = [*WRITABLE, "bfcl"]

WEATHER = Tool(
    name="get_weather",
    description="Current weather for a city.",
    parameters={
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name."},
            "unit": {
                "type": "string",
                "description": "celsius or fahrenheit",
                "default": "celsius",
            },
        },
        "required": ["city"],
    },
)
FLIGHTS = Tool(
    name="search_flights",
    description="Find flights between two airports.",
    parameters={
        "type": "object",
        "properties": {
            "origin": {"type": "string", "description": "IATA code of the departure airport."},
            "destination": {"type": "string", "description": "IATA code of the arrival airport."},
            "max_stops": {"type": "integer", "description": "Most stops allowed.", "default": 1},
        },
        "required": ["origin", "destination"],
    },
)
HOTELS = Tool(
    name="find_hotels",
    description="Hotels in a city.",
    parameters={
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name."},
            "nights": {"type": "integer", "description": "Nights wanted."},
        },
        "required": ["city", "nights"],
    },
)
CITIES = ["Lisbon", "Porto", "Madrid", "Oslo", "Rome", "Tokyo", "Lima", "Cairo"]


def _sample(number: int) -> Sample:
    """A typical sample: instructions, three tools, one or two calls, results, an answer."""
    city = CITIES[number % len(CITIES)]
    calls = [ToolCall(name="get_weather", arguments={"city": city}, id=f"c{number}a")]
    results: list[Any] = [{"temp_c": 10 + number % 20, "sky": "clear"}]
    if number % 2:
        calls.append(
            ToolCall(name="find_hotels", arguments={"city": city, "nights": 2}, id=f"c{number}b")
        )
        results.append([{"hotel": f"Hotel {number}", "price": 80.5}])
    return Sample(
        id=f"bench-{number}",
        task_instruction="You are a travel assistant. Use the tools when they help.",
        format_instruction="Answer in one sentence.",
        tools=[WEATHER, FLIGHTS, HOTELS],
        examples=[Example(query="Weather in Rome?", steps=[Step(answer="Sunny, 25 °C.")])]
        if number % 5 == 0
        else [],
        query=f"What's the weather in {city}{' and a hotel for two nights' if number % 2 else ''}?",
        steps=[
            Step(thought="Let me check.", tool_calls=calls, results=results),
            Step(answer=f"It is clear in {city}."),
        ],
        meta=SampleMeta(source="bench"),
    )


def _samples(rows: int) -> Iterator[Sample]:
    for number in range(rows):
        yield _sample(number)


def _write_bfcl(questions: Path, answers: Path, rows: int) -> None:
    functions = [
        {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "parameters": {
                "type": "dict",
                "properties": {
                    "city": {"type": "string", "description": "City name."},
                    "days": {"type": "integer", "description": "Days ahead."},
                    "precision": {"type": "float", "description": "Rounding."},
                },
                "required": ["city"],
            },
        }
    ]
    with questions.open("wb") as q, answers.open("wb") as a:
        for number in range(rows):
            city = CITIES[number % len(CITIES)]
            question = [[{"role": "user", "content": f"Weather in {city} for {number % 7} days?"}]]
            q.write(
                orjson.dumps(
                    {"id": f"simple_{number}", "question": question, "function": functions}
                )
            )
            q.write(b"\n")
            truth = [
                {"get_weather": {"city": [city], "days": [number % 7, ""], "precision": ["", 0.5]}}
            ]
            a.write(orjson.dumps({"id": f"simple_{number}", "ground_truth": truth}) + b"\n")


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def measure(direction: str, fmt: str, rows: int, path: Path, traced: bool) -> dict[str, Any]:
    """One timed export or import in this process (run by the child)."""
    answers = path.with_suffix(".answers.jsonl")
    if direction == "import" and fmt == "bfcl" and not path.exists():
        _write_bfcl(path, answers, rows)
    FORMATS.get(fmt)  # import the format's modules before the baseline
    before = _peak_rss_mib()
    if traced:
        tracemalloc.start()
    start = time.perf_counter()
    if direction == "export":
        count = write_samples(_samples(rows), path, fmt)
    else:
        options = {"answers": answers} if fmt == "bfcl" else {}
        count = sum(1 for _ in read_samples(path, fmt, **options))
    seconds = time.perf_counter() - start
    traced_peak = tracemalloc.get_traced_memory()[1] / (1024 * 1024) if traced else None
    if traced:
        tracemalloc.stop()
    return {
        "rows": count,
        "seconds": seconds,
        "rss_peak_mib": _peak_rss_mib(),
        "rss_delta_mib": _peak_rss_mib() - before,
        "traced_peak_mib": traced_peak,
        "file_mib": path.stat().st_size / (1024 * 1024),
    }


def _child(direction: str, fmt: str, rows: int, path: Path, traced: bool) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", direction, fmt, str(rows), str(path)]
    if traced:
        command.append("--tracemalloc")
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the larger file")
    parser.add_argument("--formats", default=",".join(ALL_FORMATS), help="comma-separated")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations")
    parser.add_argument("--child", nargs=4, metavar=("DIRECTION", "FORMAT", "ROWS", "PATH"))
    args = parser.parse_args()
    if args.child:
        direction, fmt, rows, path = args.child
        print(json.dumps(measure(direction, fmt, int(rows), Path(path), args.tracemalloc)))
        return

    console = Console()
    table = Table(title=f"dataset formats, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    columns = (
        "format",
        "direction",
        "rows",
        "file MiB",
        "rows/s",
        "peak RSS MiB",
        "peak RSS Δ MiB",
    )
    for column in columns:
        table.add_column(column, justify="left" if column in ("format", "direction") else "right")
    if args.tracemalloc:
        table.add_column("traced peak MiB", justify="right")
    sizes = [max(args.rows // 4, 1), args.rows]
    with tempfile.TemporaryDirectory(prefix="bench-formats-") as folder:
        for fmt in args.formats.split(","):
            for rows in sizes:
                path = Path(folder) / f"{fmt}-{rows}.jsonl"
                directions = ["import"] if fmt == "bfcl" else ["export", "import"]
                for direction in directions:
                    with console.status(f"{fmt} {direction} {rows:,} rows"):
                        result = _child(direction, fmt, rows, path, args.tracemalloc)
                    cells = [
                        fmt,
                        direction,
                        f"{result['rows']:,}",
                        f"{result['file_mib']:.1f}",
                        f"{result['rows'] / result['seconds']:,.0f}",
                        f"{result['rss_peak_mib']:.1f}",
                        f"{result['rss_delta_mib']:.1f}",
                    ]
                    if args.tracemalloc:
                        cells.append(f"{result['traced_peak_mib']:.2f}")
                    table.add_row(*cells)
                path.unlink(missing_ok=True)
                path.with_suffix(".answers.jsonl").unlink(missing_ok=True)
    console.print(table)
    console.print(
        "Export rows/s include building each synthetic sample. Peak RSS Δ is the child's peak "
        "resident memory during the measurement minus its peak before it (interpreter and "
        "imports); it stays flat from N/4 to N rows when nothing holds the whole file."
    )


if __name__ == "__main__":
    main()
