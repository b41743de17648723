"""The LLM generator's prompt budget on vLLM's real server (the tiny model, max_model_len 2048):
the travel catalog with two few-shot examples per prompt makes prompts of up to about 2,250
tokens, which the server refused with HTTP 400 before; now each is trimmed to fit the context
less max_tokens and yields a sample, and a tool too big to fit at all yields `prompt_too_long`
rejections without a request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llm_fixtures import MAX_MODEL_LEN

from generators.base import GenerationRequest
from generators.llm.generator import PROMPT_TRIMMED, LlmGenerator
from llm.output import BLUEPRINT_NOT_FOLLOWED, PROMPT_TOO_LONG, TRUNCATED, generation_failure
from llm.shared import close_shared_backends
from service.pipeline.tool_api import MockToolApi
from unified.catalogs import load_catalog
from unified.model import QueryStyle, Tool
from verifiers.stages import StageContext, build_stages

pytestmark = [pytest.mark.slow, pytest.mark.llm]

ROOT = Path(__file__).resolve().parents[2]
TRAVEL = load_catalog(ROOT / "examples" / "travel_api.yaml").tools
MAX_TOKENS = 320
BUDGET = MAX_MODEL_LEN - MAX_TOKENS


@pytest.fixture
def shared_backends() -> Iterator[None]:
    yield
    close_shared_backends()


def options(model: str, base_url: str) -> dict[str, Any]:
    return {
        "backend": "openai",
        "model": model,
        "base_url": base_url,
        "max_tokens": MAX_TOKENS,
        "num_examples": 2,
        "max_query_chars": 60,
        "max_text_chars": 80,
        "max_string_chars": 12,
        "max_items": 3,
        "max_calls": 3,
    }


def test_prompts_over_the_context_are_trimmed_and_answered(
    vllm_server: str, tiny_model_dir: Path, shared_backends: None
) -> None:
    request = GenerationRequest(
        n=24,
        seed=7,
        styles={style: 1.0 for style in QueryStyle},
        id_prefix="b-",
        options=options(str(tiny_model_dir), vllm_server),
    )
    samples = LlmGenerator(tool_api=MockToolApi).generate(TRAVEL, request)
    trimmed = [s.meta.extra[PROMPT_TRIMMED] for s in samples if PROMPT_TRIMMED in s.meta.extra]
    assert any(record["tokens_before"] > MAX_MODEL_LEN for record in trimmed), trimmed
    for sample in samples:
        failure = generation_failure(sample)
        # the server's own count of the prompts it was sent; a multi_turn sample sums its own
        requests = 1 + sample.meta.extra.get("dialogue", {}).get("requests", 0)
        assert 0 < sample.meta.extra["prompt_tokens"] <= BUDGET * requests
        if sample.meta.style is QueryStyle.multi_turn and failure is not None:
            # the random model leaves its blueprint; a dialogue's history may outgrow the
            # context, and its prompt is then not sent (the blueprint's own always is)
            assert failure[0] in (TRUNCATED, BLUEPRINT_NOT_FOLLOWED, PROMPT_TOO_LONG), failure
            assert failure[0] != PROMPT_TOO_LONG or "dialogue" in sample.meta.extra
            continue
        assert failure is None or failure[0] == TRUNCATED, (sample.id, failure)  # no 400
    for record in trimmed:
        assert record["tokens_before"] > BUDGET >= record["tokens_after"]
        assert record["budget"] == BUDGET
    # counted in the worker with the model's tokenizer: exactly what the server counted (a
    # multi_turn sample's prompt_tokens add its dialogue's prompts to its trimmed blueprint's)
    for sample in samples:
        if PROMPT_TRIMMED in sample.meta.extra:
            tokens_after = sample.meta.extra[PROMPT_TRIMMED]["tokens_after"]
            if "dialogue" in sample.meta.extra:
                assert tokens_after < sample.meta.extra["prompt_tokens"], sample.id
            else:
                assert tokens_after == sample.meta.extra["prompt_tokens"], sample.id


def test_a_tool_too_big_for_the_context_is_rejected_as_prompt_too_long(
    vllm_server: str, tiny_model_dir: Path, shared_backends: None
) -> None:
    huge = Tool(
        name="configure_everything",
        description="Sets every setting of the account at once.",
        parameters={
            "type": "object",
            "properties": {f"setting_{n}": {"type": "string"} for n in range(120)},
        },
    )
    request = GenerationRequest(
        n=3,
        seed=1,
        styles={QueryStyle.simple: 1.0},
        id_prefix="h-",
        options=options(str(tiny_model_dir), vllm_server),
    )
    generator = LlmGenerator(tool_api=MockToolApi)
    samples, usage = generator.generate_with_usage([huge], request)
    assert usage.requests == 0 and usage.failures == {PROMPT_TOO_LONG: 3}
    (stage,) = build_stages(["generation"])
    for verdict in stage.verify_batch(samples, StageContext()):
        assert (verdict.accepted, verdict.reason) == (False, "prompt_too_long")
        assert f"over its budget of {BUDGET} tokens" in str(verdict.detail)
        assert f"context of {MAX_MODEL_LEN}" in str(verdict.detail)
