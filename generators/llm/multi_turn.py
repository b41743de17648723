"""The multi_turn style's conversations (APIGen-MT): a simulated user and the assistant talk,
seeded with a validated blueprint, until the blueprint's calls are made or the turn limit.

The generator asks for each blueprint with the batch's other requests and validates it on the
mock API (`generators.llm.blueprint`); each good one becomes a `Talk` here. The talks go
forward together, one step a round (`generators.llm.dialogue`: user message, calls, answer):
every round's requests, one per talk still going, are fitted to the model's context and sent in
one `generate` call, so the backend answers all conversations of a batch concurrently.

The sample is the conversation in format 1.1: the first turn in `query` and `steps`, the others
in `turns`; every call carries its mock result. `meta.extra` keeps:
- `blueprint`: the blueprint (`{"intent", "turns": [{"request", "calls", "results"}],
  "outcome"}`, the results those of its validation run);
- `dialogue`: `{"turns", "max_turns", "end", "requests"}`, `end` one of `completed`,
  `diverged`, `turn_limit`, `failed` (`generators.llm.dialogue.End`);
- `prompt_tokens` and `completion_tokens` summed over the sample's requests, the blueprint's
  included.
A conversation that does not follow its blueprint is kept, marked as the failed generation
`blueprint_not_followed` with the first difference as its detail (the `generation` stage
rejects it with that reason); one whose request fails is marked as that failure (`truncated`,
`unparseable`, ...), with the conversation so far.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from generators.base import GenerationUsage, derived_seed
from generators.llm.answer_calls import read_call
from generators.llm.blueprint import Blueprint
from generators.llm.dialogue import Dialogue, End, Phase, conversation_parts
from generators.llm.output_schema import (
    CallPlan,
    SchemaLimits,
    answer_schema,
    calls_schema,
    message_schema,
)
from generators.llm.prompt_budget import PromptDraft
from generators.llm.prompts import PromptSet
from generators.llm.requests import Sampling, chat, fit_drafts, rendered, run_batch
from generators.tool_api import ToolCaller
from llm.base import LLMBackend, LLMRequest, LLMResult
from llm.output import (
    BLUEPRINT_NOT_FOLLOWED,
    GENERATION_ERROR,
    PROMPT_TOO_LONG,
    UNPARSEABLE,
    Unparseable,
    failure_extra,
    parse_object,
    result_failure,
)
from unified.model import Sample, Tool

BLUEPRINT = "blueprint"
"""`meta.extra` key of a multi_turn sample's blueprint."""
DIALOGUE = "dialogue"
"""`meta.extra` key of how its conversation went."""
BLUEPRINT_TURNS = (2, 3)
"""How many turns a blueprint plans: at least, at most (the turn limit may lower it)."""
CALLS_PER_TURN = 2
"""The most calls of one blueprint turn."""

_WHO = {Phase.user: "the user's message", Phase.act: "the calls", Phase.answer: "the answer"}


@dataclass
class Talk:
    """One conversation of a batch: the sample it becomes, its tools and its dialogue."""

    position: int
    sample: Sample
    tools: list[Tool]
    seed: int
    dialogue: Dialogue
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    failure: dict[str, Any] = field(default_factory=dict)


def start_talk(
    position: int,
    sample: Sample,
    blueprint: Blueprint,
    api: ToolCaller,
    max_turns: int,
    seed: int,
) -> Talk:
    """The talk of a sample whose blueprint passed validation; `api` is the conversation's own
    mock (a fresh one: the blueprint's run must not leave state in it)."""
    return Talk(position, sample, list(sample.tools), seed, Dialogue(blueprint, api, max_turns))


