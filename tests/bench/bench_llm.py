"""What the in-process engine backend costs over calling vLLM's engine directly, side by side.

Run: python tests/bench/bench_llm.py [--model DIR] [--requests 48] [--rounds 5]

VllmEngineBackend.generate against `LLM.chat` called directly on the same engine (the tiny test
model, or --model). Both sides send the same prompts and sampling settings: half the requests
under a tool-call JSON schema, half free text. The two sides take turns, ours-raw-raw-ours in a
round (reversed in every other round), with the same seeds within a round (so both sides
generate the same tokens) and new seeds for the next; before every run the prefix cache is
reset, so no run finds the work of an earlier one. Each round gives a ratio, completion tokens/s
of the backend over raw vLLM's; the table shows every round and the median. The floor the
project holds itself to is 0.95.

The server backend is measured by tests/bench/bench_llm_replay.py: the requests of a real job
replayed by a plain client at its best concurrency. (This file once held both sides of the
server to the same 16 requests in flight, which measured the HTTP client and not the policy of
how many to send.)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the fixture helpers

from llm_fixtures import MAX_MODEL_LEN
from tiny_model import cached_tiny_model

from llm import BackendConfig, LLMRequest
from llm.vllm_engine import VllmEngineBackend

FLOOR = 0.95
TOOL_CALL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "enum": ["get_weather", "search_hotels", "convert_currency"]},
        "arguments": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "pattern": "^[A-Za-z ]{1,24}$"},
                "days": {"type": "integer", "minimum": 1, "maximum": 14},
            },
            "required": ["city", "days"],
            "additionalProperties": False,
        },
    },
    "required": ["name", "arguments"],
    "additionalProperties": False,
}
TOPICS = ["flights to Berlin", "the weather in Tokyo", "hotels in Rome", "250 USD in EUR"]

Run = Callable[[list[LLMRequest]], int]  # sends the requests, returns completion tokens


def workload(count: int, seed_base: int) -> list[LLMRequest]:
    """`count` requests: even ones under the tool-call schema, odd ones free text."""
    requests = []
    for index in range(count):
        schema = TOOL_CALL_SCHEMA if index % 2 == 0 else None
        text = f"Request {index}: help me with {TOPICS[index % len(TOPICS)]}. " * (1 + index % 5)
        requests.append(
            LLMRequest(
                messages=[
                    {"role": "system", "content": "You call tools. Answer in JSON."},
                    {"role": "user", "content": text},
                ],
                json_schema=schema,
                max_tokens=96 if schema else 160,
                temperature=0.8,
                top_p=0.95,
                seed=seed_base + index,
            )
        )
    return requests


def compare(
    name: str,
    ours: Run,
    raw: Run,
    reset_cache: Callable[[], None],
    args: argparse.Namespace,
) -> list[tuple[str, float, float, float]]:
    """`args.rounds` rounds of (round, ours tok/s, raw tok/s, ratio). A round runs each side
    twice in the order ours, raw, raw, ours (raw first in every other round), so a load that
    drifts during the round weighs on both sides alike."""
    rows = []
    seed = 1_000
    for round_number in range(args.rounds):
        tokens = {"ours": 0, "raw": 0}
        seconds = {"ours": 0.0, "raw": 0.0}
        order = ["ours", "raw", "raw", "ours"]
        # The same seeds for every run of a round: with seeded sampling both sides generate
        # the same tokens, so they do the same work (seeds that differ per run make the answers'
        # lengths, and so the tokens/s, differ by chance). The cache reset keeps the repeated
        # prompts from being served from the prefix cache.
        seed += args.requests
        requests = workload(args.requests, seed)
        for side in order if round_number % 2 == 0 else order[::-1]:
            reset_cache()
            started = time.perf_counter()
            tokens[side] += (ours if side == "ours" else raw)(requests)
            seconds[side] += time.perf_counter() - started
        speed = {side: tokens[side] / seconds[side] for side in tokens}
        ratio = speed["ours"] / speed["raw"]
        rows.append((f"{name} #{round_number + 1}", speed["ours"], speed["raw"], ratio))
    return rows


def bench_engine(model: str, args: argparse.Namespace) -> list[tuple[str, float, float, float]]:
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    backend = VllmEngineBackend(
        BackendConfig(backend="vllm", model=model, engine_options={"max_model_len": MAX_MODEL_LEN})
    )
    llm = backend._llm  # the same engine, called directly
    try:

        def ours(requests: list[LLMRequest]) -> int:
            return sum(result.completion_tokens for result in backend.generate(requests))

        def raw(requests: list[LLMRequest]) -> int:
            params = [
                SamplingParams(
                    max_tokens=request.max_tokens,
                    temperature=request.temperature,
                    top_p=request.top_p,
                    seed=request.seed,
                    structured_outputs=StructuredOutputsParams(json=request.json_schema)
                    if request.json_schema is not None
                    else None,
                )
                for request in requests
            ]
            outputs = llm.chat([r.messages for r in requests], params, use_tqdm=False)
            return sum(len(output.outputs[0].token_ids) for output in outputs)

        ours(workload(args.requests, 0))  # warm-up
        raw(workload(args.requests, 0))
        return compare("engine", ours, raw, llm.reset_prefix_cache, args)
    finally:
        backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder (default: the tiny test model)")
    parser.add_argument("--requests", type=int, default=48, help="requests per run")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each side")
    args = parser.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    model = args.model or str(cached_tiny_model())

    rows = bench_engine(model, args)
    table = Table(title=f"Completion tokens/s, backend vs raw vLLM ({args.requests} requests/run)")
    for column in ("run", "backend tok/s", "raw vLLM tok/s", "ratio"):
        table.add_column(column, justify="right")
    for run, ours, raw, ratio in rows:
        table.add_row(run, f"{ours:,.0f}", f"{raw:,.0f}", f"{ratio:.3f}")
    console = Console()
    console.print(table)
    median = statistics.median(ratio for *_, ratio in rows)
    verdict = "ok" if median >= FLOOR else "BELOW THE FLOOR"
    console.print(f"engine: median ratio {median:.3f} (floor {FLOOR}) {verdict}")


if __name__ == "__main__":
    main()
