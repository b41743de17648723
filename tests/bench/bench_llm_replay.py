"""The same requests, sent by an `llm` job and by a plain asyncio client: what the job's call
policy costs in tokens/s and in server CPU per token, on one and on two vLLM servers.

Run: python tests/bench/bench_llm_replay.py [--model DIR] [--n 256] [--rounds 2]
     [--servers 1,2] [--concurrency 32,64,128,256,0]

For each number of servers: start that many vLLM servers (CPU build, the tiny test model unless
--model) and a recording reverse proxy in front of each (aiohttp, in this process). Then, per
round:
  (a) job: `actionforge run examples/travel_api.yaml --n N --generator llm` with the default
      options, the servers given as AF_LLM_BASE_URL (the proxies, comma-separated) and
      AF_LLM_MODEL, on the embedded queue in a fresh folder. The proxies record every chat
      completion it sends (the body's bytes, when it came, when its answer went back, its
      completion tokens). Its tokens/s is the completion tokens over the time from its first
      request to any server (the prompt budget's /tokenize and /models included) to its last
      answer;
  (b) raw: exactly the recorded bodies sent again by a plain aiohttp client, through the same
      proxies (so both sides take the same hop), round-robin over the servers, at each
      concurrency of --concurrency (per server; 0: all at once); tokens/s over first send to
      last answer. The round's raw figure is its best concurrency.
Before every run the servers' prefix caches are reset. A warm-up job and replay run first, not
measured, so that both sides find the servers' structured-output grammars compiled. Server CPU
per token: the CPU seconds (user + system, /proc/PID/stat) of each server's processes (API
server, engine core, model worker) per 1,000 completion tokens, over the window its tokens/s is
counted in (first request to last answer, on both sides); the job's over its whole `actionforge
run` (start-up, verification and writing the file included, the servers idle meanwhile) is
printed beside.

One server runs on all CPUs but the last; the job, the proxies and the client on the last. Two
servers get a CPU each, and the job, proxies and client compete with them: on a 2-core machine
the two-server figures measure a crowded machine, not a fleet.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiohttp import ClientSession, ClientTimeout, TCPConnector, web
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the fixture helpers

from llm_fixtures import SERVER_CPUS, VllmServer, free_port, running_vllm_server
from tiny_model import cached_tiny_model

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "examples" / "travel_api.yaml"
CHAT_PATH = "/v1/chat/completions"
FLOOR = 0.95
HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


@dataclass
class Recorded:
    """One chat completion that went through a proxy."""

    body: bytes
    sent: float
    answered: float
    completion_tokens: int
    status: int


@dataclass
class RunMarks:
    """The servers' CPU seconds at a job's first request to any proxy, at its first chat
    completion (`chat_at`: what came before it was the prompt budget's measuring), and at its
    last answer so far: the job's server CPU is counted over the window its tokens/s is, as the
    raw side's is, not over the whole `actionforge run` (the servers' idle CPU while the job
    starts, verifies and writes its file is no cost of its requests)."""

    servers: Sequence[VllmServer]
    pids: list[int] = field(default_factory=list)
    first_cpu_s: float | None = None
    chat_at: float | None = None
    chat_cpu_s: float = 0.0
    last_cpu_s: float = 0.0

    def reset(self) -> None:
        self.pids, self.first_cpu_s, self.chat_at = [], None, None

    def request(self) -> None:
        if self.first_cpu_s is None:
            self.pids = server_pids(self.servers)
            self.first_cpu_s = cpu_seconds(self.pids)

    def chat(self, moment: float) -> None:
        if self.chat_at is None:
            self.chat_at = moment
            self.chat_cpu_s = cpu_seconds(self.pids)

    def answered(self) -> None:
        self.last_cpu_s = cpu_seconds(self.pids)


@dataclass
class Proxy:
    """A reverse proxy in front of one server; records chat completions while `recording`."""

    upstream: str
    marks: RunMarks
    port: int = field(default_factory=free_port)
    recording: bool = False
    records: list[Recorded] = field(default_factory=list)
    first_request: float | None = None
    paths: dict[str, int] = field(default_factory=dict)
    session: ClientSession | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self, recording: bool) -> None:
        self.recording = recording
        self.records = []
        self.first_request = None
        self.paths = {}
        self.marks.reset()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        arrived = time.perf_counter()
        if self.first_request is None and request.path != "/health":
            self.first_request = arrived
            if self.recording:
                self.marks.request()
        self.paths[request.path] = self.paths.get(request.path, 0) + 1
        if request.path == CHAT_PATH and self.recording:
            self.marks.chat(arrived)
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        assert self.session is not None
        async with self.session.request(
            request.method, self.upstream + request.path_qs, data=body, headers=headers
        ) as upstream:
            answer = await upstream.read()
            status = upstream.status
            kind = upstream.headers.get("Content-Type", "application/json")
        if request.path == CHAT_PATH and self.recording:
            tokens = 0
            if status == 200:
                tokens = int(json.loads(answer).get("usage", {}).get("completion_tokens", 0))
            self.records.append(Recorded(body, arrived, time.perf_counter(), tokens, status))
            self.marks.answered()
        return web.Response(body=answer, status=status, headers={"Content-Type": kind})


@contextmanager
def proxies_for(servers: Sequence[VllmServer]) -> Iterator[list[Proxy]]:
    """One recording proxy per server, served from a loop on a thread of this process."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    marks = RunMarks(servers)
    proxies = [Proxy(server.root_url, marks) for server in servers]
    runners: list[web.AppRunner] = []

    async def start() -> None:
        for proxy in proxies:
            # A fresh upstream connection per request: the server closes idle keep-alive
            # connections after 5 s, and a request sent on one just closed would fail.
            proxy.session = ClientSession(
                connector=TCPConnector(limit=0, force_close=True),
                timeout=ClientTimeout(total=None),
            )
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", proxy.handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", proxy.port, backlog=4096).start()
            runners.append(runner)

    async def stop() -> None:
        for runner in runners:
            await runner.cleanup()
        for proxy in proxies:
            if proxy.session is not None:
                await proxy.session.close()

    asyncio.run_coroutine_threadsafe(start(), loop).result()
    try:
        yield proxies
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def server_cpu_seconds(servers: Sequence[VllmServer]) -> float:
    """User + system CPU seconds of every process of the servers, from /proc/PID/stat."""
    return cpu_seconds(server_pids(servers))


