"""Fitting prompts to a token budget, with a fake token counter (one token per character of the
rendered variables): the trimming order, a measurement after each step that may fit (steps its
last measurement predicts far over are taken unmeasured) and only of the prompts still over
budget, none where the upper bound fits, parameter schemas kept intact, and prompts that cannot
fit."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from generators.llm.description_trim import schema_descriptions, short_text
from generators.llm.prompt_budget import (
    DROP_EXAMPLE,
    REMOVE_PARAMETER_DESCRIPTIONS,
    REMOVE_TOOL_DESCRIPTIONS,
    SHORTEN_PARAMETER_DESCRIPTIONS,
    SHORTEN_TOOL_DESCRIPTIONS,
    Budget,
    PromptDraft,
    fit_prompts,
    trimmed_variants,
)
from llm.prompt_tokens import estimate_prompt_tokens

LONG = "Finds what you ask for. " + "It says so at length, word after word. " * 6
TOOL = {
    "name": "search_flights",
    "description": LONG,
    "parameters": {
        "type": "object",
        "properties": {
            "origin": {"type": "string", "pattern": "^[A-Z]{3}$", "description": LONG},
            "cabin": {"type": "string", "enum": ["economy", "business"], "description": LONG},
            "description": {"type": "string", "description": LONG},
            "legs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"date": {"type": "string", "description": LONG}},
                },
            },
        },
        "required": ["origin"],
    },
}
EXAMPLES = [{"query": f"example {n} " + "x" * 200} for n in range(3)]


def render(variables: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{"role": "user", "content": json.dumps(dict(variables), sort_keys=True)}]


class Counter:
    """One token per character; records every call's prompts."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, prompts: Sequence[list[dict[str, str]]]) -> list[int]:
        self.calls.append([prompt[0]["content"] for prompt in prompts])
        return [len(prompt[0]["content"]) for prompt in prompts]


def draft(examples: list[dict[str, Any]] | None = None, tools: Any = None) -> PromptDraft:
    variables = {"examples": EXAMPLES if examples is None else examples, "tools": [TOOL]}
    if tools is not None:
        variables["tools"] = tools
    return PromptDraft(variables, render)


def size(variables: Mapping[str, Any]) -> int:
    return len(render(variables)[0]["content"])


def test_a_prompt_within_budget_is_measured_once_and_left_as_it_is() -> None:
    counter = Counter()
    prompt = draft()
    # Over its upper bound (a token per byte, plus the chat template's allowance), under the
    # budget: measured.
    budget = Budget(estimate_prompt_tokens(render(prompt.variables)) - 1 + 1000, 1000)
    (fitted,) = fit_prompts([prompt], counter, budget)
    assert fitted.messages == render(prompt.variables)
    assert fitted.steps == [] and fitted.record() is None
    assert len(counter.calls) == 1


def test_a_prompt_whose_upper_bound_fits_is_not_measured() -> None:
    counter = Counter()
    prompts = [draft(), draft(examples=[])]
    bound = estimate_prompt_tokens(render(prompts[0].variables))
    fitted = fit_prompts(prompts, counter, Budget(bound + 1000, 1000))
    assert [f.messages for f in fitted] == [render(p.variables) for p in prompts]
    assert counter.calls == []
    # Only the one whose bound is over the budget is measured.
    fit_prompts(prompts, counter, Budget(bound - 1 + 1000, 1000))
    assert [len(call) for call in counter.calls] == [1]


def test_examples_go_first_the_last_one_first_one_at_a_time() -> None:
    prompt = draft()
    without_two = {**prompt.variables, "examples": EXAMPLES[:1]}
    counter = Counter()
    (fitted,) = fit_prompts([prompt], counter, Budget(size(without_two) + 10, 10))
    assert fitted.steps == [DROP_EXAMPLE, DROP_EXAMPLE]
    assert fitted.messages == render(without_two)
    # Measured before, and at the step it stops at: after the first drop its tokens per byte
    # predicted it still more than 10% over (2,217 tokens against 1,989), so it was not measured.
    assert len(counter.calls) == 2
    assert fitted.record() == {
        "steps": [DROP_EXAMPLE, DROP_EXAMPLE],
        "examples_dropped": 2,
        "tokens_before": size(prompt.variables),
        "tokens_after": size(without_two),
        "budget": size(without_two),
    }


