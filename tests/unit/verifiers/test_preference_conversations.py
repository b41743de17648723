"""Preference pairs of multi-turn samples, on BFCL's real multi-turn rows: one pair per
conversation, on its final turn, with the earlier dialogue as the prompt (the start of the
sample's `hf` row); a real rejected conversation is used only when it is the same dialogue up to
the final turn."""

from __future__ import annotations

from real_unified_rows import bfcl_conversations

from generators.perturb import perturb
from service.export.preference import (
    answer_messages,
    build_pairs,
    final_turn_view,
    pair_prompt,
)
from unified.formats.hf import conversation
from unified.model import Sample, Step, ToolCall, Turn
from verifiers import FormatVerifier

VERIFIER = FormatVerifier()


def with_final_calls(sample: Sample, calls: list[ToolCall], sample_id: str) -> Sample:
    final = Turn(query=sample.turns[-1].query, steps=[Step(tool_calls=calls)])
    return sample.model_copy(update={"id": sample_id, "turns": [*sample.turns[:-1], final]})


def test_each_conversation_is_paired_on_its_final_turn_after_the_earlier_dialogue() -> None:
    samples = bfcl_conversations()
    assert all(sample.turns for sample in samples)
    pairs = list(build_pairs(samples, seed=0))
    assert [pair.chosen_id for pair in pairs] == [sample.id for sample in samples]
    for pair, sample in zip(pairs, samples, strict=True):
        sft = conversation(sample).messages
        assert sft[: len(pair.prompt)] == pair.prompt  # the DPO prompt starts the SFT row
        assert sft[len(pair.prompt)] == pair.chosen[0]
        assert pair.prompt[-1] == {"role": "user", "content": sample.turns[-1].query}
        users = [m["content"] for m in pair.prompt if m["role"] == "user"]
        assert users == [turn.query for turn in sample.conversation()]
        assert pair.chosen == answer_messages(final_turn_view(sample))
        final_calls = sample.turns[-1].steps[0].tool_calls
        assert [c["function"]["name"] for c in pair.chosen[0]["tool_calls"]] == [
            call.name for call in final_calls
        ]
        # The rejected side, read back as the final turn's answer, fails as the pair says.
        rejected_calls = [
            ToolCall(name=c["function"]["name"], arguments=c["function"]["arguments"])
            for c in pair.rejected[0]["tool_calls"]
        ]
        read_back = with_final_calls(sample, rejected_calls, "read-back")
        verdict = VERIFIER.verify(final_turn_view(read_back))
        assert (verdict.accepted, verdict.reason) == (False, pair.reason)
        assert pair.source.startswith("perturbation:") and pair.rejected_id.startswith(sample.id)


def test_a_rejected_conversation_with_the_same_earlier_dialogue_is_preferred() -> None:
    chosen = bfcl_conversations()[0]
    wrong_final = perturb(final_turn_view(chosen), "missing_argument")
    assert wrong_final is not None
    real = with_final_calls(chosen, wrong_final.steps[-1].tool_calls, "job-1-sample-9")
    (pair,) = build_pairs([chosen], rejected=[real])
    assert (pair.source, pair.rejected_id) == ("rejected_sample", "job-1-sample-9")
    assert pair.prompt == pair_prompt(chosen)
    assert pair.rejected == answer_messages(final_turn_view(real))


def test_a_rejected_conversation_that_went_wrong_earlier_is_passed_over() -> None:
    chosen = bfcl_conversations()[0]
    # The same final turn after a wrong first turn, and a wrong final turn after it too.
    earlier = chosen.model_copy(
        update={"id": "earlier", "steps": [Step(tool_calls=[ToolCall(name="nope")])]}
    )
    assert answer_messages(earlier) == answer_messages(chosen)
    wrong_both = with_final_calls(earlier, [ToolCall(name="nope")], "earlier-and-final")
    (pair,) = build_pairs([chosen], rejected=[earlier, wrong_both])
    assert pair.source.startswith("perturbation:")  # another prompt: neither is a candidate


def test_single_turn_pairs_keep_their_one_turn_prompt() -> None:
    sample = bfcl_conversations()[0]
    single = sample.model_copy(update={"turns": []})
    assert pair_prompt(single) == conversation(single).messages[: len(pair_prompt(single))]
    assert pair_prompt(single)[-1] == {"role": "user", "content": sample.query}
    assert final_turn_view(single) is single
