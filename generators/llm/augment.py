"""Augmentation: new samples made from accepted-looking ones (xLAM's data augmentation).

Prompt-format augmentation keeps a sample's query and answer and changes how the prompt is
presented: the order of its tools (`tool_order`), the tools described in the task instruction as
JSON Schema, Python signatures or plain text (`tool_format:<format>`), or another output-format
instruction (`format_instruction:<format>`, also recorded as `meta.extra["call_format"]`).
Instruction-following augmentation asks the LLM: the query or instruction rephrased
(`rephrase`), or one more constraint added to an instruction and the response written again
(`add_constraint:<kind>`). Each child records `meta.parent_id` and `meta.transformation`.
Multi-turn conversations are not augmented yet.

Which parent gets which augmentation, and every choice inside one, come from the seed: the same
parents and seed give the same children (LLM children: the same requests).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from generators.base import derived_seed
from generators.errors import GenerationError
from generators.llm.output_schema import SchemaLimits, rephrase_schema, response_schema
from generators.llm.prompts import PromptSet
from generators.llm.requests import (
    GenerationUsage,
    Sampling,
    chat,
    compose_instruction,
    run_batch,
)
from generators.llm.tool_text import TOOL_FORMATS
from llm.base import LLMBackend, LLMRequest, LLMResult
from llm.output import (
    UNPARSEABLE,
    Unparseable,
    failure_extra,
    generation_failure,
    parse_object,
    result_failure,
)
from unified.constraints import compatible_kinds, sample_constraint
from unified.model import QueryStyle, Sample, Step

AUGMENTATIONS = ("tool_order", "tool_format", "format_instruction", "rephrase", "add_constraint")
"""Every augmentation, by the name the `augment` option takes."""
LLM_AUGMENTATIONS = frozenset({"rephrase", "add_constraint"})
CALL_FORMATS = ("json_object", "json_list", "xml_tags", "python")
"""Output formats a format instruction can ask for; `json_object` is the originals' one."""
DEFAULT_CALL_FORMAT = "json_object"

_LONG_WORD = re.compile(r"[A-Za-z]{5,}")


def applicable(kind: str, sample: Sample) -> bool:
    """Whether augmentation `kind` can make a child of `sample`."""
    if generation_failure(sample) is not None or not sample.query:
        return False
    if sample.is_multi_turn() or sample.meta.style is QueryStyle.multi_turn:
        return False  # each augmentation changes one query; a conversation has several
    instruction = sample.meta.style is QueryStyle.instruction
    if kind == "tool_order":
        return not instruction and len(sample.tools) >= 2
    if kind in ("tool_format", "format_instruction"):
        return not instruction and bool(sample.tools)
    if kind == "add_constraint":
        present = [c.get("kind", "") for c in sample.meta.extra.get("constraints", [])]
        return instruction and bool(compatible_kinds(present))
    return kind == "rephrase"


def plan_children(
    parents: Sequence[Sample], kinds: Sequence[str], count: int, seed: int
) -> list[tuple[Sample, str]]:
    """`count` (parent, augmentation) pairs. The kinds that apply to some parent take turns in
    the order given; each turn goes to a parent with the fewest children so far that has no
    child of that kind yet (parents in a seeded shuffle). Empty when no kind applies."""
    rng = random.Random(derived_seed(seed, "augment-plan"))
    order = list(parents)
    rng.shuffle(order)
    usable = {kind: [i for i, p in enumerate(order) if applicable(kind, p)] for kind in kinds}
    turns = [kind for kind in kinds if usable[kind]]
    if not turns:
        return []
    children = [0] * len(order)
    made: set[tuple[int, str]] = set()
    pairs: list[tuple[Sample, str]] = []
    for number in range(count):
        kind = turns[number % len(turns)]
        fresh = [i for i in usable[kind] if (i, kind) not in made] or usable[kind]
        chosen = min(fresh, key=lambda i: children[i])
        children[chosen] += 1
        made.add((chosen, kind))
        pairs.append((order[chosen], kind))
    return pairs


@dataclass
class _Pending:
    """An LLM augmentation waiting for its result."""

    position: int
    parent: Sample
    kind: str
    request: LLMRequest
    constraint: dict[str, Any] | None = None


