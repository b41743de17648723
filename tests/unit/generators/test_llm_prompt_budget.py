"""The LLM generator keeps its prompts within the model's context, with a scripted backend: the
context from the backend or the `max_model_len` option, trimmed prompts recorded in the sample,
prompts that cannot fit never sent and rejected by the generation stage as `prompt_too_long`,
and no budgeting where the context is not known. The same on real vLLM:
tests/llm/test_served_prompt_budget.py."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llm_scripted_backend import ScriptedBackend

from generators.base import GenerationRequest
from generators.llm.generator import PROMPT_TRIMMED, LlmGenerator
from llm.output import PROMPT_TOO_LONG, generation_failure
from llm.prompt_tokens import Messages, estimate_prompt_tokens
from unified.catalogs import load_catalog
from unified.model import QueryStyle, Sample, Tool
from verifiers.stages import StageContext, build_stages

ROOT = Path(__file__).resolve().parents[3]
TRAVEL = load_catalog(ROOT / "examples" / "travel_api.yaml").tools
SIMPLE = {QueryStyle.simple: 1.0}


class MeasuringBackend(ScriptedBackend):
    """A scripted backend that knows its context and counts prompts like the estimate."""

    def __init__(self, context: int | None) -> None:
        super().__init__()
        self.context = context
        self.counted: list[int] = []

    def context_length(self) -> int | None:
        return self.context

    def count_prompt_tokens(self, prompts: Sequence[Messages]) -> list[int]:
        self.counted.append(len(prompts))
        return [estimate_prompt_tokens(prompt) for prompt in prompts]


def generate(
    backend: ScriptedBackend, tools: list[Tool] = TRAVEL, n: int = 8, **options: Any
) -> list[Sample]:
    request = GenerationRequest(
        n=n,
        seed=4,
        styles=options.pop("styles", SIMPLE),
        id_prefix="p-",
        options={"model": "m", "max_tokens": 200, **options},
    )
    return LlmGenerator(backend=backend).generate(tools, request)


def sent_tokens(backend: ScriptedBackend) -> list[int]:
    return [estimate_prompt_tokens(r.messages) for batch in backend.batches for r in batch]


def test_without_a_known_context_prompts_go_as_rendered() -> None:
    backend = ScriptedBackend()
    samples = generate(backend, num_examples=4)
    assert all(PROMPT_TRIMMED not in s.meta.extra for s in samples)
    assert len(backend.batches[0]) == 8


def test_prompts_over_the_option_s_context_are_trimmed_and_recorded() -> None:
    untrimmed = sent_tokens(_sent(num_examples=4))
    context = min(untrimmed) + 200 - 50  # every prompt 50 tokens over, at least
    backend = ScriptedBackend()
    samples = generate(backend, num_examples=4, max_model_len=context)
    assert all(tokens <= context - 200 for tokens in sent_tokens(backend))
    for sample in samples:
        assert generation_failure(sample) is None
        record = sample.meta.extra[PROMPT_TRIMMED]
        assert record["steps"][0] == "drop_example"
        assert record["tokens_after"] <= record["budget"] == context - 200
        assert record["tokens_before"] > record["budget"]


def test_the_backend_s_context_wins_over_the_option_and_counting_is_batched() -> None:
    backend = MeasuringBackend(context=100_000)
    samples = generate(backend, num_examples=4, max_model_len=300)
    assert all(PROMPT_TRIMMED not in s.meta.extra for s in samples)
    # Every prompt's upper bound fits 100,000 tokens: none is counted.
    assert backend.counted == []
    bounds = sent_tokens(_sent(num_examples=4))
    backend = MeasuringBackend(context=min(bounds) - 1 + 200)
    generate(backend, num_examples=4)
    assert backend.counted[0] == 8  # one round, every prompt at once


def test_a_prompt_that_cannot_fit_is_not_sent_and_is_rejected_as_prompt_too_long() -> None:
    huge = Tool(
        name="configure",
        description="Sets everything.",
        parameters={
            "type": "object",
            "properties": {f"setting_{n}": {"type": "string"} for n in range(300)},
        },
    )
    backend = MeasuringBackend(context=2048)
    samples = generate(backend, tools=[huge], n=3, num_examples=2)
    assert backend.batches == [] or all(len(batch) == 0 for batch in backend.batches)
    (stage,) = build_stages(["generation"])
    verdicts = stage.verify_batch(samples, StageContext())
    for sample, verdict in zip(samples, verdicts, strict=True):
        assert generation_failure(sample)[0] == PROMPT_TOO_LONG
        assert not sample.steps and sample.tools == [huge]  # the sample keeps the whole tool
        assert (verdict.accepted, verdict.reason) == (False, "prompt_too_long")
        assert "budget of 1848 tokens" in verdict.detail
        assert "tokens after trimming (drop_example" in verdict.detail


def test_instruction_prompts_are_fitted_too() -> None:
    untrimmed = sent_tokens(_sent(num_examples=4, styles={QueryStyle.instruction: 1.0}))
    context = min(untrimmed) + 200 - 20
    backend = ScriptedBackend()
    samples = generate(
        backend, num_examples=4, max_model_len=context, styles={QueryStyle.instruction: 1.0}
    )
    assert all(tokens <= context - 200 for tokens in sent_tokens(backend))
    assert all(s.meta.extra[PROMPT_TRIMMED]["examples_dropped"] >= 1 for s in samples)


def _sent(**options: Any) -> ScriptedBackend:
    backend = ScriptedBackend()
    generate(backend, **options)
    return backend
