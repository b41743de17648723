"""Augmentation: children that keep their parent's query and answer under another prompt format,
or carry an LLM's rephrasing or a new constraint; deterministic for a seed, linked to the parent
by `meta.parent_id` and named by `meta.transformation`."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from llm_scripted_backend import ScriptedBackend, user_text

from generators.base import GenerationRequest, GenerationUsage
from generators.errors import GenerationError
from generators.llm.augment import (
    AUGMENTATIONS,
    CALL_FORMATS,
    Augmenter,
    applicable,
    plan_children,
)
from generators.llm.generator import LlmGenerator, read_options
from generators.llm.prompts import PromptSet
from llm.base import LLMRequest, LLMResult
from llm.output import TRUNCATED, generation_failure
from service.pipeline.tool_api import MockToolApi
from unified.catalogs import load_catalog
from unified.model import QueryStyle, Sample

ROOT = Path(__file__).resolve().parents[3]
TRAVEL = load_catalog(ROOT / "examples" / "travel_api.yaml").tools
OPTIONS = read_options({"model": "scripted"})
PROMPTS = PromptSet()


def parents(n: int = 12, **styles: float) -> list[Sample]:
    weights = styles or {style.value: 1.0 for style in QueryStyle}
    request = GenerationRequest(n=n, seed=2, styles=weights, id_prefix="p-", options={"model": "m"})
    return LlmGenerator(backend=ScriptedBackend(), tool_api=MockToolApi).generate(TRAVEL, request)


def augment(
    samples: list[Sample],
    kinds: list[str],
    count: int,
    seed: int = 5,
    backend: ScriptedBackend | None = None,
) -> list[Sample]:
    augmenter = Augmenter(PROMPTS, OPTIONS.sampling(), OPTIONS.limits())
    backend = backend or ScriptedBackend()
    return augmenter.augment(samples, kinds, count, seed, backend, GenerationUsage())


def test_the_same_seed_gives_the_same_children_and_another_seed_others() -> None:
    originals = parents()
    first = augment(originals, list(AUGMENTATIONS), 20)
    again = augment(originals, list(AUGMENTATIONS), 20)
    assert [c.to_json() for c in first] == [c.to_json() for c in again]
    other = augment(originals, list(AUGMENTATIONS), 20, seed=6)
    assert [c.to_json() for c in other] != [c.to_json() for c in first]


def test_children_name_their_parent_and_transformation() -> None:
    originals = parents()
    by_id = {parent.id: parent for parent in originals}
    children = augment(originals, list(AUGMENTATIONS), 20)
    assert len(children) == 20
    kinds = Counter(child.meta.transformation.split(":")[0] for child in children)
    assert set(kinds) == set(AUGMENTATIONS) and max(kinds.values()) - min(kinds.values()) <= 1
    for position, child in enumerate(children):
        parent = by_id[child.meta.parent_id]
        assert child.id == f"{parent.id}.{position}"
        assert child.meta.seed == parent.meta.seed and child.meta.style == parent.meta.style
        assert child.meta.generator == "llm" and child.meta.parent_id != child.id
        assert "index" not in child.meta.extra  # the parent's index is not the child's


def test_tool_order_shuffles_the_tools_and_keeps_everything_else() -> None:
    originals = [p for p in parents(20) if len(p.tools) >= 2]
    for child in augment(originals, ["tool_order"], len(originals)):
        parent = next(p for p in originals if p.id == child.meta.parent_id)
        assert child.meta.transformation == "tool_order"
        assert [t.name for t in child.tools] != [t.name for t in parent.tools]
        assert sorted(t.name for t in child.tools) == sorted(t.name for t in parent.tools)
        assert child.meta.extra["tool_order"] == [t.name for t in child.tools]
        assert (child.query, child.steps) == (parent.query, parent.steps)


def test_tool_format_describes_the_tools_in_the_task_instruction() -> None:
    originals = parents(simple=1)
    children = augment(originals, ["tool_format"], 12)
    formats = {child.meta.extra["tool_format"] for child in children}
    assert formats == {"json_schema", "python", "text"}
    for child in children:
        fmt = child.meta.extra["tool_format"]
        assert child.meta.transformation == f"tool_format:{fmt}"
        name = child.tools[0].name
        expected = {
            "python": f"def {name}(",
            "text": f"{name}: ",
            "json_schema": f'"name": "{name}"',
        }[fmt]
        assert expected in child.task_instruction
        assert child.task_instruction.startswith("You are an expert in composing function calls")


def test_format_instruction_switches_to_another_output_format() -> None:
    originals = parents(simple=1, multiple=1)
    children = augment(originals, ["format_instruction"], 12)
    seen = set()
    for child in children:
        parent = next(p for p in originals if p.id == child.meta.parent_id)
        fmt = child.meta.extra["call_format"]
        seen.add(fmt)
        assert fmt in CALL_FORMATS and fmt != "json_object"
        assert child.meta.transformation == f"format_instruction:{fmt}"
        assert child.format_instruction != parent.format_instruction
    assert seen == set(CALL_FORMATS) - {"json_object"}


def rephrased(request: LLMRequest, index: int) -> LLMResult:
    text = (
        json.dumps({"query": f"REPHRASED {index}"})
        if "query" in request.json_schema["properties"]
        else json.dumps({"response": f"NEW RESPONSE {index}"})
    )
    return LLMResult(text=text, finish_reason="stop", prompt_tokens=10, completion_tokens=3)


def test_rephrase_asks_the_llm_and_keeps_the_calls() -> None:
    originals = parents(simple=1, instruction=1)
    backend = ScriptedBackend(rephrased)
    children = augment(originals, ["rephrase"], 12, backend=backend)
    assert len(backend.batches) == 1 and len(backend.batches[0]) == 12
    for child, request in zip(children, backend.batches[0], strict=True):
        parent = next(p for p in originals if p.id == child.meta.parent_id)
        assert child.meta.transformation == "rephrase"
        asked = parent.meta.extra.get("instruction") or parent.query
        assert f": {asked}\n" in user_text(request)
        assert set(request.json_schema["properties"]) == {"query"}
        if parent.meta.style is QueryStyle.instruction:
            assert child.meta.extra["instruction"].startswith("REPHRASED")
            texts = [c["text"] for c in parent.meta.extra["constraints"]]
            assert child.query == f"{child.meta.extra['instruction']}\n\n{' '.join(texts)}"
            assert child.steps == parent.steps
        else:
            assert child.query.startswith("REPHRASED")
            assert child.tool_calls() == parent.tool_calls()
        assert child.meta.extra["completion_tokens"] == 3


def test_add_constraint_adds_a_compatible_constraint_and_a_new_response() -> None:
    originals = parents(simple=1, instruction=1)
    backend = ScriptedBackend(rephrased)
    children = augment(originals, ["add_constraint"], 6, backend=backend)
    assert children and all(c.meta.style is QueryStyle.instruction for c in children)
    for child, request in zip(children, backend.batches[0], strict=True):
        parent = next(p for p in originals if p.id == child.meta.parent_id)
        before = parent.meta.extra["constraints"]
        after = child.meta.extra["constraints"]
        assert after[: len(before)] == before and len(after) == len(before) + 1
        added = after[-1]
        assert child.meta.transformation == f"add_constraint:{added['kind']}"
        assert added["kind"] not in {c["kind"] for c in before}
        assert all(c["text"] in child.query for c in after)
        assert child.final_answer().startswith("NEW RESPONSE")
        assert all(c["text"] in user_text(request) for c in after)
        assert set(request.json_schema["properties"]) == {"response"}


def test_only_good_parents_get_children_and_only_kinds_that_apply() -> None:
    originals = parents()
    truncated = originals[0].model_copy(
        update={
            "meta": originals[0].meta.model_copy(update={"extra": {"generation_error": TRUNCATED}})
        }
    )
    assert not any(applicable(kind, truncated) for kind in AUGMENTATIONS)
    function_calling = [p for p in originals if p.meta.style is not QueryStyle.instruction]
    assert plan_children(function_calling, ["add_constraint"], 5, seed=1) == []
    assert augment(function_calling, ["add_constraint"], 5) == []
    single = [p for p in originals if len(p.tools) == 1]
    assert all(
        kind != "tool_order" for _, kind in plan_children(single, ["tool_order", "rephrase"], 9, 1)
    )


def test_the_plan_spreads_children_over_parents_before_repeating() -> None:
    originals = parents(simple=1)
    plan = plan_children(originals, ["rephrase"], 30, seed=3)
    counts = Counter(parent.id for parent, _ in plan)
    assert len(counts) == len(originals) and max(counts.values()) - min(counts.values()) <= 1


def test_a_failed_llm_child_is_marked_like_a_failed_original() -> None:
    def cut(request: LLMRequest, index: int) -> LLMResult:
        return LLMResult(text='{"query": "half', finish_reason="length", completion_tokens=9)

    usage = GenerationUsage()
    augmenter = Augmenter(PROMPTS, OPTIONS.sampling(), OPTIONS.limits())
    children = augmenter.augment(parents(simple=1), ["rephrase"], 3, 1, ScriptedBackend(cut), usage)
    assert [generation_failure(c)[0] for c in children] == [TRUNCATED] * 3
    assert all(not c.steps for c in children) and usage.failures == {TRUNCATED: 3}


def test_unknown_kinds_and_llm_kinds_without_a_backend_are_refused() -> None:
    augmenter = Augmenter(PROMPTS, OPTIONS.sampling(), OPTIONS.limits())
    with pytest.raises(GenerationError, match="unknown augmentation 'mirror'; known: tool_order"):
        augmenter.augment(parents(4), ["mirror"], 2, 1, None, GenerationUsage())
    with pytest.raises(GenerationError, match="augmentation 'rephrase' needs an LLM backend"):
        augmenter.augment(parents(4), ["rephrase"], 2, 1, None, GenerationUsage())
    assert len(augmenter.augment(parents(4), ["tool_format"], 2, 1, None, GenerationUsage())) == 2
