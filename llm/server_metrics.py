"""The load an OpenAI-compatible server reports at `GET /metrics` (vLLM's Prometheus gauges).

vLLM (0.11 to 0.32 at least) serves, per engine: `vllm:num_requests_running`,
`vllm:num_requests_waiting`, `vllm:kv_cache_usage_perc` (a fraction, 0..1) and the counter
`vllm:num_preemptions_total`. Running and waiting are summed over engines (data parallel ranks),
the KV cache usage is the fullest engine's. A server that serves none of them reports no load.
"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from llm.concurrency import ServerLoad

RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
KV_CACHE_USAGE = "vllm:kv_cache_usage_perc"
PREEMPTIONS = "vllm:num_preemptions_total"
# The whole page is tens of kilobytes of histograms: only these lines are parsed.
_PREFIXES = tuple(f"{name}{{" for name in (RUNNING, WAITING, KV_CACHE_USAGE, PREEMPTIONS)) + (
    tuple(f"{name} " for name in (RUNNING, WAITING, KV_CACHE_USAGE, PREEMPTIONS))
)


def read_load(text: str) -> ServerLoad | None:
    """The load in a Prometheus text page, or None when it has neither running nor waiting."""
    lines = [line for line in text.splitlines() if line.startswith(_PREFIXES)]
    sums: dict[str, float] = {}
    kv_usage: float | None = None
    for family in text_string_to_metric_families("\n".join(lines) + "\n"):
        for sample in family.samples:
            if sample.name == KV_CACHE_USAGE:
                kv_usage = max(kv_usage or 0.0, sample.value)
            else:
                sums[sample.name] = sums.get(sample.name, 0.0) + sample.value
    if RUNNING not in sums and WAITING not in sums:
        return None
    return ServerLoad(
        running=sums.get(RUNNING, 0.0),
        waiting=sums.get(WAITING, 0.0),
        kv_cache_usage=kv_usage,
        preemptions=sums.get(PREEMPTIONS),
    )
