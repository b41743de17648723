"""Preference pairs: an accepted answer (chosen) and a wrong answer to the same query (rejected),
and their export as DPO JSON Lines in the conversational form TRL reads.

For each accepted sample the rejected side is, in order of preference:

1. a real rejected sample of the same query (same query text, whitespace-trimmed), given as a
   sample (the format verifier must reject it, else it is skipped) or as a `(sample, verdict)`
   pair whose verdict, stored by whichever stage rejected it, is a rejection that says the answer
   is wrong (`NOT_WRONG_REASONS` — a duplicate, a sandbox failure, a judge that could not be read
   — say nothing against the answer, and such samples are skipped);
2. a perturbation of the chosen sample (`generators.perturb`) that the format verifier rejects.
   Perturbations marked `needs_semantic` (an invented value, a dropped call, a renamed call that
   still fits the other tool's schema) pass the format check by design; they are left out unless
   `include_needs_semantic=True`, and then carry the reason `needs_semantic` because no stage has
   confirmed them yet (the semantic judge will).

Choices are deterministic: among real rejected samples and among perturbation names, the order
is a shuffle seeded by `(seed, chosen id)`. A chosen sample that the verifier does not accept is
skipped. Real rejected samples are held in memory, indexed by query; chosen samples stream.

DPO rows (`dpo_row`, `write_pairs`) are `{"prompt": [...], "chosen": [...], "rejected": [...],
"tools": [...]}`, TRL's conversational preference form with its `tools` column, rendered by the
`hf` export's own code (`unified.formats.hf`), so a sample's DPO prompt is its SFT prompt:

- `prompt`: `hf`'s prompt of the chosen sample: one system message (the task instruction, the
  format instruction joined after it), each few-shot example as a user turn and its assistant
  turns, then the user's query.
- `tools`: the chosen sample's tools as OpenAI / JSON Schema function definitions, as in `hf`
  rows; TRL passes them to the chat template (`apply_chat_template(..., tools=...)`), which places
  them its own way. They are not pasted into the system text.
- `chosen` / `rejected`: one assistant message each, the first turn of each side's `hf`
  conversation: the first step's calls, `{"role": "assistant", "content": thought or "",
  "tool_calls": [{"type": "function", "function": {"name", "arguments": {...}}, "id"?}]}`
  (arguments a JSON object), or the answer of a sample that calls nothing first (a sample with
  no step gives `hf`'s refusal). Tool results are on neither side: a rejected answer has none of
  its own, and results shown on one side only would let the model tell the sides apart by them.
  Later turns, which depend on results, are left out for the same reason; a candidate whose
  first turn is the chosen one's (its mistake is in a later step) is passed over.

A multi-turn sample (a conversation) makes its pair on its final turn, with the earlier dialogue
as the prompt: a DPO row has one prompt, and the final turn is the one asked with the whole
conversation before it, which is what multi-turn training is for.

- `prompt`: the `hf` row's messages up to and including the final turn's user message: the
  prompt above, the earlier turns' calls, tool results and answers (each turn closed as `hf`
  closes it), the later user messages. It is the start of the sample's `hf` row, so the DPO
  prompt is still the SFT prompt.
- `chosen` / `rejected`: the assistant's first message of the final turn, as above.
- A real rejected sample is a candidate when it is the same conversation up to the final turn's
  user message (the same prompt: earlier turns, results and queries identical) and its final
  turn's first message differs; a rejected conversation whose mistake is in an earlier turn has
  another prompt and is passed over. A perturbation is made of the final turn
  (`final_turn_view`: the final turn as a single-turn sample, which the format verifier checks).
  A final turn that calls nothing (an answer) gets a pair only from a real rejected sample or a
  perturbation that applies to it (`hallucinated_call`, for unstyled samples).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any

import orjson
from pydantic import BaseModel, ConfigDict

from generators.perturb import NEEDS_SEMANTIC, PERTURBATIONS, perturb, perturbation_seed
from unified.formats.base import line_writer
from unified.formats.hf import completion_messages, conversation, prompt_messages
from unified.model import Sample, Tool
from verifiers.dedup import DedupReason
from verifiers.format import FormatVerifier
from verifiers.verdict import Reason, Verdict

REJECTED_SAMPLE = "rejected_sample"
PERTURBATION_PREFIX = "perturbation:"

Message = dict[str, Any]

NOT_WRONG_REASONS = frozenset(
    {
        DedupReason.duplicate.value,
        DedupReason.near_duplicate.value,
        Reason.sandbox_error.value,
        Reason.judge_unparseable.value,
    }
)
"""Rejection reasons that say nothing against the answer: a correct answer seen before, or a
stage that failed to judge it. Samples rejected for these are never a pair's rejected side."""


class PreferencePair(BaseModel):
    """A query's prompt with a chosen (accepted) and a rejected answer, as chat messages.

    `reason` and `detail` are the rejected side's verdict; `source` is `rejected_sample` or
    `perturbation:<name>`."""

    model_config = ConfigDict(extra="forbid")

    id: str
    chosen_id: str
    rejected_id: str
    prompt: list[Message]
    chosen: list[Message]
    rejected: list[Message]
    tools: list[dict[str, Any]]
    reason: str
    stage: str | None = None
    detail: str | None = None
    source: str


