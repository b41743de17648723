"""Prompts fitted to the model's context: each prompt must leave room for `max_tokens`.

A prompt over its budget is trimmed one step at a time and measured again after each step:
first its few-shot examples are dropped, the last one first; then the tools' parameter
descriptions are shortened to their first sentence, then left out; then the tools' own
descriptions, the same way. The parameter schemas themselves (types, enums, required) are never
cut, so the answer's constraints still match what the prompt shows. A prompt still over budget
after the last step is not sent (the generator marks its sample `prompt_too_long`).

Measuring is one `count` call per round for every prompt still over budget, so a backend can
tokenize a round concurrently; most prompts fit at once and cost one measurement. A prompt whose
upper bound (`llm.prompt_tokens.estimate_prompt_tokens`: a token per byte) already fits is not
measured at all: with a long context, a batch asks the server for no token counts. A trimming
step whose result its last measurement (tokens per byte) predicts to be still far over budget is
not measured either: the next step is taken at once. The step a prompt stops at is always
measured.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from generators.llm.description_trim import with_parameter_descriptions, with_tool_description
from llm.prompt_tokens import estimate_prompt_tokens

Messages = list[dict[str, str]]
Render = Callable[[Mapping[str, Any]], Messages]
Count = Callable[[Sequence[Messages]], list[int]]

SURELY_OVER = 1.1
"""A trimmed prompt predicted (from its last measurement's tokens per byte) to take more than
this times its budget is trimmed further without being measured."""
TOOL_VARIABLES = ("tools", "left_out", "domain")
"""Template variables holding tools ({name, description, parameters}): a list or one or None."""

DROP_EXAMPLE = "drop_example"
SHORTEN_PARAMETER_DESCRIPTIONS = "shorten_parameter_descriptions"
REMOVE_PARAMETER_DESCRIPTIONS = "remove_parameter_descriptions"
SHORTEN_TOOL_DESCRIPTIONS = "shorten_tool_descriptions"
REMOVE_TOOL_DESCRIPTIONS = "remove_tool_descriptions"


@dataclass(frozen=True)
class Budget:
    """How many tokens a prompt may take: the model's context less the answer's max_tokens."""

    context_length: int
    max_tokens: int

    @property
    def tokens(self) -> int:
        """The most tokens a prompt may take."""
        return self.context_length - self.max_tokens


@dataclass(frozen=True)
class PromptDraft:
    """A prompt before fitting: its template variables and how to render them."""

    variables: Mapping[str, Any]
    render: Render


@dataclass
class FittedPrompt:
    """A prompt after fitting: the messages to send (None when it cannot fit), its tokens, the
    trimming steps taken in order, and its tokens before any."""

    messages: Messages | None
    tokens: int
    untrimmed_tokens: int
    budget: Budget
    steps: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any] | None:
        """What a sample records of its prompt's trimming (`meta.extra["prompt_trimmed"]`), or
        None when nothing was trimmed."""
        if not self.steps:
            return None
        return {
            "steps": list(self.steps),
            "examples_dropped": self.steps.count(DROP_EXAMPLE),
            "tokens_before": self.untrimmed_tokens,
            "tokens_after": self.tokens,
            "budget": self.budget.tokens,
        }

    def too_long_detail(self) -> str:
        """Why the prompt was not sent."""
        trimmed = f" after trimming ({', '.join(dict.fromkeys(self.steps))})" if self.steps else ""
        return (
            f"the prompt takes {self.tokens} tokens{trimmed}, over its budget of "
            f"{self.budget.tokens} tokens (the model's context of {self.budget.context_length} "
            f"less max_tokens={self.budget.max_tokens}); offer fewer or smaller tools, lower "
            "max_tokens, or use a model with a longer context"
        )


def trimmed_variants(variables: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The variables trimmed one step further each time, with the step's name; a step that
    would change nothing is skipped."""
    current = dict(variables)
    examples = list(current.get("examples") or [])
    while examples:
        examples.pop()
        current = {**current, "examples": list(examples)}
        yield DROP_EXAMPLE, current
    tool_steps = (
        (SHORTEN_PARAMETER_DESCRIPTIONS, with_parameter_descriptions, True),
        (REMOVE_PARAMETER_DESCRIPTIONS, with_parameter_descriptions, False),
        (SHORTEN_TOOL_DESCRIPTIONS, with_tool_description, True),
        (REMOVE_TOOL_DESCRIPTIONS, with_tool_description, False),
    )
    for name, change, shorten in tool_steps:
        changed = _with_tools(current, partial(change, shorten=shorten))
        if changed != current:
            current = changed
            yield name, current


def _with_tools(
    variables: dict[str, Any], change: Callable[[dict[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    changed = dict(variables)
    for name in TOOL_VARIABLES:
        value = variables.get(name)
        if isinstance(value, list):
            changed[name] = [change(tool) for tool in value]
        elif isinstance(value, dict):
            changed[name] = change(value)
    return changed


def fit_prompts(drafts: Sequence[PromptDraft], count: Count, budget: Budget) -> list[FittedPrompt]:
    """Each draft fitted to `budget`, in order: measured with `count` (one call per round for
    all prompts still over budget; none for a prompt whose upper bound fits) and trimmed step by
    step until it fits or cannot be trimmed further."""
    messages = [draft.render(draft.variables) for draft in drafts]
    tokens = [estimate_prompt_tokens(m) for m in messages]  # upper bounds
    unsure = [index for index, bound in enumerate(tokens) if bound > budget.tokens]
    measured = count([messages[index] for index in unsure]) if unsure else []
    for index, exact in zip(unsure, measured, strict=True):
        tokens[index] = exact
    fitted = [
        FittedPrompt(messages=m, tokens=t, untrimmed_tokens=t, budget=budget)
        for m, t in zip(messages, tokens, strict=True)
    ]
    variants = {index: trimmed_variants(draft.variables) for index, draft in enumerate(drafts)}
    # Tokens per byte of bound, from each prompt's last measurement: predicts its next steps.
    ratios = [
        prompt.tokens / max(1, estimate_prompt_tokens(prompt.messages or [])) for prompt in fitted
    ]
    over = [index for index, prompt in enumerate(fitted) if prompt.tokens > budget.tokens]
    while over:
        trimmed = []
        for index in over:
            if _trim(fitted[index], drafts[index], variants[index], ratios[index]):
                trimmed.append(index)
            else:
                fitted[index].messages = None  # trimmed as far as it goes: never sent
        counts = count([_messages(fitted[index]) for index in trimmed]) if trimmed else []
        for index, tokens_now in zip(trimmed, counts, strict=True):
            fitted[index].tokens = tokens_now
            ratios[index] = tokens_now / max(1, estimate_prompt_tokens(_messages(fitted[index])))
        over = [index for index in trimmed if fitted[index].tokens > budget.tokens]
    return fitted


def _trim(
    prompt: FittedPrompt,
    draft: PromptDraft,
    variants: Iterator[tuple[str, dict[str, Any]]],
    ratio: float,
) -> bool:
    """Take the next trimming step, and the ones after it while the prompt's tokens per byte
    predict it is still far over budget (those are not measured); False when no step is left.
    The step it stops at is measured, so a prompt only ever fits by measurement."""
    step = next(variants, None)
    if step is None:
        return False
    while True:
        prompt.steps.append(step[0])
        prompt.messages = draft.render(step[1])
        predicted = ratio * estimate_prompt_tokens(prompt.messages)
        if predicted <= SURELY_OVER * prompt.budget.tokens:
            return True
        following = next(variants, None)
        if following is None:
            return True
        step = following


def _messages(prompt: FittedPrompt) -> Messages:
    assert prompt.messages is not None
    return prompt.messages