def server_pids(servers: Sequence[VllmServer]) -> list[int]:
    """The process ids of the servers: API server, engine core, model worker."""
    import psutil  # a dependency of vLLM: lists a server's processes

    pids = []
    for server in servers:
        root = psutil.Process(server.process.pid)
        pids += [root.pid, *(child.pid for child in root.children(recursive=True))]
    return pids


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds of the processes so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def reset_caches(servers: Sequence[VllmServer]) -> None:
    for server in servers:
        httpx.post(f"{server.root_url}/reset_prefix_cache", timeout=30).raise_for_status()


@dataclass
class RunFigures:
    side: str
    concurrency: str
    requests: int
    tokens: int
    seconds: float
    cpu_s: float

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_1k(self) -> float:
        return 1e6 * self.cpu_s / self.tokens if self.tokens else 0.0


@dataclass
class JobRun:
    """One job's figures: from its first request to any server (`whole`), and from its first
    chat completion (`chat`: without the prompt budget's measuring before it), each to its last
    answer; the servers' CPU seconds over the whole `actionforge run` (`run_cpu_s`)."""

    whole: RunFigures
    chat: RunFigures
    records: list[list[Recorded]]
    wall: float
    paths: dict[str, int]
    run_cpu_s: float


def run_job(
    proxies: Sequence[Proxy],
    servers: Sequence[VllmServer],
    model: str,
    args: argparse.Namespace,
    cpus: set[int],
) -> JobRun:
    """One `actionforge run` of the llm job through the proxies."""
    for proxy in proxies:
        proxy.reset(recording=True)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "AF_LLM_BASE_URL": ",".join(proxy.base_url for proxy in proxies),
        "AF_LLM_MODEL": model,
    }
    command = [
        sys.executable, "-m", "service.cli.app", "run", str(CATALOG),
        "--n", str(args.n), "--seed", str(args.seed), "--generator", "llm",
        "--out", "out.jsonl",
    ]  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        reset_caches(servers)
        cpu_before = server_cpu_seconds(servers)
        started = time.perf_counter()
        done = subprocess.run(
            command,
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            preexec_fn=lambda: os.sched_setaffinity(0, cpus),
        )
        wall = time.perf_counter() - started
        run_cpu = server_cpu_seconds(servers) - cpu_before
    if done.returncode != 0:
        output = f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        sys.exit(f"the job failed ({done.returncode}):\n{output}")
    records = [list(proxy.records) for proxy in proxies]
    flat = [r for per in records for r in per]
    first = min(p.first_request for p in proxies if p.first_request is not None)
    last = max(r.answered for r in flat)
    tokens = sum(r.completion_tokens for r in flat)
    marks = proxies[0].marks
    assert marks.chat_at is not None and marks.first_cpu_s is not None
    paths: dict[str, int] = {}
    for proxy in proxies:
        for path, calls in proxy.paths.items():
            paths[path] = paths.get(path, 0) + calls
    if args.verbose:
        print(done.stdout[-2500:])
    return JobRun(
        RunFigures(
            "job", "adaptive", len(flat), tokens, last - first, marks.last_cpu_s - marks.first_cpu_s
        ),
        RunFigures(
            "job, chat only",
            "adaptive",
            len(flat),
            tokens,
            last - marks.chat_at,
            marks.last_cpu_s - marks.chat_cpu_s,
        ),
        records,
        wall,
        paths,
        run_cpu,
    )