def build_pairs(
    samples: Iterable[Sample],
    rejected: Iterable[Sample | tuple[Sample, Verdict]] | None = None,
    verifier: FormatVerifier | None = None,
    seed: int = 0,
    tools: Sequence[Tool] | None = None,
    include_needs_semantic: bool = False,
) -> Iterator[PreferencePair]:
    """One pair per accepted sample of `samples` that has a confirmed wrong answer.

    `tools` are the catalog's tools, used for samples that carry none of their own."""
    check = verifier or FormatVerifier()
    by_query = _index_rejected(rejected or (), check, tools)
    for chosen in samples:
        offered = chosen.tools if chosen.tools else tools
        if not check.verify(chosen, offered).accepted:
            continue
        rng = random.Random(perturbation_seed(seed, chosen.id, "pair"))
        answer = answer_messages(chosen)
        dialogue = _dialogue(chosen)
        candidates = sorted(
            (
                c
                for c in by_query.get(_query_key(chosen), [])
                if answer_messages(c[0]) != answer and _dialogue(c[0]) == dialogue
            ),
            key=lambda c: c[0].id,
        )
        if candidates:
            sample, verdict = rng.choice(candidates)
            yield make_pair(chosen, sample, verdict, REJECTED_SAMPLE)
            continue
        pair = _perturbed_pair(chosen, check, offered, rng, seed, include_needs_semantic)
        if pair is not None:
            yield pair


def query_key(query: str) -> str:
    """What two samples must share to answer the same query: the query without end spaces."""
    return query.strip()


def _query_key(sample: Sample) -> str:
    return query_key(sample.query)


def _dialogue(sample: Sample) -> list[Message]:
    """The prompt's messages after the first user query: a conversation's earlier turns and
    its final user message; none for a single-turn sample."""
    return pair_prompt(sample)[len(prompt_messages(sample)) :]


def _index_rejected(
    rejected: Iterable[Sample | tuple[Sample, Verdict]],
    check: FormatVerifier,
    tools: Sequence[Tool] | None,
) -> dict[str, list[tuple[Sample, Verdict]]]:
    by_query: dict[str, list[tuple[Sample, Verdict]]] = defaultdict(list)
    for item in rejected:
        if isinstance(item, tuple):
            sample, verdict = item
            if verdict.accepted:
                raise ValueError(
                    f"rejected sample {sample.id!r} comes with an accepting verdict of stage "
                    f"{verdict.stage!r}; pass the verdict that rejected it"
                )
            if verdict.reason in NOT_WRONG_REASONS:
                continue
        else:
            sample = item
            verdict = check.verify(sample, sample.tools if sample.tools else tools)
            if verdict.accepted:
                continue
        by_query[_query_key(sample)].append((sample, verdict))
    return by_query


def _perturbed_pair(
    chosen: Sample,
    check: FormatVerifier,
    offered: Sequence[Tool] | None,
    rng: random.Random,
    seed: int,
    include_needs_semantic: bool,
) -> PreferencePair | None:
    names = list(PERTURBATIONS)
    rng.shuffle(names)
    final = final_turn_view(chosen)
    for name in names:
        child = perturb(final, name, seed)
        if child is None or answer_messages(child) == answer_messages(chosen):
            continue
        source = PERTURBATION_PREFIX + name
        verdict = check.verify(child, offered)
        if not verdict.accepted:
            return make_pair(chosen, child, verdict, source)
        if include_needs_semantic and child.meta.extra.get(NEEDS_SEMANTIC):
            unconfirmed = Verdict(
                accepted=False,
                stage="semantic",
                reason=NEEDS_SEMANTIC,
                detail=f"{name}: passes the format check; only the semantic judge can confirm it",
            )
            return make_pair(chosen, child, unconfirmed, source)
    return None


def make_pair(chosen: Sample, rejected: Sample, verdict: Verdict, source: str) -> PreferencePair:
    """The pair of two answers to one query; `verdict` is the one that rejected `rejected`."""
    return PreferencePair(
        id=f"{chosen.id}|{rejected.id}",
        chosen_id=chosen.id,
        rejected_id=rejected.id,
        prompt=pair_prompt(chosen),
        chosen=answer_messages(chosen),
        rejected=answer_messages(rejected),
        tools=[tool.openai() for tool in chosen.tools],
        reason=verdict.reason or "",
        stage=verdict.stage,
        detail=verdict.detail,
        source=source,
    )


def pair_prompt(sample: Sample) -> list[Message]:
    """The messages a pair's answers follow, as the `hf` export renders them: `hf`'s prompt of a
    single-turn sample; for a conversation, its `hf` messages up to and including the final
    turn's user message."""
    if not sample.turns:
        return prompt_messages(sample)
    messages = conversation(sample).messages
    final_user = max(i for i, message in enumerate(messages) if message["role"] == "user")
    return messages[: final_user + 1]


def final_turn_view(sample: Sample) -> Sample:
    """A conversation's final turn as a single-turn sample (the same id, tools and metadata);
    a single-turn sample as it is."""
    if not sample.turns:
        return sample
    final = sample.turns[-1]
    return sample.model_copy(update={"query": final.query, "steps": final.steps, "turns": []})


def answer_messages(sample: Sample) -> list[Message]:
    """The assistant's first message after the prompt, as the `hf` export renders it: the calls
    of the final turn's first step (no results), or its answer when it calls nothing first."""
    completion, _ = completion_messages(final_turn_view(sample))
    return completion[:1]


def dpo_row(pair: PreferencePair) -> dict[str, list[Message] | list[dict[str, Any]]]:
    """The pair as one row of TRL's conversational preference dataset."""
    return {
        "prompt": pair.prompt,
        "chosen": pair.chosen,
        "rejected": pair.rejected,
        "tools": pair.tools,
    }


def write_pairs(pairs: Iterable[PreferencePair], stream: IO[Any]) -> int:
    """Write one DPO JSON line per pair to a binary or text stream as they come; returns the
    count."""
    write = line_writer(stream)
    count = 0
    for pair in pairs:
        write(orjson.dumps(dpo_row(pair)))
        count += 1
    return count