class Augmenter:
    """Makes augmented children of samples; LLM augmentations go to the backend in one batch."""

    def __init__(self, prompts: PromptSet, sampling: Sampling, limits: SchemaLimits) -> None:
        self.prompts = prompts
        self.sampling = sampling
        self.limits = limits

    def augment(
        self,
        parents: Sequence[Sample],
        kinds: Sequence[str],
        count: int,
        seed: int,
        backend: LLMBackend | None,
        usage: GenerationUsage,
    ) -> list[Sample]:
        """Up to `count` children of `parents`, in plan order. Their ids are
        `f"{parent.id}.{position}"` until the caller gives them their own."""
        unknown = [kind for kind in kinds if kind not in AUGMENTATIONS]
        if unknown:
            raise GenerationError(
                f"unknown augmentation '{unknown[0]}'; known: {', '.join(AUGMENTATIONS)}"
            )
        plan = plan_children(parents, kinds, count, seed)
        children: list[Sample | None] = [None] * len(plan)
        pending: list[_Pending] = []
        for position, (parent, kind) in enumerate(plan):
            rng = random.Random(derived_seed(seed, "augment", position))
            if kind in LLM_AUGMENTATIONS:
                pending.append(self._llm_request(position, parent, kind, rng))
            else:
                children[position] = self._local_child(position, parent, kind, rng)
        if pending:
            if backend is None:
                raise GenerationError(
                    f"augmentation '{pending[0].kind}' needs an LLM backend; none was given"
                )
            results = run_batch(backend, [p.request for p in pending], usage)
            for item, result in zip(pending, results, strict=True):
                children[item.position] = self._llm_child(item, result, usage)
        return [child for child in children if child is not None]

    def _local_child(self, position: int, parent: Sample, kind: str, rng: random.Random) -> Sample:
        if kind == "tool_order":
            tools = list(parent.tools)
            rng.shuffle(tools)
            if [t.name for t in tools] == [t.name for t in parent.tools]:
                tools = tools[1:] + tools[:1]
            return _child(
                parent,
                position,
                "tool_order",
                {"tools": tools},
                {"tool_order": [t.name for t in tools]},
            )
        if kind == "tool_format":
            fmt = rng.choice(sorted(TOOL_FORMATS))
            text = self.prompts.render(
                "task_instruction.j2",
                {"tool_format": fmt, "tools_text": TOOL_FORMATS[fmt](parent.tools)},
            )
            return _child(
                parent,
                position,
                f"tool_format:{fmt}",
                {"task_instruction": text},
                {"tool_format": fmt},
            )
        current = parent.meta.extra.get("call_format", DEFAULT_CALL_FORMAT)
        fmt = rng.choice([f for f in CALL_FORMATS if f != current])
        text = self.prompts.render("format_instruction.j2", {"call_format": fmt})
        return _child(
            parent,
            position,
            f"format_instruction:{fmt}",
            {"format_instruction": text},
            {"call_format": fmt},
        )

    def _llm_request(
        self, position: int, parent: Sample, kind: str, rng: random.Random
    ) -> _Pending:
        request_seed = derived_seed(parent.meta.seed, parent.id, "augment", position)
        instruction = parent.meta.extra.get("instruction") or parent.query
        if kind == "rephrase":
            is_instruction = parent.meta.style is QueryStyle.instruction
            variables = {
                "kind": "instruction" if is_instruction else "query",
                "text": instruction if is_instruction else parent.query,
                "tools": [{"name": t.name, "description": t.description} for t in parent.tools],
            }
            messages = chat(self.prompts, "rephrase", "rephrase.j2", variables)
            request = self.sampling.request(messages, rephrase_schema(self.limits), request_seed)
            return _Pending(position, parent, kind, request)
        constraints = list(parent.meta.extra.get("constraints", []))
        present = [c.get("kind", "") for c in constraints]
        words = sorted({w.lower() for w in _LONG_WORD.findall(instruction)})
        added = sample_constraint(rng.choice(compatible_kinds(present)), rng, words)
        texts = [c.get("text", "") for c in constraints] + [added.text]
        messages = chat(
            self.prompts,
            "respond",
            "respond.j2",
            {"instruction": instruction, "constraints": texts},
        )
        request = self.sampling.request(messages, response_schema(self.limits), request_seed)
        return _Pending(position, parent, kind, request, added.as_dict())

    def _llm_child(self, item: _Pending, result: LLMResult, usage: GenerationUsage) -> Sample:
        parent = item.parent
        tokens = {
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
        }
        transformation = (
            "rephrase" if item.constraint is None else f"add_constraint:{item.constraint['kind']}"
        )
        failure = result_failure(result, self.sampling.max_tokens)
        field = "query" if item.constraint is None else "response"
        data: dict[str, Any] = {}
        if failure is None:
            try:
                data = parse_object(result.text, {field: str})
            except Unparseable as exc:
                failure = (UNPARSEABLE, str(exc))
        if failure is not None:
            usage.count_failure(failure[0])
            extra = {**tokens, **failure_extra(failure[0], failure[1], result.text)}
            return _child(parent, item.position, transformation, {"steps": []}, extra)
        instruction = parent.meta.extra.get("instruction")
        if item.constraint is None:
            if parent.meta.style is QueryStyle.instruction:
                texts = [c.get("text", "") for c in parent.meta.extra.get("constraints", [])]
                query = compose_instruction(data["query"], texts)
                tokens["instruction"] = data["query"].strip()
            else:
                query = data["query"].strip()
            return _child(parent, item.position, transformation, {"query": query}, tokens)
        constraints = [*parent.meta.extra.get("constraints", []), item.constraint]
        query = compose_instruction(
            instruction or parent.query, [c.get("text", "") for c in constraints]
        )
        updates = {"query": query, "steps": [Step(answer=data["response"])]}
        return _child(
            parent, item.position, transformation, updates, {**tokens, "constraints": constraints}
        )


_PER_GENERATION = ("prompt_tokens", "completion_tokens", "index", "requested_style")
"""Parent extras that describe the parent's own generation, not carried to a child."""


def _child(
    parent: Sample,
    position: int,
    transformation: str,
    updates: dict[str, Any],
    extra: dict[str, Any],
) -> Sample:
    kept = {k: v for k, v in parent.meta.extra.items() if k not in _PER_GENERATION}
    meta = parent.meta.model_copy(
        update={
            "parent_id": parent.id,
            "transformation": transformation,
            "extra": {**kept, **extra},
        }
    )
    child = parent.model_copy(deep=True, update={**updates, "meta": meta})
    return child.model_copy(update={"id": f"{parent.id}.{position}"})
