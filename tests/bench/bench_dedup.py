"""De-duplication time and peak memory for up to a million queries, with a recall check.

Run: python tests/bench/bench_dedup.py [--queries 1000000] [--share 0.1] [--seed 0]

Makes synthetic function-calling samples (six request templates whose slots are filled from
Faker value pools; every base query is a distinct combination of values, so its calls differ
from every other's) and seeds a share of duplicates of earlier base queries: half exact (the same
query with other capitals, spacing and end punctuation, the same calls), half near (one filler
word added before or after, the same calls; estimated Jaccard about 0.92 against the 0.85
threshold). Every sample is offered to one `verifiers.dedup.DedupIndex` in order, as the dedup
stage does for a job, with the default threshold, num_perm and same_calls=True.

Each size (10k, 100k and --queries, never above it) runs in a process of its own pinned to one
core, so that its peak resident memory is its own: peak RSS is `resource.getrusage`'s ru_maxrss
(tracemalloc would slow a million offers several times over and misses numpy's own buffers);
"index" is the peak less the RSS before the first offer. Times are CPU seconds of the process
(the machine is shared; wall seconds are shown too). Offering counts making the samples too;
making them alone is timed in a separate pass and shown, and the dedup time is the difference.
Recall: seeded duplicates rejected (with the right reason) out of those seeded; false positives:
base queries rejected.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from faker import Faker
from rich.console import Console
from rich.table import Table

from unified.model import Sample
from verifiers.dedup import DedupIndex, DedupReason

STEP = (
    1_000_003  # a prime above every template's combination count's factors: i*STEP is a bijection
)
FILLERS_BEFORE = ("please", "hey", "quickly", "kindly")
FILLERS_AFTER = ("thanks", "please", "asap", "today")


@dataclass(frozen=True)
class Template:
    """A request phrasing, the tool it calls, and the pools its slots are filled from."""

    tool: str
    text: str
    slots: tuple[str, ...]


TEMPLATES = (
    Template(
        "search_flights",
        "Find flights from {origin} to {destination} on {date} for {adults} adults in {cabin} "
        "class",
        ("origin", "destination", "date", "adults", "cabin"),
    ),
    Template(
        "get_weather",
        "What will the weather be like in {city} on {date}, in {unit}?",
        ("city", "date", "unit"),
    ),
    Template(
        "book_table",
        "Book a table for {people} at {restaurant} in {city} on {date} at {time}",
        ("people", "restaurant", "city", "date", "time"),
    ),
    Template(
        "convert_currency",
        "How much is {amount} {source} in {target} at today's rate for {name}?",
        ("amount", "source", "target", "name"),
    ),
    Template(
        "send_email",
        "Send an email to {name} at {email} about {subject}",
        ("name", "email", "subject"),
    ),
    Template(
        "find_restaurants",
        "Show me {count} {cuisine} restaurants near {street} in {city} open after {time}",
        ("count", "cuisine", "street", "city", "time"),
    ),
)


def pools(seed: int) -> dict[str, list[Any]]:
    """Distinct values per slot (distinct after casefolding, so that distinct combinations
    stay distinct queries)."""
    fake = Faker("en_US")
    fake.seed_instance(seed)

    def distinct(make: Any, size: int) -> list[str]:
        seen: dict[str, str] = {}
        for _ in range(size * 20):
            value = str(make())
            seen.setdefault(value.casefold(), value)
            if len(seen) == size:
                break
        return sorted(seen.values())

    cities = distinct(fake.city, 800)
    return {
        "origin": distinct(lambda: fake.bothify("???").upper(), 600),
        "destination": distinct(lambda: fake.bothify("???").upper(), 600),
        "date": [f"2027-{m:02d}-{d:02d}" for m in range(1, 13) for d in range(1, 29)],
        "adults": list(range(1, 9)),
        "cabin": ["economy", "premium economy", "business", "first"],
        "city": cities,
        "unit": ["celsius", "fahrenheit"],
        "people": list(range(1, 13)),
        "restaurant": distinct(fake.company, 600),
        "time": [f"{h}:{m:02d}" for h in range(11, 23) for m in (0, 15, 30, 45)],
        "amount": list(range(5, 5000, 5)),
        "source": ["USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "SEK"],
        "target": ["NOK", "DKK", "PLN", "CZK", "HUF", "MXN", "BRL", "INR"],
        "name": distinct(fake.name, 2000),
        "email": distinct(fake.email, 2000),
        "subject": distinct(lambda: fake.catch_phrase().lower(), 2000),
        "count": list(range(2, 21)),
        "cuisine": ["italian", "thai", "mexican", "indian", "japanese", "greek", "korean"],
        "street": distinct(fake.street_name, 800),
    }


class Queries:
    """Base query number j as a sample: template j % 6, a distinct combination of its slots."""

    def __init__(self, seed: int) -> None:
        self.pools = pools(seed)
        self.sizes = [[len(self.pools[slot]) for slot in t.slots] for t in TEMPLATES]

    def base(self, j: int) -> tuple[str, dict[str, Any]]:
        template_index = j % len(TEMPLATES)
        template = TEMPLATES[template_index]
        sizes = self.sizes[template_index]
        combinations = 1
        for size in sizes:
            combinations *= size
        number = (j // len(TEMPLATES)) * STEP % combinations
        values: dict[str, Any] = {}
        for slot, size in zip(template.slots, sizes, strict=True):
            number, digit = divmod(number, size)
            values[slot] = self.pools[slot][digit]
        return template.text.format(**values), {"name": template.tool, "arguments": values}


def sample(sample_id: str, query: str, call: dict[str, Any]) -> Sample:
    # Validating a plain dict is the cheapest way to a Sample (model_construct is slower: it
    # inspects the default factories on every call).
    return Sample.model_validate(
        {"id": sample_id, "query": query, "steps": [{"tool_calls": [call]}]}
    )


def stream(n: int, share: float, seed: int) -> Iterator[tuple[Sample, str | None]]:
    """`n` samples with the reason each should be rejected for (None: a base query)."""
    queries = Queries(seed)
    rng = random.Random(seed)
    bases = 0
    for i in range(n):
        if bases and rng.random() < share:
            query, call = queries.base(rng.randrange(bases))
            if rng.random() < 0.5:
                shout = query.upper() if rng.random() < 0.5 else query.lower()
                yield sample(f"q{i}", f"  {shout.rstrip('?')} ?! ", call), DedupReason.duplicate
            elif rng.random() < 0.5:
                yield sample(f"q{i}", f"{rng.choice(FILLERS_BEFORE)} {query}", call), "near"
            else:
                yield sample(f"q{i}", f"{query} {rng.choice(FILLERS_AFTER)}", call), "near"
        else:
            query, call = queries.base(bases)
            bases += 1
            yield sample(f"q{i}", query, call), None


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(n: int, share: float, seed: int) -> dict[str, Any]:
    """Run one size in this process; the numbers as a dict."""
    start, cpu = time.perf_counter(), time.process_time()
    for _ in stream(n, share, seed):
        pass
    making, making_cpu = time.perf_counter() - start, time.process_time() - cpu
    index = DedupIndex()
    baseline = peak_rss_mib()
    seeded = {"duplicate": 0, "near": 0}
    found = {"duplicate": 0, "near": 0}
    false_positives = 0
    start, cpu = time.perf_counter(), time.process_time()
    for item, expected in stream(n, share, seed):
        verdict = index.offer(item)
        if expected is None:
            false_positives += not verdict.accepted
            continue
        kind = "duplicate" if expected == DedupReason.duplicate else "near"
        seeded[kind] += 1
        wanted = DedupReason.duplicate if kind == "duplicate" else DedupReason.near_duplicate
        found[kind] += verdict.reason == wanted
    total, total_cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = peak_rss_mib()
    return {
        "n": n,
        "kept": len(index),
        "seeded": seeded,
        "found": found,
        "false_positives": false_positives,
        "making_s": making,
        "dedup_s": total - making,
        "making_cpu_s": making_cpu,
        "dedup_cpu_s": total_cpu - making_cpu,
        "peak_mib": peak,
        "index_mib": peak - baseline,
    }


def run_size(n: int, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--one", str(n)]
    command += ["--share", str(args.share), "--seed", str(args.seed)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"size {n:,} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=1_000_000, help="the largest size")
    parser.add_argument("--share", type=float, default=0.1, help="share of seeded duplicates")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    if args.one is not None:
        print(json.dumps(measure(args.one, args.share, args.seed)))
        return

    sizes = sorted({size for size in (10_000, 100_000) if size < args.queries} | {args.queries})
    console = Console(width=200)
    table = Table(
        title=f"DedupIndex (exact + MinHash LSH), one core, {args.share:.0%} seeded duplicates"
    )
    for column in (
        "queries",
        "dedup CPU s",
        "queries/s per core",
        "dedup wall s",
        "making samples CPU s",
        "peak RSS MiB",
        "index MiB",
        "bytes/query",
        "exact found/seeded",
        "near found/seeded",
        "recall",
        "false pos.",
    ):
        table.add_column(column, justify="right")
    for n in sizes:
        console.print(f"running {n:,} queries ...", highlight=False)
        r = run_size(n, args)
        seeded = r["seeded"]["duplicate"] + r["seeded"]["near"]
        found = r["found"]["duplicate"] + r["found"]["near"]
        table.add_row(
            f"{n:,}",
            f"{r['dedup_cpu_s']:,.1f}",
            f"{n / r['dedup_cpu_s']:,.0f}",
            f"{r['dedup_s']:,.1f}",
            f"{r['making_cpu_s']:,.1f}",
            f"{r['peak_mib']:,.0f}",
            f"{r['index_mib']:,.0f}",
            f"{r['index_mib'] * 2**20 / n:,.0f}",
            f"{r['found']['duplicate']:,}/{r['seeded']['duplicate']:,}",
            f"{r['found']['near']:,}/{r['seeded']['near']:,}",
            f"{found / seeded:.2%}" if seeded else "-",
            f"{r['false_positives']:,}",
        )
    console.print(table)
    console.print(
        "dedup CPU s: process CPU time offering every sample, less making the samples (CPU time, "
        "not wall time, so that other work on the machine does not count); peak RSS: "
        "resource.getrusage ru_maxrss of a process per size; index MiB: peak less the RSS "
        "before the first offer"
    )


if __name__ == "__main__":
    main()
