"""Preference pairs: every rejected side, read back from the exported messages, really fails the
format verifier with the reason the pair names; chosen sides pass; choices are deterministic; and
the DPO JSON lines have exactly TRL's conversational preference shape."""

from __future__ import annotations

import io
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from generators.base import GenerationRequest
from generators.perturb import perturb
from generators.template.generator import TemplateGenerator
from service.export.preference import (
    PreferencePair,
    answer_messages,
    build_pairs,
    dpo_row,
    write_pairs,
)
from unified.catalogs import load_catalog
from unified.formats import read_samples
from unified.formats.hf import conversation
from unified.model import Sample, Step, ToolCall
from verifiers import FormatVerifier, Reason, Verdict

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "data"
CATALOGS = {
    "travel": ROOT / "examples" / "travel_api.yaml",
    "bfcl_multiple": DATA / "functions" / "BFCL_v3_multiple.json",
    "cookbook": DATA / "functions" / "openai_cookbook_tools.json",
}
EXPECTED = {
    "perturbation:missing_argument": {Reason.missing_required_argument},
    "perturbation:wrong_argument_type": {Reason.argument_type_mismatch},
    "perturbation:enum_violation": {Reason.enum_violation},
    "perturbation:invented_argument": {Reason.unexpected_argument},
    "perturbation:hallucinated_call": {Reason.unknown_tool},
    "perturbation:wrong_tool": {
        Reason.unknown_tool,
        Reason.unexpected_argument,
        Reason.missing_required_argument,
        Reason.argument_type_mismatch,
        Reason.enum_violation,
        Reason.schema_violation,
    },
}
VERIFIER = FormatVerifier()


@cache
def samples(catalog: str) -> tuple[Sample, ...]:
    tools = load_catalog(CATALOGS[catalog]).tools
    request = GenerationRequest(n=40, seed=11, options={"created": "2026-01-01T00:00:00+00:00"})
    return tuple(TemplateGenerator().generate(tools, request))


def read_back(chosen: Sample, messages: list[dict[str, Any]]) -> Sample:
    """A sample answering `chosen`'s query with the calls and answers of exported messages."""
    steps = []
    for message in messages:
        assert message["role"] in ("assistant", "tool")
        if message["role"] == "assistant" and "tool_calls" in message:
            calls = [
                ToolCall(name=c["function"]["name"], arguments=c["function"]["arguments"])
                for c in message["tool_calls"]
            ]
            steps.append(Step(tool_calls=calls))
        elif message["role"] == "assistant":
            steps.append(Step(answer=message["content"]))
    return chosen.model_copy(update={"id": "read-back", "steps": steps})


def by_id(catalog: str) -> dict[str, Sample]:
    return {sample.id: sample for sample in samples(catalog)}


@pytest.mark.parametrize("catalog", sorted(CATALOGS))
def test_every_rejected_side_fails_verification_with_the_pairs_reason(catalog: str) -> None:
    pairs = list(build_pairs(samples(catalog), seed=1))
    assert len(pairs) == len(samples(catalog))
    parents = by_id(catalog)
    for pair in pairs:
        chosen = parents[pair.chosen_id]
        assert VERIFIER.verify(read_back(chosen, pair.chosen)).accepted
        verdict = VERIFIER.verify(read_back(chosen, pair.rejected))
        assert not verdict.accepted
        assert (verdict.reason, verdict.detail) == (pair.reason, pair.detail)
        assert pair.stage == "format"
        assert pair.reason in EXPECTED[pair.source], pair.source
        assert pair.rejected_id == f"{chosen.id}~{pair.source.removeprefix('perturbation:')}"
    assert len({pair.source for pair in pairs}) >= 4


def test_needs_semantic_perturbations_only_with_the_option() -> None:
    plain = list(build_pairs(samples("travel"), seed=2))
    assert all(pair.reason != "needs_semantic" for pair in plain)
    wide = list(build_pairs(samples("travel"), seed=2, include_needs_semantic=True))
    semantic = [pair for pair in wide if pair.reason == "needs_semantic"]
    assert semantic
    parents = by_id("travel")
    for pair in semantic:
        assert pair.source in ("perturbation:invented_value", "perturbation:dropped_call")
        assert pair.stage == "semantic"
        assert VERIFIER.verify(read_back(parents[pair.chosen_id], pair.rejected)).accepted


def test_pairs_are_deterministic_for_a_seed() -> None:
    def run(seed: int) -> list[str]:
        return [p.model_dump_json() for p in build_pairs(samples("cookbook"), seed=seed)]

    assert run(4) == run(4)
    assert run(4) != run(5)


def test_a_real_rejected_sample_of_the_same_query_is_preferred() -> None:
    chosen = samples("travel")[0]
    broken = perturb(chosen, "missing_argument")
    assert broken is not None
    real = broken.model_copy(update={"id": "job-7-sample-3", "query": f"  {chosen.query}\n"})
    (pair,) = build_pairs([chosen], rejected=[real])
    assert pair.source == "rejected_sample"
    assert (pair.chosen_id, pair.rejected_id) == (chosen.id, "job-7-sample-3")
    assert pair.reason == Reason.missing_required_argument


def test_a_stored_verdict_of_a_later_stage_is_used_for_a_real_rejected_sample() -> None:
    chosen = samples("travel")[0]
    wrong = perturb(chosen, "invented_value")
    assert wrong is not None and VERIFIER.verify(wrong).accepted
    verdict = Verdict.reject("semantic", "invented_value", "the city is not in the query")
    (pair,) = build_pairs([chosen], rejected=[(wrong, verdict)])
    assert (pair.source, pair.stage, pair.reason) == (
        "rejected_sample",
        "semantic",
        "invented_value",
    )