def test_the_trimming_order_after_the_examples() -> None:
    steps = [name for name, _ in trimmed_variants(draft().variables)]
    assert steps == [
        DROP_EXAMPLE,
        DROP_EXAMPLE,
        DROP_EXAMPLE,
        SHORTEN_PARAMETER_DESCRIPTIONS,
        REMOVE_PARAMETER_DESCRIPTIONS,
        SHORTEN_TOOL_DESCRIPTIONS,
        REMOVE_TOOL_DESCRIPTIONS,
    ]
    sizes = [size(variables) for _, variables in trimmed_variants(draft().variables)]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == len(sizes)


def test_each_step_is_taken_only_when_the_one_before_was_not_enough() -> None:
    variants = dict(
        (name, variables)
        for name, variables in trimmed_variants(draft(examples=[]).variables)
        if name != DROP_EXAMPLE
    )
    shortened = variants[SHORTEN_PARAMETER_DESCRIPTIONS]
    (fitted,) = fit_prompts([draft(examples=[])], Counter(), Budget(size(shortened), 0))
    assert fitted.steps == [SHORTEN_PARAMETER_DESCRIPTIONS]
    tool = shortened["tools"][0]
    assert tool["description"] == LONG  # the tool's own description is still whole
    assert tool["parameters"]["properties"]["origin"]["description"] == "Finds what you ask for."


def test_descriptions_go_but_the_parameter_schema_stays_intact() -> None:
    *_, (last, variables) = trimmed_variants(draft().variables)
    assert last == REMOVE_TOOL_DESCRIPTIONS
    (tool,) = variables["tools"]
    assert tool["description"] == ""
    parameters = tool["parameters"]
    assert parameters["required"] == ["origin"]
    assert parameters["properties"]["origin"] == {"type": "string", "pattern": "^[A-Z]{3}$"}
    assert parameters["properties"]["cabin"] == {"type": "string", "enum": ["economy", "business"]}
    # a parameter that is named "description" is a parameter, not a description
    assert parameters["properties"]["description"] == {"type": "string"}
    assert parameters["properties"]["legs"]["items"]["properties"]["date"] == {"type": "string"}
    assert TOOL["parameters"]["properties"]["origin"]["description"] == LONG  # not changed


def test_steps_that_change_nothing_are_skipped() -> None:
    bare = {"name": "ping", "description": "", "parameters": {"type": "object"}}
    assert list(trimmed_variants({"examples": [], "tools": [bare]})) == []


def test_a_prompt_that_cannot_fit_is_not_sent_and_says_why() -> None:
    counter = Counter()
    (fitted,) = fit_prompts([draft()], counter, Budget(200, 50))
    assert fitted.messages is None
    assert fitted.steps[-1] == REMOVE_TOOL_DESCRIPTIONS
    # Measured before and after the last step: every step between was predicted far over.
    assert len(counter.calls) == 2 and len(fitted.steps) == 7
    detail = fitted.too_long_detail()
    assert f"takes {fitted.tokens} tokens" in detail
    assert "budget of 150 tokens" in detail and "context of 200" in detail
    assert "max_tokens=50" in detail


def test_each_round_measures_only_the_prompts_still_over_budget_together() -> None:
    small = draft(examples=[], tools=[{"name": "ping", "description": "", "parameters": {}}])
    big = draft()
    counter = Counter()
    without_one = {**big.variables, "examples": EXAMPLES[:2]}
    fitted = fit_prompts([small, big, big], counter, Budget(size(without_one), 0))
    # The small one's upper bound fits: it is never measured.
    assert [len(call) for call in counter.calls] == [2, 2]
    assert [prompt.steps for prompt in fitted] == [[], [DROP_EXAMPLE], [DROP_EXAMPLE]]


def test_tools_in_other_variables_are_trimmed_too() -> None:
    variables = {"examples": [], "tools": [], "left_out": TOOL, "domain": None}
    *_, (_, trimmed) = trimmed_variants(variables)
    assert trimmed["left_out"]["description"] == "" and trimmed["domain"] is None


def test_short_text_keeps_the_first_sentence_within_its_limit() -> None:
    assert short_text("Books a room. Pays later.") == "Books a room."
    assert len(short_text("word " * 100)) == 80 and short_text("word " * 100).endswith("...")
    assert schema_descriptions({"type": "string", "description": "  "}, True) == {"type": "string"}
