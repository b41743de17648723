"""How long `actionforge run` takes to start: to its workers started, to the job queued, to the
first sample stored, to the end; and how long importing the CLI takes.

Run: python tests/bench/bench_run_startup.py [--rounds 5] [--n 200] [--before DIR]

Each round runs `python -m service.cli.app run examples/travel_api.yaml --n N` (template
generator, the embedded default) in a fresh folder and timestamps its stderr lines as they come:
"embedded queue ..." (workers started), "job ... queued" (and the CLI process's own CPU seconds
then, from /proc: the figure a busy machine moves least); meanwhile it polls the job's SQLite
database for the first stored sample. CPU seconds of the run are its processes (the CLI and its
workers, from wait4). `--before DIR` runs the same from another checkout (e.g. `git worktree
add /tmp/before main`) in the same rounds, alternating, for a before/after on the same machine
load. The CLI import is `python -c "import service.cli.app"`, wall and CPU, in each checkout.
Figures move with the machine's load: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "examples" / "travel_api.yaml"
POLL_S = 0.01


@dataclass
class Startup:
    workers_started: float | None
    queued: float | None
    queued_cpu_s: float | None
    first_sample: float | None
    done: float
    cpu_s: float


def own_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process `pid` itself so far (not its children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def environment(checkout: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    for name in [name for name in env if name.startswith("AF_")]:
        del env[name]  # the embedded default, whatever this shell sets
    return env


def first_sample_at(database: Path, started: float, stop: threading.Event) -> float | None:
    """Seconds from `started` until the database holds a sample (None if it never does)."""
    while not stop.is_set():
        if database.exists():
            try:
                with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=0.1) as db:
                    if db.execute("SELECT 1 FROM samples LIMIT 1").fetchone():
                        return time.perf_counter() - started
            except sqlite3.Error:
                pass  # not migrated yet, or locked for a moment
        time.sleep(POLL_S)
    return None


def one_run(checkout: Path, n: int) -> Startup:
    with tempfile.TemporaryDirectory() as folder:
        command = [
            sys.executable, "-m", "service.cli.app", "run", str(CATALOG),
            "--n", str(n), "--out", "out.jsonl",
        ]  # fmt: skip
        marks: dict[str, float] = {}
        stop = threading.Event()
        first: list[float | None] = []
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            cwd=folder,
            env=environment(checkout),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        poller = threading.Thread(
            target=lambda: first.append(
                first_sample_at(Path(folder) / "data" / "actionforge.db", started, stop)
            )
        )
        poller.start()
        assert process.stderr is not None
        lines = []
        cpu_at_queued: float | None = None
        for line in process.stderr:
            moment = time.perf_counter() - started
            lines.append(line)
            if line.startswith("embedded queue"):
                marks.setdefault("workers", moment)
            elif line.startswith("job ") and " queued" in line:
                marks.setdefault("queued", moment)
                cpu_at_queued = own_cpu_seconds(process.pid)
        _, status, usage = os.wait4(process.pid, 0)
        done = time.perf_counter() - started
        stop.set()
        poller.join()
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"the run failed in {checkout}:\n{''.join(lines[-20:])}")
        return Startup(
            marks.get("workers"),
            marks.get("queued"),
            cpu_at_queued,
            first[0] if first else None,
            done,
            usage.ru_utime + usage.ru_stime,
        )


def import_time(checkout: Path) -> tuple[float, float]:
    """Wall and CPU seconds of a process that imports the CLI and exits."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", "import service.cli.app"], env=environment(checkout)
    )
    _, status, usage = os.wait4(process.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime


def median(values: list[float | None]) -> str:
    known = [value for value in values if value is not None]
    return f"{statistics.median(known):.2f}" if known else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=200, help="samples of the job")
    parser.add_argument("--before", type=Path, help="another checkout to compare with")
    args = parser.parse_args()
    checkouts = {"this": ROOT}
    if args.before is not None:
        checkouts = {"before": args.before.resolve(), "this": ROOT}
    runs: dict[str, list[Startup]] = {name: [] for name in checkouts}
    imports: dict[str, list[tuple[float, float]]] = {name: [] for name in checkouts}
    for round_number in range(args.rounds):
        for name, checkout in checkouts.items():
            imports[name].append(import_time(checkout))
            run = one_run(checkout, args.n)
            runs[name].append(run)
            print(
                f"round {round_number + 1} {name}: workers {run.workers_started}, queued "
                f"{run.queued} (CLI CPU {run.queued_cpu_s}), first sample {run.first_sample}, "
                f"done {run.done:.2f} s, CPU {run.cpu_s:.2f} s; load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    print(f"\nmedians over {args.rounds} rounds (seconds from the command's start), n={args.n}:")
    print("checkout | CLI import wall / CPU | workers started | job queued | CLI CPU at queued | "
          "first sample | done | CPU of the run")  # fmt: skip
    for name, done in runs.items():
        walls = [wall for wall, _ in imports[name]]
        cpus = [cpu for _, cpu in imports[name]]
        print(
            f"{name} | {median(list(walls))} / {median(list(cpus))} | "
            f"{median([r.workers_started for r in done])} | {median([r.queued for r in done])} | "
            f"{median([r.queued_cpu_s for r in done])} | "
            f"{median([r.first_sample for r in done])} | {median([r.done for r in done])} | "
            f"{median([r.cpu_s for r in done])}"
        )
    print(f"load average now: {os.getloadavg()}")


if __name__ == "__main__":
    main()