def test_a_rejected_sample_that_passes_the_format_check_is_not_used_without_a_verdict() -> None:
    chosen = samples("travel")[0]
    passing = chosen.model_copy(update={"id": "looks-rejected"})
    (pair,) = build_pairs([chosen], rejected=[passing])
    assert pair.source.startswith("perturbation:")


def test_an_accepting_verdict_for_a_rejected_sample_is_refused() -> None:
    chosen = samples("travel")[0]
    with pytest.raises(ValueError, match="'x' comes with an accepting verdict of stage 'format'"):
        list(
            build_pairs(
                [chosen],
                rejected=[(chosen.model_copy(update={"id": "x"}), Verdict.accept("format"))],
            )
        )


def test_chosen_samples_that_fail_verification_make_no_pair() -> None:
    chosen = samples("travel")[0]
    broken = perturb(chosen, "invented_argument")
    assert broken is not None
    assert list(build_pairs([broken])) == []


def test_pairs_from_real_xlam_rows() -> None:
    rows = list(read_samples(DATA / "formats" / "xlam_function_calling_60k.jsonl", "xlam"))
    pairs = list(build_pairs(rows, seed=0))
    assert pairs
    parents = {sample.id: sample for sample in rows}
    for pair in pairs:
        verdict = VERIFIER.verify(read_back(parents[pair.chosen_id], pair.rejected))
        assert verdict.reason == pair.reason and pair.reason in EXPECTED[pair.source]


def check_answer(messages: Any) -> None:
    """One assistant message: calls with object arguments, or text; never a tool result."""
    assert isinstance(messages, list) and len(messages) == 1
    (message,) = messages
    assert message["role"] == "assistant"
    assert isinstance(message["content"], str)
    for call in message.get("tool_calls", []):
        assert {"type", "function"} <= set(call) <= {"id", "type", "function"}
        assert call["type"] == "function"
        assert set(call["function"]) == {"name", "arguments"}
        assert isinstance(call["function"]["arguments"], dict)


@pytest.mark.parametrize("stream", [io.BytesIO(), io.StringIO()], ids=["binary", "text"])
def test_dpo_lines_have_trls_conversational_preference_shape(stream: io.IOBase) -> None:
    pairs = list(build_pairs(samples("travel"), seed=3))
    assert write_pairs(iter(pairs), stream) == len(pairs)  # type: ignore[arg-type]
    text = stream.getvalue()  # type: ignore[attr-defined]
    lines = (text.decode() if isinstance(text, bytes) else text).splitlines()
    assert len(lines) == len(pairs)
    for line, pair in zip(lines, pairs, strict=True):
        row = json.loads(line)
        assert list(row) == ["prompt", "chosen", "rejected", "tools"]
        assert row == dpo_row(pair)
        system, user = row["prompt"]
        chosen = by_id("travel")[pair.chosen_id]
        assert system == {"role": "system", "content": chosen.task_instruction}  # as hf rows
        assert "Available tools" not in system["content"]
        assert user == {"role": "user", "content": chosen.query}
        assert row["tools"] == [tool.openai() for tool in chosen.tools]
        check_answer(row["chosen"])
        check_answer(row["rejected"])
        assert row["chosen"] != row["rejected"]


def test_dpo_prompt_and_tools_are_the_sft_rows_own() -> None:
    """A sample's DPO prompt and tools are those of its `hf` row, and `chosen` is the turn that
    follows that prompt in the `hf` row."""
    parents = by_id("cookbook")
    pairs = list(build_pairs(samples("cookbook"), seed=6))
    assert pairs
    for pair in pairs:
        sft = conversation(parents[pair.chosen_id])
        assert sft.messages[: len(pair.prompt)] == pair.prompt
        assert sft.messages[len(pair.prompt)] == pair.chosen[0]
        assert sft.tools == pair.tools


def test_multi_step_pairs_compare_the_first_turn_without_results() -> None:
    """Chosen and rejected differ only in the assistant's answer: no tool results on either side,
    and a wrong later step (same first turn) makes no pair of its own."""
    original = samples("cookbook")[0]
    calls = original.steps[0].tool_calls
    first = Step(tool_calls=calls, results=[{"ok": True}] * len(calls))
    chosen = original.model_copy(update={"id": "two-steps", "steps": [first, Step(answer="Done.")]})
    entries = [
        {"type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in calls
    ]
    assert answer_messages(chosen) == [{"role": "assistant", "content": "", "tool_calls": entries}]
    later_mistake = chosen.model_copy(
        update={"id": "later", "steps": [first, Step(tool_calls=[ToolCall(name="nope")])]}
    )
    wrong_first = chosen.model_copy(
        update={"id": "wrong", "steps": [Step(tool_calls=[ToolCall(name="nope")])]}
    )
    (pair,) = build_pairs([chosen], rejected=[later_mistake, wrong_first], tools=chosen.tools)
    assert (pair.rejected_id, pair.source) == ("wrong", "rejected_sample")
    assert all(m["role"] == "assistant" for m in pair.chosen + pair.rejected)


def test_pair_ids_join_both_sides() -> None:
    (pair,) = build_pairs(samples("travel")[:1])
    assert isinstance(pair, PreferencePair)
    assert pair.id == f"{pair.chosen_id}|{pair.rejected_id}"
