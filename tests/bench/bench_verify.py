"""Verification throughput on one core: the format stage alone, and format + mock execution.

Run: python tests/bench/bench_verify.py [--samples 20000]

Prints samples/s for verifying parsed samples, for parsing unified JSON lines and verifying
them, and for the format check followed by mock execution (`MockApi.observe`: each call's
arguments checked again and answered from the tool's response schema with Faker values) of the
samples the format check accepts, as the execution stage runs after it. The mix is typical
samples (simple, multiple, parallel, irrelevance; a fifth of them with a bad call). The floors
the project holds itself to, on one core: 5,000 samples/s for the format stage, 2,000 samples/s
for format + mock execution. Rates are per CPU second of this process (pinned to one core), so
other work on a shared machine does not lower them.
"""

from __future__ import annotations

import argparse
import os
import random
import time

from rich.console import Console
from rich.table import Table

from unified import Sample, Step, Tool, ToolCall
from verifiers import FormatVerifier
from verifiers.mock_api import MockApi

FLOOR = 5_000
EXECUTION_FLOOR = 2_000

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=20_000)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
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
