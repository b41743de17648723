"""Prompt tokens counted in the worker against vLLM's real server: the counts equal the server's
own (`/tokenize` and the `prompt_tokens` it reports), with one `/tokenize` call per backend for
the check; a prompt right at the budget is answered, one token more is judged not to fit, and the
server refuses one over the context; a tokenizer that is not the model's is caught by the check."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llm_fixtures import MAX_MODEL_LEN, VllmServer
from smollm2_model import MODEL

from generators.llm.prompt_budget import Budget, PromptDraft, fit_prompts
from llm.base import BackendConfig, LLMRequest
from llm.local_tokens import ChatTokenizer
from llm.openai_server import OpenAIServerBackend
from llm.prompt_tokens import Messages
from llm.server_tokens import ServerPromptMeasure
from unified.catalogs import load_catalog

pytestmark = [pytest.mark.slow, pytest.mark.llm]

ROOT = Path(__file__).resolve().parents[2]
TRAVEL = load_catalog(ROOT / "examples" / "travel_api.yaml").tools
MAX_TOKENS = 48
BUDGET = MAX_MODEL_LEN - MAX_TOKENS


def varied_prompts() -> list[Messages]:
    """Prompts like the generator's (tool schemas as JSON, few-shot turns) and awkward text."""
    tools = [tool.model_dump(mode="json", exclude_none=True) for tool in TRAVEL]
    prompts: list[Messages] = []
    for size in (1, 3, len(tools)):
        system = "You write function calls.\n" + json.dumps(tools[:size], indent=2)
        prompts.append(
            [
                {"role": "system", "content": system},
                {"role": "user", "content": "Book a room in Zürich for 2 nights, 🛏️ please."},
                {"role": "assistant", "content": '[{"name": "search_hotels", "arguments": {}}]'},
                {"role": "user", "content": "Then fly São Paulo → 東京, 3 adults\t\n\n  ok?"},
            ]
        )
    prompts.append([{"role": "user", "content": "<|im_start|>user <s></s><|assistant|>{{x}}"}])
    return prompts


@pytest.fixture
def tokenize_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many prompts the backends asked a server to count (the real calls still go out)."""
    calls: list[int] = []
    exact_count = ServerPromptMeasure.exact_count

    async def counted(self: ServerPromptMeasure, *args: Any) -> int | None:
        calls.append(1)
        return await exact_count(self, *args)

    monkeypatch.setattr(ServerPromptMeasure, "exact_count", counted)
    return calls


def backend(base_url: str, model: str, **more: Any) -> Iterator[OpenAIServerBackend]:
    server = OpenAIServerBackend(
        BackendConfig(backend="openai", model=model, base_url=base_url, **more)
    )
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def tiny_backend(vllm_server: str, tiny_model_dir: Path) -> Iterator[OpenAIServerBackend]:
    yield from backend(vllm_server, str(tiny_model_dir))


@pytest.fixture
def smollm2_backend(smollm2_server: VllmServer, smollm2_dir: Path) -> Iterator[OpenAIServerBackend]:
    yield from backend(smollm2_server.base_url, MODEL.served_name, tokenizer=str(smollm2_dir))


def server_counts(server: OpenAIServerBackend, prompts: list[Messages]) -> list[int | None]:
    return [server._server_count(prompt) for prompt in prompts]


def test_local_counts_equal_the_servers_with_one_check(
    tiny_backend: OpenAIServerBackend, tokenize_calls: list[int]
) -> None:
    prompts = varied_prompts()
    counts = tiny_backend.count_prompt_tokens(prompts)
    assert tiny_backend.count_prompt_tokens(prompts) == counts
    assert len(tokenize_calls) == 1
    assert counts == server_counts(tiny_backend, prompts)


def test_smollm2_served_by_name_counts_with_its_tokenizer_folder(
    smollm2_backend: OpenAIServerBackend, tokenize_calls: list[int]
) -> None:
    prompts = varied_prompts()
    counts = smollm2_backend.count_prompt_tokens(prompts)
    smollm2_backend.count_prompt_tokens(prompts)
    assert len(tokenize_calls) == 1
    assert counts == server_counts(smollm2_backend, prompts)


def prompt_of(tokens: int, tokenizer: ChatTokenizer) -> Messages:
    """A chat prompt of exactly `tokens` tokens under `tokenizer`."""
    system = {"role": "system", "content": "Answer in one short sentence."}
    filler = 0
    for _ in range(20):
        prompt = [system, {"role": "user", "content": "Say hi." + " x" * filler}]
        count = tokenizer.count([prompt])[0]
        assert count is not None
        if count == tokens:
            return prompt
        filler += tokens - count
    raise AssertionError(f"no prompt of {tokens} tokens")


def test_a_prompt_right_at_the_budget_is_answered_and_one_more_token_does_not_fit(
    smollm2_backend: OpenAIServerBackend, smollm2_dir: Path
) -> None:
    tokenizer = ChatTokenizer.load(smollm2_dir)
    at_budget, over_budget, over_context = (
        prompt_of(tokens, tokenizer) for tokens in (BUDGET, BUDGET + 1, MAX_MODEL_LEN + 1)
    )
    assert smollm2_backend.context_length() == MAX_MODEL_LEN
    fitted = fit_prompts(
        [PromptDraft({}, lambda _, p=p: p) for p in (at_budget, over_budget)],
        smollm2_backend.count_prompt_tokens,
        Budget(MAX_MODEL_LEN, MAX_TOKENS),
    )
    assert [(f.tokens, f.messages is not None) for f in fitted] == [
        (BUDGET, True),
        (BUDGET + 1, False),  # judged too long: never sent
    ]
    answered, refused = smollm2_backend.generate(
        [
            LLMRequest(messages=at_budget, max_tokens=MAX_TOKENS, temperature=0),
            LLMRequest(messages=over_context, max_tokens=MAX_TOKENS, temperature=0),
        ]
    )
    assert answered.finish_reason in ("stop", "length"), answered.error
    assert answered.prompt_tokens == BUDGET  # the server's own count of what it was sent
    assert refused.finish_reason == "error" and "HTTP 400" in str(refused.error)


def test_a_tokenizer_that_is_not_the_models_is_caught_by_the_check(
    vllm_server: str,
    tiny_model_dir: Path,
    smollm2_dir: Path,
    tokenize_calls: list[int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    prompts = varied_prompts()
    for wrong in backend(vllm_server, str(tiny_model_dir), tokenizer=str(smollm2_dir)):
        assert wrong.count_prompt_tokens(prompts) == server_counts(wrong, prompts)
    assert "the server counts prompt tokens from now on" in caplog.text
    assert len(tokenize_calls) == 1 + 2 * len(prompts)
