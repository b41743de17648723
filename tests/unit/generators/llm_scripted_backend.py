"""A scripted LLM backend for unit tests of the LLM generator's own logic (prompts, schemas,
parsing, augmentation): it answers each request with a JSON instance of the request's output
schema (multi_turn conversations played so that they follow their blueprints), or with whatever
a test scripts. Tests against real vLLM live in tests/llm/."""

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
    fields, calls whose arguments are sampled from the call's arguments schema, and arrays of
    such objects (a blueprint's turns)."""
    return _object(schema, SchemaSampler(schema), rng)


def _object(schema: dict[str, Any], sampler: SchemaSampler, rng: random.Random) -> dict[str, Any]:
    answer: dict[str, Any] = {}
    for key, sub in schema["properties"].items():
        if key == "calls":
            answer[key] = _calls(sub, sampler, rng)
        elif sub.get("type") == "array":
            count = rng.randint(sub["minItems"], sub["maxItems"])
            answer[key] = [_object(sub["items"], sampler, rng) for _ in range(count)]
        else:
            answer[key] = f"{key} text {rng.randint(0, 999)}"
    return answer


def _calls(schema: dict[str, Any], sampler: SchemaSampler, rng: random.Random) -> list[Any]:
    count = rng.randint(schema["minItems"], schema["maxItems"])
    items = schema.get("items", {})
    branches = items.get("anyOf") or [items]
    calls = []
    for _ in range(count):
        branch = rng.choice(branches)["properties"]
        arguments = sampler.value(branch["arguments"], "arguments", Fakes(rng), 1, 0)
        calls.append({"name": branch["name"]["const"], "arguments": arguments})
    return calls


def fitting(request: LLMRequest, index: int) -> LLMResult:
    """A schema-fitting answer, drawn from the request's seed."""
    assert request.json_schema is not None
    text = json.dumps(answer_for(request.json_schema, random.Random(request.seed)))
    return LLMResult(text=text, finish_reason="stop", prompt_tokens=100, completion_tokens=20)


class Following:
    """A scripted LLM that plays multi_turn conversations by the book, and answers every other
    request as `fitting` does: each blueprint turn's request is a text of its own, the simulated
    user says the request it is given as it is, and the assistant makes exactly the calls the
    blueprint has for the request it hears (none for one it does not know)."""

    def __init__(self) -> None:
        self.calls_by_request: dict[str, list[dict[str, Any]]] = {}

    def __call__(self, request: LLMRequest, index: int) -> LLMResult:
        schema = request.json_schema
        assert schema is not None
        fields = set(schema["properties"])
        text = user_text(request)
        if fields == {"intent", "turns", "outcome"}:
            answer = answer_for(schema, random.Random(request.seed))
            for number, turn in enumerate(answer["turns"], 1):
                turn["request"] = f"please do part {number} of plan {request.seed}"
                self.calls_by_request[turn["request"]] = turn["calls"]
            return _answer(answer)
        if fields == {"message"}:
            return _answer({"message": _line_after("ask only for this part of your goal: ", text)})
        if fields == {"calls"}:
            heard = _line_after("The user now says: ", text)
            return _answer({"calls": self.calls_by_request.get(heard, [])})
        return fitting(request, index)


def _line_after(marker: str, text: str) -> str:
    return text.split(marker, 1)[1].split("\n", 1)[0]


def _answer(value: dict[str, Any]) -> LLMResult:
    text = json.dumps(value)
    return LLMResult(text=text, finish_reason="stop", prompt_tokens=100, completion_tokens=20)


class ScriptedBackend:
    """Answers every request with `reply(request, index in batch)` (by default a `Following`
    of its own); records each batch."""

    name = "scripted"

    def __init__(self, reply: Reply | None = None) -> None:
        self.reply = reply or Following()
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
