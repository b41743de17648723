"""Perturbations of accepted samples: each makes the wrong answer its name promises, the format
verifier rejects it with the matching reason (or it is marked as needing the semantic judge), and
each is deterministic and leaves its parent untouched."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from generators.base import GenerationRequest
from generators.perturb import NEEDS_SEMANTIC, PERTURBATIONS, perturb, perturbations
from generators.template.generator import TemplateGenerator
from unified.catalogs import load_catalog
from unified.model import QueryStyle, Sample, Step, Tool, ToolCall
from verifiers import FormatVerifier, Reason

ROOT = Path(__file__).resolve().parents[3]
CATALOGS = {
    "travel": ROOT / "examples" / "travel_api.yaml",
    "bfcl_multiple": ROOT / "tests" / "data" / "functions" / "BFCL_v3_multiple.json",
    "cookbook": ROOT / "tests" / "data" / "functions" / "openai_cookbook_tools.json",
    "petstore": ROOT / "tests" / "data" / "openapi" / "oai-v3.0-petstore-expanded.yaml",
}
# The reason the format verifier gives for each perturbation; None: it passes the format check
# and is marked needs_semantic. wrong_tool's reason depends on the other tool's schema.
EXPECTED: dict[str, set[str] | None] = {
    "missing_argument": {Reason.missing_required_argument},
    "wrong_argument_type": {Reason.argument_type_mismatch},
    "enum_violation": {Reason.enum_violation},
    "invented_argument": {Reason.unexpected_argument},
    "hallucinated_call": {Reason.unknown_tool},
    "invented_value": None,
    "dropped_call": None,
}
ARGUMENT_REASONS = {
    Reason.unexpected_argument,
    Reason.missing_required_argument,
    Reason.argument_type_mismatch,
    Reason.enum_violation,
    Reason.schema_violation,
}
# Catalogs without enumerated parameters cannot get an enum violation.
NOT_APPLICABLE = {("bfcl_multiple", "enum_violation"), ("petstore", "enum_violation")}
VERIFIER = FormatVerifier()


@cache
def samples(catalog: str) -> tuple[Sample, ...]:
    tools = load_catalog(CATALOGS[catalog]).tools
    request = GenerationRequest(n=40, seed=3, options={"created": "2026-01-01T00:00:00+00:00"})
    made = TemplateGenerator().generate(tools, request)
    assert all(VERIFIER.verify(sample).accepted for sample in made)
    return tuple(made)


def children(catalog: str, name: str, seed: int = 0) -> list[tuple[Sample, Sample]]:
    pairs = [(parent, perturb(parent, name, seed)) for parent in samples(catalog)]
    return [(parent, child) for parent, child in pairs if child is not None]


@pytest.mark.parametrize("catalog", sorted(CATALOGS))
@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_perturbation_fails_verification_with_its_reason(catalog: str, name: str) -> None:
    made = children(catalog, name)
    if (catalog, name) in NOT_APPLICABLE:
        assert made == []
        return
    assert made, f"{name} applied to no sample of {catalog}"
    for parent, child in made:
        assert child.id == f"{parent.id}~{name}"
        assert child.meta.parent_id == parent.id
        assert child.meta.transformation == name
        assert child.query == parent.query and child.tools == parent.tools
        assert child.steps != parent.steps
        verdict = VERIFIER.verify(child)
        semantic = child.meta.extra.get(NEEDS_SEMANTIC, False)
        if name == "wrong_tool":
            assert verdict.accepted is semantic
            if len(parent.tools) == 1:
                assert verdict.reason == Reason.unknown_tool
            elif not semantic:
                assert verdict.reason in ARGUMENT_REASONS
            continue
        expected = EXPECTED[name]
        if expected is None:
            assert verdict.accepted and semantic is True
        else:
            assert not verdict.accepted and not semantic
            assert verdict.reason in expected, verdict.detail


def only_call(sample: Sample) -> ToolCall:
    (call,) = sample.tool_calls()
    return call


def test_wrong_tool_renames_to_another_offered_tool_or_invents_one() -> None:
    for parent, child in children("travel", "wrong_tool"):
        names = {tool.name for tool in parent.tools}
        before = [call.name for call in parent.tool_calls()]
        after = [call.name for call in child.tool_calls()]
        changed = [new for old, new in zip(before, after, strict=True) if old != new]
        assert len(changed) == 1
        if len(names) == 1:
            assert changed[0] not in names and changed[0].startswith(before[0] + "_")
        else:
            assert changed[0] in names


def test_missing_argument_drops_exactly_one_required_argument() -> None:
    for parent, child in children("travel", "missing_argument"):
        for old, new in zip(parent.tool_calls(), child.tool_calls(), strict=True):
            if old == new:
                continue
            assert isinstance(old.arguments, dict) and isinstance(new.arguments, dict)
            (dropped,) = set(old.arguments) - set(new.arguments)
            tool = next(t for t in parent.tools if t.name == old.name)
            assert dropped in tool.parameters["required"]
            assert len(new.arguments) == len(old.arguments) - 1


def test_invented_value_is_valid_but_absent_from_the_query() -> None:
    made = children("travel", "invented_value")
    assert len(made) >= 10
    for parent, child in made:
        old = [c.arguments for c in parent.tool_calls()]
        new = [c.arguments for c in child.tool_calls()]
        changes = [
            (name, a[name], b[name])
            for a, b in zip(old, new, strict=True)
            for name in a
            if isinstance(a, dict) and isinstance(b, dict) and a[name] != b[name]
        ]
        assert len(changes) == 1
        _, before, after = changes[0]
        assert isinstance(before, str) and isinstance(after, str)
        assert before in parent.query and after.casefold() not in parent.query.casefold()


def test_hallucinated_call_only_on_irrelevance_samples_and_calls_an_unoffered_tool() -> None:
    sources = []
    for parent in samples("travel"):
        child = perturb(parent, "hallucinated_call")
        if parent.meta.style is not QueryStyle.irrelevance:
            assert child is None
            continue
        assert child is not None and parent.tool_calls() == []
        call = only_call(child)
        assert call.name not in {tool.name for tool in parent.tools}
        phrased = parent.meta.extra["phrased_from"]
        sources.append(phrased)
        assert call.name == (phrased or call.name) and call.name.startswith(phrased or "find_")
    assert any(sources) and not all(sources)


def test_hallucinated_call_invents_a_name_from_the_query_without_a_recorded_source() -> None:
    parent = Sample(
        id="bfcl-irrelevance-1",
        tools=[Tool(name="calculate_area", parameters={"type": "object", "properties": {}})],
        query="What is the capital of Brazil?",
        steps=[Step(answer="None of the tools can answer that.")],
    )
    child = perturb(parent, "hallucinated_call")
    assert child is not None
    assert only_call(child).name == "find_what_capital_brazil"
    assert VERIFIER.verify(child).reason == Reason.unknown_tool


def test_dropped_call_removes_one_call_of_a_parallel_step() -> None:
    for parent in samples("travel"):
        child = perturb(parent, "dropped_call")
        calls = parent.tool_calls()
        if len(calls) < 2:
            assert child is None
            continue
        assert child is not None
        left = child.tool_calls()
        assert len(left) == len(calls) - 1
        assert all(call in calls for call in left)


def test_wrong_argument_type_changes_the_json_type() -> None:
    for parent, child in children("cookbook", "wrong_argument_type"):
        old = [c.arguments for c in parent.tool_calls()]
        new = [c.arguments for c in child.tool_calls()]
        changed = [
            (a[n], b[n])
            for a, b in zip(old, new, strict=True)
            if isinstance(a, dict) and isinstance(b, dict)
            for n in a
            if a[n] != b[n]
        ]
        assert len(changed) == 1
        before, after = changed[0]
        assert type(before) is not type(after)


def test_perturbations_are_deterministic_and_leave_the_parent_unchanged() -> None:
    for parent in samples("travel")[:20]:
        before = parent.model_dump_json()
        first = [child.model_dump_json() for child in perturbations(parent, seed=5)]
        again = [child.model_dump_json() for child in perturbations(parent, seed=5)]
        assert first == again
        assert parent.model_dump_json() == before


def test_the_seed_changes_the_choices() -> None:
    values = {
        seed: [
            json.dumps([c.arguments for c in child.tool_calls()], sort_keys=True)
            for _, child in children("travel", "invented_value", seed)
        ]
        for seed in (1, 2)
    }
    assert values[1] != values[2]


def test_perturbations_do_not_apply_where_there_is_nothing_to_break() -> None:
    bare = Sample(
        id="s",
        tools=[Tool(name="ping")],
        query="Ping the server.",
        steps=[Step(tool_calls=[ToolCall(name="ping")])],
    )
    for name in ("missing_argument", "wrong_argument_type", "enum_violation", "invented_value"):
        assert perturb(bare, name) is None, name
    assert perturb(bare, "dropped_call") is None
    assert perturb(bare, "hallucinated_call") is None
    invented = perturb(bare, "invented_argument")
    assert invented is not None
    assert VERIFIER.verify(invented).reason == Reason.unexpected_argument


def test_unknown_perturbation_name_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="no perturbation named 'typo'; known: dropped_call"):
        perturb(samples("travel")[0], "typo")