async def replay(
    bodies: Sequence[bytes], proxies: Sequence[Proxy], concurrency: int
) -> tuple[int, float]:
    """Send `bodies` round-robin over the proxies, `concurrency` in flight per server (0: all);
    completion tokens and seconds from the first send to the last answer."""
    limit = concurrency or len(bodies)
    gates = [asyncio.Semaphore(limit) for _ in proxies]
    headers = {"Content-Type": "application/json"}
    async with ClientSession(
        connector=TCPConnector(limit=0), timeout=ClientTimeout(total=None)
    ) as session:

        async def one(index: int, body: bytes) -> int:
            server = index % len(proxies)
            async with gates[server]:
                url = proxies[server].base_url + "/chat/completions"
                async with session.post(url, data=body, headers=headers) as response:
                    data = await response.json(content_type=None)
            return int((data.get("usage") or {}).get("completion_tokens", 0))

        started = time.perf_counter()
        tokens = await asyncio.gather(*(one(i, body) for i, body in enumerate(bodies)))
        return sum(tokens), time.perf_counter() - started


def run_replay(
    bodies: Sequence[bytes],
    proxies: Sequence[Proxy],
    servers: Sequence[VllmServer],
    concurrency: int,
) -> RunFigures:
    for proxy in proxies:
        proxy.reset(recording=False)
    reset_caches(servers)
    cpu_before = server_cpu_seconds(servers)
    tokens, seconds = asyncio.run(replay(bodies, proxies, concurrency))
    cpu = server_cpu_seconds(servers) - cpu_before
    shown = str(concurrency) if concurrency else "all"
    return RunFigures("raw", shown, len(bodies), tokens, seconds, cpu)


