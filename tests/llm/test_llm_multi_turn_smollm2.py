"""The multi_turn style on a real model: SmolLM2-135M-Instruct served by vLLM (CPU build) writes
blueprints, plays the user and the assistant, and the mock API of the travel catalog answers
the calls. The model is weak, so what is asserted is what must hold whatever it writes: every
requested sample comes back, each either a conversation with its validated blueprint in
`meta.extra` or a failure that says where; every call made carries the mock's answer; the
generation stage accepts exactly the conversations that followed their blueprints and rejects
every other sample with its reason, and the funnel counts each one once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_fixtures import VllmServer
from smollm2_model import MODEL

from generators.base import GenerationRequest
from generators.llm.blueprint import read_blueprint
from generators.llm.generator import LlmGenerator
from llm.output import generation_failure
from llm.shared import close_shared_backends
from service.pipeline.tool_api import MockToolApi
from unified.catalogs import load_catalog
from unified.model import QueryStyle
from verifiers.generation import REASONS
from verifiers.mock_api import MockApi
from verifiers.stages import StageContext, build_stages, run_stages

pytestmark = [pytest.mark.slow, pytest.mark.llm]

ROOT = Path(__file__).resolve().parents[2]
TRAVEL = load_catalog(ROOT / "examples" / "travel_api.yaml").tools
N = 3
MAX_TURNS = 2
ENDS = {"completed", "diverged", "turn_limit", "failed"}


@pytest.fixture
def shared_backends() -> Iterator[None]:
    yield
    close_shared_backends()


def test_smollm2_talks_multi_turn_conversations_that_are_accounted_for(
    smollm2_server: VllmServer, shared_backends: None
) -> None:
    options = {
        "backend": "openai",
        "base_url": smollm2_server.base_url,
        "model": MODEL.served_name,
        # short texts keep a CPU round short; max_tokens leaves room for the longest blueprint
        "max_tokens": 320,
        "num_examples": 1,
        "max_query_chars": 80,
        "max_text_chars": 100,
        "max_string_chars": 24,
        "max_items": 2,
        "max_calls": 2,
        "max_turns": MAX_TURNS,
        "created": "2026-12-01T00:00:00+00:00",
    }
    request = GenerationRequest(
        n=N, seed=4, styles={QueryStyle.multi_turn: 1.0}, id_prefix="mt-", options=options
    )
    samples, usage = LlmGenerator(tool_api=MockToolApi).generate_with_usage(TRAVEL, request)

    assert [s.id for s in samples] == [f"mt-{i}" for i in range(N)]
    talked = 0
    for sample in samples:
        assert sample.meta.style is QueryStyle.multi_turn and sample.meta.generator == "llm"
        dialogue = sample.meta.extra.get("dialogue")
        if dialogue is None:  # the blueprint itself failed: nothing was said
            assert generation_failure(sample) is not None
            assert not sample.query and not sample.turns
            continue
        talked += 1
        blueprint = read_blueprint(sample.meta.extra["blueprint"])
        assert 2 <= len(blueprint.turns) <= MAX_TURNS
        for turn in blueprint.turns:  # validated: every call was answered
            assert len(turn.results) == len(turn.calls)
        assert dialogue["end"] in ENDS
        assert 1 <= len(sample.conversation()) <= MAX_TURNS
        assert 0 <= dialogue["requests"] <= 3 * MAX_TURNS
        replay = MockApi(sample.tools)
        for step in sample.all_steps():
            assert step.results == [replay.call(call).body for call in step.tool_calls]
        assert (dialogue["end"] == "completed") == (generation_failure(sample) is None)
    assert usage.requests == N + sum(
        s.meta.extra["dialogue"]["requests"] for s in samples if "dialogue" in s.meta.extra
    )
    assert usage.completion_tokens > 0

    (stage,) = build_stages(["generation"])
    judged = run_stages([stage], samples, StageContext(tools=TRAVEL))
    rejected = Counter()
    for sample, verdicts in zip(samples, judged.verdicts, strict=True):
        (verdict,) = verdicts  # judged, not `multi_turn_not_judged`
        failure = generation_failure(sample)
        assert verdict.accepted == (failure is None)
        if failure is not None:
            assert verdict.reason == REASONS[failure[0]] and verdict.detail
            rejected[failure[0]] += 1
    assert rejected == Counter(usage.failures)
    assert sum(rejected.values()) + len(judged.survivors()) == N
    print(f"conversations: {talked} of {N}; generation rejections: {dict(rejected)}")
