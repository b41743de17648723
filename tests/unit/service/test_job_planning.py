from pathlib import Path

import pytest

from service.errors import InvalidRequest
from service.pipeline.counts import empty_counts, generation_usage
from service.pipeline.submit import derive_seed, plan_batches
from service.settings import Settings
from service.worker import parse_queues, worker_command, worker_environment


def test_batches_cover_the_job_with_deterministic_ids_sizes_and_seeds() -> None:
    batches = plan_batches("job1", n=105, batch_size=50, job_seed=9)
    assert [b.id for b in batches] == ["job1-000000", "job1-000001", "job1-000002"]
    assert [b.index for b in batches] == [0, 1, 2]
    assert [b.size for b in batches] == [50, 50, 5]
    assert [b.seed for b in plan_batches("other", 105, 50, 9)] == [b.seed for b in batches]
    assert all(b.status == "planned" and b.attempts == 0 for b in batches)


def test_a_job_smaller_than_a_batch_is_one_batch() -> None:
    [batch] = plan_batches("j", n=3, batch_size=50, job_seed=0)
    assert batch.size == 3


def test_batch_seeds_differ_per_batch_and_job_seed_and_fit_a_32_bit_column() -> None:
    seeds = {derive_seed(job_seed, index) for job_seed in range(20) for index in range(50)}
    assert len(seeds) == 1000
    assert all(0 <= seed < 2**31 for seed in seeds)
    assert derive_seed(10**30, 7) == derive_seed(10**30, 7)


def test_empty_counts_name_every_stage() -> None:
    assert empty_counts(["format", "dedup"]) == {
        "generated": 0,
        "accepted": 0,
        "rejected": 0,
        "by_stage": {"format": {"passed": 0, "rejected": 0}, "dedup": {"passed": 0, "rejected": 0}},
        "by_reason": {},
        "batches": {},
        "funnel": [
            {"step": "generated", "samples": 0, "rejected": 0},
            {"step": "format", "samples": 0, "rejected": 0},
            {"step": "dedup", "samples": 0, "rejected": 0},
            {"step": "accepted", "samples": 0, "rejected": 0},
        ],
        "rejections": [],
        "generation": None,
    }


def test_queues_are_parsed_and_deduplicated() -> None:
    assert parse_queues("generate, verify,generate") == ["generate", "verify"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "generate,gpu",
            "-Q: unknown queue 'gpu'; give a comma-separated list of generate, verify, train",
        ),
        (" , ", "-Q: no queue given; give a comma-separated list of generate, verify, train"),
    ],
)
def test_unknown_queues_are_refused_with_the_known_ones(text: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_queues(text)
    assert str(raised.value) == message


def test_embedded_workers_get_the_settings_of_the_process_that_starts_them(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, batch_size=7)
    env = worker_environment(settings)
    assert env["AF_DATA_DIR"] == str(tmp_path)
    assert env["AF_DATABASE_URL"] == settings.resolved_database_url()
    assert env["AF_BROKER_URL"] == "embedded"
    assert env["AF_BATCH_SIZE"] == "7"
    command = worker_command(["generate", "verify", "train"], 3)
    assert command[1:] == [
        "-m",
        "service.worker_main",
        "-Q",
        "generate,verify,train",
        "--concurrency",
        "3",
    ]


def test_generation_usage_sums_batches_and_gives_engine_throughput() -> None:
    batches = [
        {"requests": 3, "prompt_tokens": 300, "completion_tokens": 90, "wall_s": 1.5,
         "failures": {"truncated": 1}},
        None,
        {"requests": 2, "prompt_tokens": 200, "completion_tokens": 60, "wall_s": 0.5,
         "failures": {"truncated": 1, "unparseable": 2}},
    ]  # fmt: skip
    assert generation_usage(batches) == {
        "requests": 5,
        "prompt_tokens": 500,
        "completion_tokens": 150,
        "wall_s": 2.0,
        "completion_tokens_per_s": 75.0,
        "failures": {"truncated": 2, "unparseable": 2},
        "servers": {},
    }
    assert generation_usage([None, None]) is None


def test_generation_usage_per_server_adds_up_to_the_job() -> None:
    a, b = "http://a:8000/v1", "http://b:8000/v1"
    batches = [
        {"requests": 3, "prompt_tokens": 30, "completion_tokens": 90, "wall_s": 1.0,
         "servers": {a: {"requests": 2, "prompt_tokens": 20, "completion_tokens": 60},
                     b: {"requests": 1, "prompt_tokens": 10, "completion_tokens": 30}}},
        {"requests": 1, "prompt_tokens": 10, "completion_tokens": 30, "wall_s": 1.0,
         "servers": {b: {"requests": 1, "prompt_tokens": 10, "completion_tokens": 30}}},
    ]  # fmt: skip
    servers = generation_usage(batches)["servers"]  # type: ignore[index]
    assert servers == {
        a: {"requests": 2, "prompt_tokens": 20, "completion_tokens": 60,
            "completion_tokens_per_s": 30.0},
        b: {"requests": 2, "prompt_tokens": 20, "completion_tokens": 60,
            "completion_tokens_per_s": 30.0},
    }  # fmt: skip