def bench(count: int, model: str, args: argparse.Namespace, console: Console) -> list[Any]:
    everything = set(os.sched_getaffinity(0))
    with ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        servers = [
            stack.enter_context(running_vllm_server(Path(model), logs / f"server{i}.log"))
            for i in range(count)
        ]
        if count == 1:
            client_cpus = everything - set(SERVER_CPUS) or everything
            servers[0].pin(SERVER_CPUS)
            placement = f"server on CPUs {SERVER_CPUS}, job/proxy/client on {sorted(client_cpus)}"
        else:
            cpus = sorted(everything)
            for index, server in enumerate(servers):
                server.pin([cpus[index % len(cpus)]])
            client_cpus = everything
            placement = (
                f"server i on CPU i ({', '.join(str(cpus[i % len(cpus)]) for i in range(count))}), "
                f"job/proxy/client on all {len(cpus)} CPUs (competing with the servers)"
            )
        os.sched_setaffinity(0, client_cpus)
        proxies = stack.enter_context(proxies_for(servers))
        console.print(f"[bold]{count} server(s)[/]: {placement}")
        try:
            warm = run_job(proxies, servers, model, args, client_cpus)
            bodies = [r.body for per in warm.records for r in sorted(per, key=lambda r: r.sent)]
            run_replay(bodies, proxies, servers, 0)  # warm-up of the raw side
            rows = []
            for round_number in range(1, args.rounds + 1):
                job = run_job(proxies, servers, model, args, client_cpus)
                # Exactly what this job sent, in the order it sent it.
                flat = sorted((r for per in job.records for r in per), key=lambda r: r.sent)
                bodies = [r.body for r in flat]
                raws = [run_replay(bodies, proxies, servers, c) for c in args.concurrency]
                best = max(raws, key=lambda figures: figures.tokens_per_s)
                rows.append((round_number, job, raws, best))
                whole_run = 1e6 * job.run_cpu_s / job.whole.tokens if job.whole.tokens else 0.0
                console.print(
                    f"round {round_number}: the job's calls per route {job.paths}; "
                    f"`actionforge run` took {job.wall:.1f} s, server CPU over all of it "
                    f"{whole_run:,.1f} ms / 1k tok"
                )
        finally:
            os.sched_setaffinity(0, everything)
    return rows


def show(count: int, rows: list[Any], console: Console) -> None:
    table = Table(title=f"{count} server(s): the job's requests, sent by the job and raw")
    for column in (
        "round", "side", "in flight", "requests", "compl. tokens", "seconds", "tok/s",
        "server CPU ms / 1k tok", "vs raw best (tok/s, CPU/tok)",
    ):  # fmt: skip
        table.add_column(column, justify="right")
    ratios: dict[str, list[float]] = {"job": [], "job, chat only": []}
    cpu_ratios: dict[str, list[float]] = {"job": [], "job, chat only": []}
    for round_number, job, raws, best in rows:
        per_server = " + ".join(str(len(per)) for per in job.records)
        for figures in [job.whole, job.chat, *raws]:
            compared = ""
            if figures.side in ratios:
                ratio = figures.tokens_per_s / best.tokens_per_s
                cpu_ratio = figures.cpu_ms_per_1k / best.cpu_ms_per_1k
                ratios[figures.side].append(ratio)
                cpu_ratios[figures.side].append(cpu_ratio)
                compared = f"{ratio:.3f}, {cpu_ratio:.3f}"
            requests = str(figures.requests)
            if figures.side == "job" and len(job.records) > 1:
                requests += f" ({per_server})"
            table.add_row(
                str(round_number),
                figures.side,
                figures.concurrency + (" (best)" if figures is best else ""),
                requests,
                f"{figures.tokens:,}",
                f"{figures.seconds:.1f}",
                f"{figures.tokens_per_s:,.0f}",
                f"{figures.cpu_ms_per_1k:,.1f}",
                compared,
            )
    console.print(table)
    for side, measured in ratios.items():
        median = statistics.median(measured)
        verdict = "ok" if median >= FLOOR else "BELOW THE FLOOR"
        console.print(
            f"{count} server(s), {side}: tokens/s job/raw median {median:.3f} (floor {FLOOR}) "
            f"{verdict}; server CPU per token job/raw median "
            f"{statistics.median(cpu_ratios[side]):.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder (default: the tiny test model)")
    parser.add_argument("--n", type=int, default=256, help="samples of the job")
    parser.add_argument("--seed", type=int, default=7, help="the job's seed")
    parser.add_argument("--rounds", type=int, default=2, help="measured rounds per setup")
    parser.add_argument("--servers", default="1,2", help="numbers of servers to try")
    parser.add_argument(
        "--concurrency",
        default="32,64,128,256,0",
        help="raw in flight per server to try (0: all at once)",
    )
    parser.add_argument("--verbose", action="store_true", help="print the job's output")
    args = parser.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    model = args.model or str(cached_tiny_model())
    console = Console()
    for count in (int(c) for c in args.servers.split(",")):
        show(count, bench(count, model, args, console), console)


if __name__ == "__main__":
    main()
