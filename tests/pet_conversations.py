"""Conversations with the mock of OpenAPI's public "petstore-expanded" example: a pet is added
in the first turn, and the later turns use (or invent) the id only the first turn's result holds.

The first turn's result is what the catalog's mock API answers (the execution stage makes the
call), as a generator that talks to the mock records it.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from unified.catalogs import load_catalog
from unified.model import Sample, Step, Tool, ToolCall, Turn
from verifiers.stages import StageContext, build_stages, run_stages

ROOT = Path(__file__).resolve().parents[1]
PETSTORE_EXPANDED = ROOT / "tests" / "data" / "openapi" / "oai-v3.0-petstore-expanded.yaml"
ADDED = "Add a pet named Rex with the tag dog."


@cache
def petstore_tools() -> tuple[Tool, ...]:
    return tuple(load_catalog(PETSTORE_EXPANDED).tools)


def petstore_context() -> StageContext:
    return StageContext.for_catalog(petstore_tools())


@cache
def added_pet() -> Sample:
    """The first turn, with the mock API's answer to its call recorded in its steps."""
    sample = Sample(
        id="pet-talk",
        query=ADDED,
        steps=[
            Step(tool_calls=[ToolCall(name="addPet", arguments={"name": "Rex", "tag": "dog"})]),
            Step(answer="Rex is added."),
        ],
    )
    made = run_stages(build_stages(["execution"]), [sample], petstore_context()).samples[0]
    return made


def added_id() -> int:
    """The id the mock gave the pet: no user turn states it."""
    pet_id = added_pet().steps[0].results[0]["id"]
    assert isinstance(pet_id, int)
    return pet_id


def turn(query: str, name: str, pet_id: int) -> Turn:
    return Turn(
        query=query, steps=[Step(tool_calls=[ToolCall(name=name, arguments={"id": pet_id})])]
    )


def pet_conversation(*turns: Turn, sample_id: str = "pet-talk") -> Sample:
    """The first turn (pet added), then `turns`."""
    return added_pet().model_copy(update={"id": sample_id, "turns": list(turns)})


def shown_again(pet_id: int | None = None) -> Sample:
    """Turn 2 shows the pet by the id the first turn's result holds (or by `pet_id`)."""
    shown = turn("Show me that pet again, please.", "find_pet_by_id", pet_id or added_id())
    return pet_conversation(shown)


def deleted_then_shown() -> Sample:
    """The pet is shown, deleted, then asked for once more."""
    pet_id = added_id()
    return pet_conversation(
        turn("Show me that pet again, please.", "find_pet_by_id", pet_id),
        turn("Now delete that pet.", "deletePet", pet_id),
        turn("Show me that pet once more.", "find_pet_by_id", pet_id),
        sample_id="pet-gone",
    )
