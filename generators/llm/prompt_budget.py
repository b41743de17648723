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
measured at all: with a long context, a batch asks the server for no token counts.
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
    over = [index for index, prompt in enumerate(fitted) if prompt.tokens > budget.tokens]
    while over:
        trimmed = []
        for index in over:
            step = next(variants[index], None)
            if step is None:
                fitted[index].messages = None  # trimmed as far as it goes: never sent
                continue
            fitted[index].steps.append(step[0])
            fitted[index].messages = drafts[index].render(step[1])
            trimmed.append(index)
        counts = count([_messages(fitted[index]) for index in trimmed]) if trimmed else []
        for index, tokens_now in zip(trimmed, counts, strict=True):
            fitted[index].tokens = tokens_now
        over = [index for index in trimmed if fitted[index].tokens > budget.tokens]
    return fitted


def _messages(prompt: FittedPrompt) -> Messages:
    assert prompt.messages is not None
    return prompt.messages
