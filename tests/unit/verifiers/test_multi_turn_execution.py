"""Execution across turns with the default stages, on the mock of a real public catalog
(OpenAPI's petstore-expanded example): a second turn that uses the id only the first turn's
result holds is accepted and answered from the conversation's state; one that invents an id
is rejected with the reason recorded; a pet read after the conversation deleted it is gone."""

from __future__ import annotations

from pet_conversations import (
    added_id,
    added_pet,
    deleted_then_shown,
    pet_conversation,
    petstore_context,
    shown_again,
    turn,
)

from verifiers.stages import DEFAULT_STAGES, build_stages, run_stages
from verifiers.verdict import Reason

ALL_NO_LLM = [*DEFAULT_STAGES, "execution"]


def test_the_second_turn_uses_the_id_only_the_first_turns_result_holds() -> None:
    sample = shown_again()
    assert str(added_id()) not in sample.query + sample.turns[0].query
    result = run_stages(build_stages(ALL_NO_LLM), [sample], petstore_context())
    assert [(v.stage, v.accepted) for v in result.verdicts[0]] == [
        ("query", True),
        ("format", True),
        ("grounding", True),
        ("coverage", True),
        ("execution", True),
    ]
    made = result.samples[0]
    assert made.steps[0].results == added_pet().steps[0].results
    assert made.turns[0].steps[0].results == [{"id": added_id(), "name": "Rex", "tag": "dog"}]


def test_a_second_turn_that_invents_the_id_is_rejected_naming_the_turn() -> None:
    invented = added_id() + 17
    sample = shown_again(invented)
    result = run_stages(build_stages(ALL_NO_LLM), [sample], petstore_context())
    verdict = result.verdicts[0][-1]
    assert (verdict.stage, verdict.accepted, verdict.reason) == (
        "grounding",
        False,
        Reason.value_not_in_query,
    )
    assert verdict.detail is not None
    assert verdict.detail.startswith(f"turn 2: call find_pet_by_id: argument id = {invented} ")


def test_a_pet_the_conversation_deleted_is_gone_for_its_later_turns() -> None:
    result = run_stages(build_stages(ALL_NO_LLM), [deleted_then_shown()], petstore_context())
    verdict = result.verdicts[0][-1]
    assert (verdict.stage, verdict.accepted, verdict.reason) == (
        "execution",
        False,
        Reason.resource_not_found,
    )
    pet_id = added_id()
    assert verdict.detail == (
        f"turn 4, call 0 ('find_pet_by_id'): argument 'id' names the pet '{pet_id}', deleted by "
        "call 0 ('deletePet') of turn 3 earlier in this conversation; it is gone"
    )
    shown, deleted, gone = (later.steps[0].results for later in result.samples[0].turns)
    assert shown == [{"id": pet_id, "name": "Rex", "tag": "dog"}]
    assert deleted[0]["status"] == "ok"
    detail = verdict.detail.removeprefix("turn 4, ")
    assert gone == [
        {"error": {"reason": "resource_not_found", "detail": detail, "tool": "find_pet_by_id"}}
    ]


def test_a_single_turn_sample_is_run_as_before_each_call_on_its_own() -> None:
    """Deleting a pet and reading it in one turn: each call answers as the stateless mock."""
    pet_id = added_id()
    both = deleted_then_shown().turns[1:]
    one_turn = pet_conversation().model_copy(
        update={"steps": [*both[0].steps, *both[1].steps], "turns": []}
    )
    result = run_stages(build_stages(["execution"]), [one_turn], petstore_context())
    assert result.verdicts[0][-1].accepted
    assert result.samples[0].steps[1].results[0]["id"] == pet_id


def test_playing_the_same_conversation_twice_gives_the_same_results() -> None:
    pet_id = added_id()
    sample = pet_conversation(turn("Show me that pet again, please.", "find_pet_by_id", pet_id))
    first = run_stages(build_stages(["execution"]), [sample], petstore_context()).samples[0]
    again = run_stages(build_stages(["execution"]), [sample], petstore_context()).samples[0]
    assert first == again
