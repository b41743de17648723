"""Few-shot examples for the generation prompts: earlier accepted samples of the same catalog
(given by the caller) first, topped up from the bundled seed examples of the same style. A
multi_turn example is a blueprint (`generators.llm.blueprint`)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from generators.errors import GenerationError
from generators.llm.prompts import SeedExamples
from unified.formats.base import infer_style
from unified.model import QueryStyle, Sample


def read_examples(
    rows: Sequence[dict[str, Any] | Sample],
) -> dict[QueryStyle, list[dict[str, Any]]]:
    """Unified samples (objects or their JSON dicts) as template examples, by query style."""
    by_style: dict[QueryStyle, list[dict[str, Any]]] = {}
    for number, row in enumerate(rows):
        try:
            sample = row if isinstance(row, Sample) else Sample.model_validate(row)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise GenerationError(
                f"llm generator: option 'examples' item {number}: {where}: {first['msg']}; "
                "give unified samples (as the unified export writes them)"
            ) from None
        style, example = _example(sample)
        by_style.setdefault(style, []).append(example)
    return by_style


def _example(sample: Sample) -> tuple[QueryStyle, dict[str, Any]]:
    calls = sample.tool_calls()
    style = sample.meta.style or infer_style(calls, len(sample.tools))
    if style is QueryStyle.multi_turn or sample.is_multi_turn():
        return QueryStyle.multi_turn, _blueprint_example(sample)
    if style is QueryStyle.instruction:
        constraints = sample.meta.extra.get("constraints") or []
        return style, {
            "instruction": sample.meta.extra.get("instruction") or sample.query,
            "constraints": [c.get("text", "") for c in constraints if isinstance(c, dict)],
            "response": sample.final_answer() or "",
        }
    tools = [{"name": tool.name, "description": tool.description} for tool in sample.tools]
    call_dicts = [{"name": call.name, "arguments": call.arguments} for call in calls]
    example = {"tools": tools, "query": sample.query, "calls": call_dicts}
    answer = sample.final_answer()
    if not calls and answer is not None:
        example["answer"] = answer
    return style, with_output(example)


def _blueprint_example(sample: Sample) -> dict[str, Any]:
    """A multi-turn sample as a blueprint example: its own blueprint where it keeps one, else
    one read off its turns (each user message as the request, the turn's calls)."""
    tools = [{"name": tool.name, "description": tool.description} for tool in sample.tools]
    kept = sample.meta.extra.get("blueprint")
    if isinstance(kept, dict):
        blueprint = {key: kept.get(key) for key in ("intent", "turns", "outcome")}
        blueprint["turns"] = [
            {"request": turn.get("request"), "calls": turn.get("calls")}
            for turn in kept.get("turns") or []
            if isinstance(turn, dict)
        ]
    else:
        turns = [
            {
                "request": turn.query,
                "calls": [
                    {"name": call.name, "arguments": call.arguments}
                    for step in turn.steps
                    for call in step.tool_calls
                ],
            }
            for turn in sample.conversation()
        ]
        blueprint = {
            "intent": " ".join(turn.query for turn in sample.conversation()),
            "turns": [turn for turn in turns if turn["calls"]],
            "outcome": sample.final_answer() or "",
        }
    return {"tools": tools, **blueprint, "output": blueprint}


def blueprint_output(example: dict[str, Any]) -> dict[str, Any]:
    """A seed blueprint example with `output`: the blueprint the model should answer for it."""
    output = {key: example[key] for key in ("intent", "turns", "outcome")}
    return {**example, "output": output}


def with_output(example: dict[str, Any]) -> dict[str, Any]:
    """The example with `output`: the JSON object the model should answer for it."""
    output: dict[str, Any] = {"query": example["query"], "calls": example.get("calls", [])}
    if "answer" in example:
        output["answer"] = example["answer"]
    return {**example, "output": output}


def choose_examples(
    style: QueryStyle,
    count: int,
    given: dict[QueryStyle, list[dict[str, Any]]],
    seeds: SeedExamples,
    rng: random.Random,
) -> list[dict[str, Any]]:
    """`count` examples of `style`: the caller's first, then seed examples."""
    if count <= 0:
        return []
    own = given.get(style, [])
    chosen = rng.sample(own, min(count, len(own)))
    if len(chosen) < count:
        seed = seeds.for_style(style)
        if style is QueryStyle.multi_turn:
            seed = [blueprint_output(example) for example in seed]
        elif style is not QueryStyle.instruction:
            seed = [with_output(example) for example in seed]
        chosen += rng.sample(seed, min(count - len(chosen), len(seed)))
    return chosen
