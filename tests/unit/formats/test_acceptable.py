"""A reference call's acceptable answers: derived from its one answer, read from and written as
BFCL's possible-answer shape without loss."""

from __future__ import annotations

from unified.acceptable import acceptable_of, bfcl_possible_answer, from_bfcl, to_bfcl
from unified.model import Acceptable, Sample, Step, ToolCall

# A possible answer of BFCL's shape with every kind of entry: alternatives, "may be left out",
# an object given field by field, a list of such objects.
OPTIONS = {
    "country": ["Great Britain", "GB"],
    "unit": ["", "km"],
    "filters": [{"colour": ["red", "crimson"], "size": ["", "L"]}],
    "rooms": [[{"beds": [2]}, {"beds": [1, ""]}]],
}


def test_bfcl_options_become_acceptable_values_per_argument() -> None:
    acceptable = from_bfcl(OPTIONS)
    assert acceptable["country"] == Acceptable(values=["Great Britain", "GB"])
    assert acceptable["unit"] == Acceptable(values=["km"], omittable=True)
    assert acceptable["filters"].objects == [
        {
            "colour": Acceptable(values=["red", "crimson"]),
            "size": Acceptable(values=["L"], omittable=True),
        }
    ]
    rooms = acceptable["rooms"].object_lists[0]
    assert rooms[1]["beds"] == Acceptable(values=[1], omittable=True)


def test_bfcl_options_survive_the_round_trip_up_to_where_the_omitted_mark_stands() -> None:
    back = to_bfcl(from_bfcl(OPTIONS))
    assert back == {
        "country": ["Great Britain", "GB"],
        "unit": ["km", ""],
        "filters": [{"colour": ["red", "crimson"], "size": ["L", ""]}],
        "rooms": [[{"beds": [2]}, {"beds": [1, ""]}]],
    }
    assert from_bfcl(back) == from_bfcl(OPTIONS)


def test_a_call_without_alternatives_accepts_exactly_its_arguments() -> None:
    call = ToolCall(
        name="book",
        arguments={"city": "Oslo", "nights": 2, "guest": {"name": "Ada"}, "tags": ["a"]},
    )
    assert to_bfcl(acceptable_of(call)) == {
        "city": ["Oslo"],
        "nights": [2],
        "guest": [{"name": ["Ada"]}],
        "tags": [["a"]],
    }
    listed = ToolCall(name="book", arguments={"city": "Oslo"}, acceptable=from_bfcl(OPTIONS))
    assert acceptable_of(listed) is listed.acceptable


def test_a_step_gives_its_possible_answer_and_the_field_survives_json() -> None:
    call = ToolCall(name="find", arguments={"country": "GB"}, acceptable=from_bfcl(OPTIONS))
    sample = Sample(id="s", query="q", steps=[Step(tool_calls=[call])])
    assert bfcl_possible_answer(sample.tool_calls()) == [{"find": to_bfcl(from_bfcl(OPTIONS))}]
    assert Sample.from_json(sample.to_json()) == sample
