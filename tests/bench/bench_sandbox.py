"""Sandboxed calls per second for a trivial function, and what one call costs.

Run: python tests/bench/bench_sandbox.py [--calls 100] [--workers 2]

Each call starts an interpreter, creates namespaces and mounts, forks the function's process
and tears it all down (see verifiers/sandbox.py). Prints calls/s one at a time and with
`--workers` calls in flight at once (threads, as a verification worker would run them), the
time per call, and for comparison a bare interpreter start and a direct in-process call.
Needs root (the sandbox does).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from rich.console import Console
from rich.table import Table

from verifiers.sandbox import Sandbox

SOURCE = '''
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b
'''


def timed(n: int, fn: Callable[[], None]) -> tuple[float, float]:
    """Wall-clock seconds per run of `fn`, and CPU seconds of the processes it started per run,
    over `n` runs. The CPU time does not depend on how busy the machine is."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    fn()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall / n, cpu / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    sandbox = Sandbox({"calc": SOURCE})
    first = sandbox.call("calc:add", {"a": 1, "b": 2})
    if not first.ok:
        sys.exit(f"the sandbox does not work here: {first.reason}: {first.detail}")

    def sequential() -> None:
        for i in range(args.calls):
            assert sandbox.call("calc:add", {"a": i, "b": 1}).value == i + 1

    def parallel() -> None:
        with ThreadPoolExecutor(args.workers) as pool:
            results = pool.map(
                lambda i: sandbox.call("calc:add", {"a": i, "b": 1}), range(args.calls)
            )
            assert all(r.ok for r in results)

    def interpreter() -> None:
        for _ in range(args.calls):
            subprocess.run([sys.executable, "-I", "-S", "-B", "-c", "pass"], check=True)

    namespace: dict[str, object] = {}
    exec(SOURCE, namespace)
    add = namespace["add"]
    assert callable(add)

    def direct() -> None:
        for i in range(args.calls):
            add(i, 1)

    rows = [
        ("sandboxed, one at a time", timed(args.calls, sequential)),
        (f"sandboxed, {args.workers} workers", timed(args.calls, parallel)),
        ("bare interpreter start (python -I -S -c pass)", timed(args.calls, interpreter)),
        ("direct call, no sandbox", timed(args.calls, direct)),
    ]
    table = Table(title=f"Sandboxed calls of a trivial function, {args.calls:,} calls each")
    table.add_column("measure")
    table.add_column("calls/s", justify="right")
    table.add_column("wall ms per call", justify="right")
    table.add_column("child CPU ms per call", justify="right")
    for label, (wall, cpu) in rows:
        table.add_row(label, f"{1 / wall:,.1f}", f"{1000 * wall:,.3f}", f"{1000 * cpu:,.1f}")
    console = Console()
    console.print(table)
    sandboxed, bare = rows[0][1], rows[2][1]
    console.print(
        f"sandbox overhead per call: {1000 * sandboxed[0]:.1f} ms wall, {1000 * sandboxed[1]:.1f} "
        f"ms CPU; a bare interpreter start: {1000 * bare[0]:.1f} ms wall, {1000 * bare[1]:.1f} "
        f"ms CPU. Load average now: {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
        f"on {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    main()
