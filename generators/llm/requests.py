"""What the LLM generator and the augmenter share: sampling settings, seeds derived from a
request's seed, chat messages from the prompt templates, and the token and time accounting of
the batches they send."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from generators.base import GenerationUsage, ServerUsage
from generators.llm.prompts import PromptSet
from llm.base import LLMBackend, LLMRequest, LLMResult

SEED_RANGE = 2**31
"""Request seeds stay below this: vLLM and OpenAI-compatible servers take 32-bit seeds."""


@dataclass(frozen=True)
class Sampling:
    """How the LLM samples each answer."""

    max_tokens: int
    temperature: float
    top_p: float

    def request(
        self, messages: list[dict[str, str]], schema: dict[str, Any], seed: int
    ) -> LLMRequest:
        """A request for one schema-constrained answer."""
        return LLMRequest(
            messages=messages,
            json_schema=schema,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=seed % SEED_RANGE,
        )


def chat(
    prompts: PromptSet, purpose: str, template: str, variables: Mapping[str, Any]
) -> list[dict[str, str]]:
    """The system message for `purpose` and the user message rendered from `template`."""
    return [
        {"role": "system", "content": prompts.render("system.j2", {"purpose": purpose})},
        {"role": "user", "content": prompts.render(template, variables)},
    ]


def compose_instruction(instruction: str, constraints: Sequence[str]) -> str:
    """The query of an instruction-following sample: the instruction, then its constraints."""
    if not constraints:
        return instruction.strip()
    return f"{instruction.strip()}\n\n{' '.join(constraints)}"


def run_batch(
    backend: LLMBackend, requests: Sequence[LLMRequest], usage: GenerationUsage
) -> list[LLMResult]:
    """Send every request in one `generate` call; count tokens and time into `usage`, in all
    and per server."""
    if not requests:
        return []
    started = time.perf_counter()
    results = backend.generate(list(requests))
    usage.wall_s += time.perf_counter() - started
    if len(results) != len(requests):
        raise RuntimeError(
            f"LLM backend '{backend.name}' returned {len(results)} results for "
            f"{len(requests)} requests"
        )
    usage.requests += len(requests)
    usage.prompt_tokens += sum(result.prompt_tokens for result in results)
    usage.completion_tokens += sum(result.completion_tokens for result in results)
    for result in results:
        if result.server is not None:
            server = usage.servers.setdefault(result.server, ServerUsage())
            server.requests += 1
            server.prompt_tokens += result.prompt_tokens
            server.completion_tokens += result.completion_tokens
    return results
