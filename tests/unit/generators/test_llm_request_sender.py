"""Sending a batch's requests part by part (`generators.llm.requests.RequestSender`) with scripted
backends: a backend that can submit gets each part as soon as it is ready, before the next one is
measured; the others get the whole batch in one call; a failing part cancels the rest."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

import pytest
from llm_scripted_backend import ScriptedBackend, fitting

from generators.base import GenerationRequest, GenerationUsage
from generators.llm.generator import PIPELINE_PART, LlmGenerator
from generators.llm.requests import RequestSender
from llm.base import BackendUnavailable, LLMRequest, LLMResult
from llm.prompt_tokens import Messages, estimate_prompt_tokens
from unified.catalogs import load_catalog
from unified.model import QueryStyle

ROOT = Path(__file__).resolve().parents[3]
TRAVEL = load_catalog(ROOT / "examples" / "travel_api.yaml").tools


class SubmittingBackend(ScriptedBackend):
    """Records, in order, what was submitted and what was counted; futures stay pending until
    `answer()`, so a test sees what happened before any answer came."""

    def __init__(
        self, context: int | None = None, tokens: int | None = None, answer_at_once: bool = False
    ) -> None:
        super().__init__()
        self.context = context
        self.tokens = tokens
        self.answer_at_once = answer_at_once
        self.events: list[tuple[str, int]] = []
        self.pending: list[tuple[list[LLMRequest], Future[list[LLMResult]]]] = []

    def submit(self, requests: Sequence[LLMRequest]) -> Future[list[LLMResult]]:
        self.events.append(("submit", len(requests)))
        future: Future[list[LLMResult]] = Future()
        self.pending.append((list(requests), future))
        if self.answer_at_once:
            self.answer()
        return future

    def answer(self) -> None:
        for requests, future in self.pending:
            if not future.done():
                future.set_result([fitting(r, i) for i, r in enumerate(requests)])

    def context_length(self) -> int | None:
        return self.context

    def count_prompt_tokens(self, prompts: Sequence[Messages]) -> list[int]:
        self.events.append(("count", len(prompts)))
        return [self.tokens or estimate_prompt_tokens(prompt) for prompt in prompts]


ANSWER_SCHEMA = {"type": "object", "properties": {"query": {"type": "string"}}}


def ask(n: int) -> LLMRequest:
    return LLMRequest(
        messages=[{"role": "user", "content": f"q{n}"}], json_schema=ANSWER_SCHEMA, seed=n
    )


def test_parts_go_out_as_they_are_sent_and_come_back_by_key() -> None:
    backend = SubmittingBackend()
    usage = GenerationUsage()
    sender = RequestSender(backend, usage)
    assert sender.pipelined
    sender.send({0: ask(0), 5: ask(5)})
    sender.send({})
    sender.send({9: ask(9)})
    assert backend.events == [("submit", 2), ("submit", 1)]  # before any answer
    backend.answer()
    results = sender.results()
    assert sorted(results) == [0, 5, 9]
    assert usage.requests == 3 and usage.completion_tokens == 60 and usage.wall_s > 0


def test_a_part_that_fails_cancels_the_others_and_raises() -> None:
    backend = SubmittingBackend()
    sender = RequestSender(backend, GenerationUsage())
    sender.send({0: ask(0)})
    sender.send({1: ask(1)})
    backend.pending[0][1].set_exception(BackendUnavailable("the server is gone"))
    with pytest.raises(BackendUnavailable, match="the server is gone"):
        sender.results()
    assert backend.pending[1][1].cancelled()


def test_a_backend_that_cannot_submit_gets_one_generate_call_per_part() -> None:
    backend = ScriptedBackend()
    sender = RequestSender(backend, GenerationUsage())
    assert not sender.pipelined
    sender.send({3: ask(3), 4: ask(4)})
    assert len(backend.batches) == 1
    assert sorted(sender.results()) == [3, 4]


def test_the_generator_sends_each_part_before_measuring_the_next() -> None:
    backend = SubmittingBackend(context=200, tokens=10, answer_at_once=True)
    request = GenerationRequest(
        n=PIPELINE_PART * 2 + 5,
        seed=3,
        styles={QueryStyle.simple: 1.0},
        id_prefix="p-",
        options={"model": "m", "max_tokens": 100},
    )
    samples = LlmGenerator(backend=backend).generate(TRAVEL, request)
    assert len(samples) == PIPELINE_PART * 2 + 5
    # Every prompt's upper bound is over the budget of 100, each measures 10 tokens: measured,
    # then sent, part by part.
    assert backend.events == [
        ("count", PIPELINE_PART),
        ("submit", PIPELINE_PART),
        ("count", PIPELINE_PART),
        ("submit", PIPELINE_PART),
        ("count", 5),
        ("submit", 5),
    ]
