"""What the LLM generator and the augmenter share: sampling settings, seeds derived from a
request's seed, chat messages from the prompt templates, and the token and time accounting of
the batches they send."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from generators.base import GenerationUsage, ServerUsage
from generators.llm.prompt_budget import Budget, FittedPrompt, PromptDraft, fit_prompts
from generators.llm.prompts import PromptSet
from llm.base import LLMBackend, LLMRequest, LLMResult, SubmittingBackend
from llm.prompt_tokens import PromptMeter

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


def fit_drafts(
    drafts: Sequence[PromptDraft], backend: LLMBackend, max_model_len: int | None, max_tokens: int
) -> list[FittedPrompt] | None:
    """The prompts fitted to the model's context with room for `max_tokens`, or None where its
    length is not known (the prompts go out as rendered)."""
    meter = PromptMeter(backend, max_model_len)
    context_length = meter.context_length()
    if context_length is None or not drafts:
        return None
    return fit_prompts(drafts, meter.count, Budget(context_length, max_tokens))


def rendered(
    drafts: Sequence[PromptDraft], fitted: list[FittedPrompt] | None
) -> list[list[dict[str, str]] | None]:
    """What each draft sends: as rendered where nothing was fitted, else its fitted messages
    (None for a prompt that cannot fit)."""
    if fitted is None:
        return [draft.render(draft.variables) for draft in drafts]
    return [prompt.messages for prompt in fitted]


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
    _count(backend, requests, results, usage)
    return results


class RequestSender:
    """Sends a batch's requests part by part as they are ready, and gathers the answers.

    With a backend that can `submit` (the server backend), each part goes out at once and the
    caller prepares the next one (measures its prompts) while the server answers: no part waits
    for the whole batch to be ready. Other backends get one `generate` call per part, so their
    callers send the whole batch as one part (`pipelined` tells which)."""

    def __init__(self, backend: LLMBackend, usage: GenerationUsage) -> None:
        self._backend = backend
        self._usage = usage
        self._parts: list[tuple[list[int], list[LLMRequest], Future[list[LLMResult]]]] = []
        self._started: float | None = None

    @property
    def pipelined(self) -> bool:
        """Whether parts go out while the caller prepares the next one."""
        return isinstance(self._backend, SubmittingBackend)

    def send(self, requests: Mapping[int, LLMRequest]) -> None:
        """Send a part: requests by the caller's key."""
        if not requests:
            return
        if self._started is None:
            self._started = time.perf_counter()
        listed = list(requests.values())
        if isinstance(self._backend, SubmittingBackend):
            future = self._backend.submit(listed)
        else:
            future = Future()
            future.set_result(self._backend.generate(listed))
        self._parts.append((list(requests), listed, future))

    def results(self) -> dict[int, LLMResult]:
        """Every part's answers by key, once all are in; tokens and time go to the usage. The
        first part that fails cancels the others and raises its error."""
        answered: dict[int, LLMResult] = {}
        try:
            for keys, requests, future in self._parts:
                results = future.result()
                _count(self._backend, requests, results, self._usage)
                answered.update(zip(keys, results, strict=True))
        except BaseException:
            for *_, future in self._parts:
                future.cancel()
            raise
        if self._started is not None:
            self._usage.wall_s += time.perf_counter() - self._started
        return answered


def _count(
    backend: LLMBackend,
    requests: Sequence[LLMRequest],
    results: Sequence[LLMResult],
    usage: GenerationUsage,
) -> None:
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
