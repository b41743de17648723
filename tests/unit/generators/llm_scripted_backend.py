"""A scripted LLM backend for unit tests of the LLM generator's own logic (prompts, schemas,
parsing, augmentation): it answers each request with a JSON instance of the request's output
schema, or with whatever a test scripts. Tests against real vLLM live in tests/llm/."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from typing import Any

from llm.base import LLMRequest, LLMResult
from unified.values.fakes import Fakes
from unified.values.schema_values import SchemaSampler

Reply = Callable[[LLMRequest, int], LLMResult]


def answer_for(schema: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A JSON object that fits one of the generator's output schemas: texts for the text
    fields, and calls whose arguments are sampled from the call's arguments schema."""
    sampler = SchemaSampler(schema)
    answer: dict[str, Any] = {}
    for key, sub in schema["properties"].items():
        if key != "calls":
            answer[key] = f"{key} text {rng.randint(0, 999)}"
            continue
        count = rng.randint(sub["minItems"], sub["maxItems"])
        items = sub.get("items", {})
        branches = items.get("anyOf") or [items]
        calls = []
        for _ in range(count):
            branch = rng.choice(branches)["properties"]
            arguments = sampler.value(branch["arguments"], "arguments", Fakes(rng), 1, 0)
            calls.append({"name": branch["name"]["const"], "arguments": arguments})
        answer["calls"] = calls
    return answer


def fitting(request: LLMRequest, index: int) -> LLMResult:
    """A schema-fitting answer, drawn from the request's seed."""
    assert request.json_schema is not None
    text = json.dumps(answer_for(request.json_schema, random.Random(request.seed)))
    return LLMResult(text=text, finish_reason="stop", prompt_tokens=100, completion_tokens=20)


class ScriptedBackend:
    """Answers every request with `reply(request, index in batch)`; records each batch."""

    name = "scripted"

    def __init__(self, reply: Reply = fitting) -> None:
        self.reply = reply
        self.batches: list[list[LLMRequest]] = []
        self.closed = False

    def generate(self, requests: Sequence[LLMRequest]) -> list[LLMResult]:
        self.batches.append(list(requests))
        return [self.reply(request, index) for index, request in enumerate(requests)]

    def close(self) -> None:
        self.closed = True


def user_text(request: LLMRequest) -> str:
    """The user message of a request."""
    return request.messages[-1]["content"]