class Talks:
    """Runs the talks of a batch round by round against one backend."""

    def __init__(
        self,
        prompts: PromptSet,
        sampling: Sampling,
        limits: SchemaLimits,
        backend: LLMBackend,
        max_model_len: int | None,
        usage: GenerationUsage,
    ) -> None:
        self.prompts = prompts
        self.sampling = sampling
        self.limits = limits
        self.backend = backend
        self.max_model_len = max_model_len
        self.usage = usage

    def run(self, talks: Sequence[Talk]) -> None:
        """Every talk to its end: each round one request per talk still going, in one call."""
        going = [talk for talk in talks if not talk.dialogue.finished]
        while going:
            drafts = [self._draft(talk) for talk in going]
            fitted = fit_drafts(
                [draft for draft, _ in drafts], self.backend, self.max_model_len,
                self.sampling.max_tokens,
            )  # fmt: skip
            messages = rendered([draft for draft, _ in drafts], fitted)
            sent: list[tuple[Talk, LLMRequest]] = []
            for number, (talk, (_, schema), prompt) in enumerate(
                zip(going, drafts, messages, strict=True)
            ):
                if prompt is None:
                    assert fitted is not None
                    self._fail(talk, PROMPT_TOO_LONG, fitted[number].too_long_detail(), "")
                    continue
                seed = derived_seed(talk.seed, talk.dialogue.phase, len(talk.dialogue.turns))
                sent.append((talk, self.sampling.request(prompt, schema, seed)))
            results = run_batch(self.backend, [request for _, request in sent], self.usage)
            for (talk, _), result in zip(sent, results, strict=True):
                self._take(talk, result)
            going = [talk for talk in going if not talk.dialogue.finished]

    def _draft(self, talk: Talk) -> tuple[PromptDraft, dict[str, Any]]:
        dialogue = talk.dialogue
        if dialogue.phase is Phase.user:
            render = partial(chat, self.prompts, "user", "user_turn.j2")
            return PromptDraft(dialogue.user_variables(), render), message_schema(self.limits)
        if dialogue.phase is Phase.act:
            tools = [tool.openai()["function"] for tool in talk.tools]
            plan = CallPlan(tuple(tool.name for tool in talk.tools), 0, self.limits.max_calls)
            render = partial(chat, self.prompts, "assistant", "assistant_turn.j2")
            variables = {"tools": tools, **dialogue.act_variables()}
            return PromptDraft(variables, render), calls_schema(talk.tools, plan, self.limits)
        render = partial(chat, self.prompts, "assistant", "assistant_answer.j2")
        return PromptDraft(dialogue.answer_variables(), render), answer_schema(self.limits)

    def _take(self, talk: Talk, result: LLMResult) -> None:
        talk.requests += 1
        talk.prompt_tokens += result.prompt_tokens
        talk.completion_tokens += result.completion_tokens
        failure = result_failure(result, self.sampling.max_tokens)
        if failure is not None:
            self._fail(talk, failure[0], failure[1], result.text)
            return
        dialogue = talk.dialogue
        try:
            if dialogue.phase is Phase.user:
                data = parse_object(result.text, {"message": str})
                dialogue.take_message(data["message"].strip())
            elif dialogue.phase is Phase.act:
                data = parse_object(result.text, {"calls": list})
                items = enumerate(data["calls"])
                dialogue.take_calls([read_call(item, f"call {n}") for n, item in items])
            else:
                data = parse_object(result.text, {"answer": str})
                dialogue.take_answer(data["answer"].strip())
        except Unparseable as exc:
            self._fail(talk, UNPARSEABLE, str(exc), result.text)

    def _fail(self, talk: Talk, kind: str, detail: str, text: str) -> None:
        dialogue = talk.dialogue
        turn = len(dialogue.turns) + 1 if dialogue.phase is Phase.user else len(dialogue.turns)
        where = f"turn {turn}"
        talk.failure = failure_extra(kind, f"{where}, {_WHO[dialogue.phase]}: {detail}", text)
        dialogue.fail()


def talk_sample(talk: Talk, usage: GenerationUsage) -> Sample:
    """The sample of a finished talk: the conversation, and in `meta.extra` how it went (a
    failure or a conversation that left its blueprint counted in `usage`)."""
    dialogue = talk.dialogue
    extra = dict(talk.sample.meta.extra)
    extra["prompt_tokens"] = extra.get("prompt_tokens", 0) + talk.prompt_tokens
    extra["completion_tokens"] = extra.get("completion_tokens", 0) + talk.completion_tokens
    extra[DIALOGUE] = {
        "turns": len(dialogue.turns),
        "max_turns": dialogue.max_turns,
        "end": (dialogue.end or End.failed).value,
        "requests": talk.requests,
    }
    if talk.failure:
        extra.update(talk.failure)
    elif dialogue.not_followed is not None:
        extra.update(failure_extra(BLUEPRINT_NOT_FOLLOWED, dialogue.not_followed, ""))
    kind = extra.get(GENERATION_ERROR)
    if kind is not None:
        usage.count_failure(str(kind))
    query, steps, turns = conversation_parts(dialogue.turns)
    meta = talk.sample.meta.model_copy(update={"extra": extra})
    return talk.sample.model_copy(
        update={"query": query, "steps": steps, "turns": turns, "meta": meta}
    )
