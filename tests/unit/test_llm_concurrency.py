"""The in-flight limit's pure logic (`llm.concurrency.AimdLimit`), reading vLLM's metrics page
(`llm.server_metrics`), and the server lists and concurrency bounds of `BackendConfig`."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from llm.base import BackendConfig
from llm.concurrency import LATENCY_WARMUP, AimdLimit, ConcurrencySettings, ServerLoad
from llm.server_metrics import read_load

SETTINGS = ConcurrencySettings(initial=256, minimum=4, maximum=1024, cooldown_s=1.0)


def test_starts_high_within_its_bounds() -> None:
    assert AimdLimit(SETTINGS).value == 256
    assert AimdLimit(ConcurrencySettings(initial=2000, maximum=512)).value == 512
    assert AimdLimit(ConcurrencySettings(initial=1, minimum=4)).value == 4


def test_overload_multiplies_down_once_per_cooldown_never_below_the_minimum() -> None:
    limit = AimdLimit(SETTINGS)
    assert limit.on_overloaded(now=10.0)
    assert limit.value == 192  # 256 x 0.75
    # A burst of 429s within the cooldown is one signal.
    assert not limit.on_overloaded(now=10.5)
    assert limit.value == 192
    now = 11.0
    for _ in range(40):
        limit.on_overloaded(now)
        now += 1.0
    assert limit.value == 4
    assert not limit.on_overloaded(now + 10)  # already at the floor: nothing to lower


def test_a_long_server_queue_lowers_the_limit_once_our_requests_drained_to_it() -> None:
    limit = AimdLimit(SETTINGS)
    full = ServerLoad(running=128, waiting=128, kv_cache_usage=0.5, preemptions=0)
    assert limit.on_load(full, outstanding=256, queued=True, now=1.0) == -64
    # Still 256 of ours out there, sent before the decrease: the same queue says nothing new.
    assert limit.on_load(full, outstanding=256, queued=True, now=3.0) == 0
    assert limit.on_load(full, outstanding=192, queued=True, now=4.0) == -48
    # A short queue (at most a quarter of what runs, or 8) is what keeps the batch full.
    short = ServerLoad(running=128, waiting=16, kv_cache_usage=0.5, preemptions=0)
    assert limit.on_load(short, outstanding=144, queued=True, now=6.0) == 0
    assert limit.value == 144


def test_preemptions_and_a_full_kv_cache_lower_the_limit() -> None:
    limit = AimdLimit(SETTINGS)
    assert limit.on_load(ServerLoad(100, 0, 0.5, preemptions=3), 100, False, now=1.0) == 0
    assert limit.on_load(ServerLoad(100, 0, 0.5, preemptions=5), 100, False, now=2.0) < 0
    assert limit.on_load(ServerLoad(100, 0, 0.5, preemptions=5), 100, False, now=3.0) == 0
    assert limit.on_load(ServerLoad(100, 0, 0.97, preemptions=5), 100, False, now=4.0) < 0
    assert limit.last_reason == "kv_cache_full"


def test_grows_only_while_the_server_takes_all_and_more_is_waiting_here() -> None:
    limit = AimdLimit(SETTINGS)
    idle = ServerLoad(running=256, waiting=0, kv_cache_usage=0.3, preemptions=0)
    # Nothing waits on our side: no reason to grow.
    assert limit.on_load(idle, outstanding=100, queued=False, now=1.0) == 0
    assert limit.on_load(idle, outstanding=256, queued=True, now=2.0) == 25  # +10%
    assert limit.on_load(idle, outstanding=281, queued=True, now=3.0) == 28
    busy = ServerLoad(running=256, waiting=4, kv_cache_usage=0.3, preemptions=0)
    assert limit.on_load(busy, outstanding=309, queued=True, now=4.0) == 0
    many = AimdLimit(ConcurrencySettings(initial=1000, maximum=1024))
    assert many.on_load(idle, outstanding=1000, queued=True, now=1.0) == 24  # capped


def test_time_per_token_growing_past_the_tolerance_lowers_the_limit() -> None:
    limit = AimdLimit(SETTINGS)
    now = 0.0
    for _ in range(LATENCY_WARMUP + 20):
        now += 0.1
        assert not limit.on_completed(seconds=1.0, completion_tokens=100, now=now)
    assert limit.value == 256
    # Twice as slow is within the tolerance of 2.5x.
    for _ in range(60):
        now += 0.1
        assert not limit.on_completed(seconds=2.0, completion_tokens=100, now=now)
    lowered = False
    for _ in range(60):
        now += 0.1
        lowered |= limit.on_completed(seconds=6.0, completion_tokens=100, now=now)
    assert lowered and limit.value == 192 and limit.last_reason == "latency"
    # Answers without completion tokens (errors) say nothing about the time per token.
    assert not limit.on_completed(seconds=60.0, completion_tokens=0, now=now + 5)


def test_a_fixed_limit() -> None:
    config = BackendConfig(model="m", min_concurrency=16, max_concurrency=16)
    limit = AimdLimit(config.concurrency())
    limit.on_overloaded(now=1.0)
    full = ServerLoad(running=16, waiting=64)
    limit.on_load(full, outstanding=16, queued=True, now=5.0)
    assert limit.value == 16


def test_bounds_from_the_options() -> None:
    settings = BackendConfig(model="m", max_concurrency=2).concurrency()
    assert (settings.initial, settings.minimum, settings.maximum) == (2, 2, 2)
    settings = BackendConfig(model="m").concurrency()
    assert (settings.initial, settings.minimum, settings.maximum) == (256, 4, 1024)


VLLM_METRICS = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 100.0
vllm:num_requests_running{engine="1",model_name="m"} 28.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} 7.0
vllm:num_requests_waiting{engine="1",model_name="m"} 1.0
vllm:num_requests_waiting_by_reason{engine="0",model_name="m",reason="capacity"} 7.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.5
# TYPE vllm:num_preemptions counter
vllm:num_preemptions_total{engine="0",model_name="m"} 3.0
vllm:num_preemptions_created{engine="0",model_name="m"} 1.7e+09
vllm:e2e_request_latency_seconds_bucket{engine="0",le="0.3",model_name="m"} 0.0
"""


def test_reads_vllms_gauges_summed_over_engines() -> None:
    assert read_load(VLLM_METRICS) == ServerLoad(
        running=128.0, waiting=8.0, kv_cache_usage=0.5, preemptions=3.0
    )


def test_a_page_without_vllms_gauges_reports_no_load() -> None:
    assert read_load("# nothing here\nprocess_cpu_seconds_total 3.5\n") is None
    assert read_load("") is None


def test_base_url_takes_one_server_a_list_or_urls_separated_by_commas() -> None:
    assert BackendConfig(model="m", base_url="http://a/v1/").base_urls() == ["http://a/v1"]
    listed = BackendConfig(model="m", base_url=["http://a/v1", "http://b/v1"])
    assert listed.base_urls() == ["http://a/v1", "http://b/v1"]
    joined = BackendConfig(model="m", base_url="http://a/v1, http://b/v1")
    assert joined.base_url == ["http://a/v1", "http://b/v1"]
    assert BackendConfig(model="m").base_urls() == []


@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        ([], "give at least one server URL"),
        (" , ", "give at least one server URL"),
        ("vllm:8000/v1", "'vllm:8000/v1' is not an http:// or https:// URL"),
        (["http://a/v1", "http://a/v1/"], "a server URL is listed twice"),
    ],
)
def test_bad_server_lists_are_refused_with_what_to_change(base_url: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        BackendConfig(model="m", base_url=base_url)
