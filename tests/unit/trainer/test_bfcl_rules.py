"""BFCL's single-turn AST rules, one hand-written case per rule (no benchmark data)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from trainer.bfcl_rules import BfclInputError, check, checker_kind, normalise_string

WEATHER = {
    "name": "get_weather",
    "parameters": {
        "type": "dict",
        "required": ["city"],
        "properties": {
            "city": {"type": "string"},
            "country": {"type": "string"},
            "days": {"type": "integer"},
            "threshold": {"type": "float"},
            "metric": {"type": "boolean"},
            "hours": {"type": "array", "items": {"type": "integer"}},
            "levels": {"type": "array", "items": {"type": "float"}},
            "tags": {"type": "array", "items": {"type": "string"}},
            "filters": {"type": "dict"},
            "stops": {"type": "array", "items": {"type": "dict"}},
        },
    },
}
TIME = {
    "name": "get_time",
    "parameters": {
        "type": "object",
        "required": ["zone"],
        "properties": {"zone": {"type": "string"}, "offset": {"type": "number"}},
    },
}


def verdict(
    arguments: dict[str, Any], answer: dict[str, list[Any]], category: str = "simple"
) -> tuple[bool, str]:
    result = check(category, [WEATHER], [("get_weather", arguments)], [{"get_weather": answer}])
    return result.valid, result.reason


def test_strings_ignore_case_and_the_characters_bfcl_ignores() -> None:
    answer = {"city": ["New York, NY"]}
    assert verdict({"city": "new-york ny."}, answer) == (True, "valid")
    assert verdict({"city": "NEW_YORK*NY^"}, answer) == (True, "valid")
    assert verdict({"city": "New York!"}, answer) == (False, "value_error:string")
    assert normalise_string("It's A/B") == 'it"sab'


def test_any_acceptable_value_is_right() -> None:
    answer = {"city": ["London"], "country": ["Great Britain", "GB", "UK"]}
    assert verdict({"city": "London", "country": "GB"}, answer) == (True, "valid")
    assert verdict({"city": "London", "country": "England"}, answer)[1] == "value_error:string"


def test_optional_mark_lets_an_argument_be_left_out() -> None:
    answer = {"city": ["Oslo"], "days": [3, ""], "metric": [True]}
    assert verdict({"city": "Oslo", "metric": True}, answer) == (True, "valid")
    missing = verdict({"city": "Oslo", "days": 3}, answer)
    assert missing == (False, "simple_function_checker:missing_optional")


def test_required_arguments_come_from_the_schema() -> None:
    answer = {"city": ["", "Oslo"], "days": [3]}
    assert verdict({"days": 3}, answer) == (False, "simple_function_checker:missing_required")


def test_an_argument_the_possible_answer_lacks_is_unexpected() -> None:
    answer = {"city": ["Oslo"]}
    in_schema = verdict({"city": "Oslo", "days": 3}, answer)
    assert in_schema == (False, "simple_function_checker:unexpected_param")
    unknown = verdict({"city": "Oslo", "colour": "red"}, answer)
    assert unknown == (False, "simple_function_checker:unexpected_param")


def test_an_int_passes_for_a_float_at_top_level_only() -> None:
    assert verdict({"city": "Oslo", "threshold": 2}, {"city": ["Oslo"], "threshold": [2.0]}) == (
        True,
        "valid",
    )
    nested = verdict({"city": "Oslo", "levels": [1, 2]}, {"city": ["Oslo"], "levels": [[1.0, 2.0]]})
    assert nested == (False, "type_error:nested")


def test_a_float_never_passes_for_an_integer_nor_a_bool_for_an_int() -> None:
    answer = {"city": ["Oslo"], "days": [1]}
    assert verdict({"city": "Oslo", "days": 1.0}, answer) == (False, "type_error:simple")
    assert verdict({"city": "Oslo", "days": True}, answer) == (False, "type_error:simple")
    assert verdict({"city": "Oslo", "days": "1"}, answer) == (False, "type_error:simple")
    assert verdict({"city": "Oslo", "days": 2}, answer) == (False, "value_error:others")


def test_a_value_written_in_another_type_in_the_answer_is_compared_exactly() -> None:
    # BFCL's "variable": the possible answer gives a string for an integer argument
    answer = {"city": ["Oslo"], "days": ["num_days"]}
    assert verdict({"city": "Oslo", "days": "num_days"}, answer) == (True, "valid")
    assert verdict({"city": "Oslo", "days": "NUM_DAYS"}, answer) == (False, "value_error:others")


def test_lists_keep_their_order_and_normalise_string_items() -> None:
    answer = {"city": ["Oslo"], "tags": [["Rain", "Wind speed"]]}
    assert verdict({"city": "Oslo", "tags": ["rain", "wind-speed"]}, answer) == (True, "valid")
    reordered = verdict({"city": "Oslo", "tags": ["wind speed", "rain"]}, answer)
    assert reordered == (False, "value_error:list/tuple")
    either = {"city": ["Oslo"], "hours": [[1, 2], [2, 1]]}
    assert verdict({"city": "Oslo", "hours": [2, 1]}, either) == (True, "valid")


def test_the_optional_mark_accepts_an_empty_list() -> None:
    answer = {"city": ["Oslo"], "hours": ["", [1]]}
    assert verdict({"city": "Oslo", "hours": []}, answer) == (True, "valid")


def test_dicts_compare_key_by_key_with_normalised_values() -> None:
    answer = {"city": ["Oslo"], "filters": [{"kind": ["Snow"], "min": [1, ""]}]}
    assert verdict({"city": "Oslo", "filters": {"kind": "SNOW"}}, answer) == (True, "valid")
    extra = verdict({"city": "Oslo", "filters": {"kind": "snow", "max": 3}}, answer)
    assert extra == (False, "value_error:dict_key")
    wrong = verdict({"city": "Oslo", "filters": {"kind": "rain"}}, answer)
    assert wrong == (False, "value_error:dict_value")
    missing = verdict({"city": "Oslo", "filters": {"min": 1}}, answer)
    assert missing == (False, "value_error:dict_key")


def test_lists_of_dicts_compare_item_by_item() -> None:
    answer = {"city": ["Oslo"], "stops": [[{"name": ["Bergen"]}, {"name": ["Molde"]}]]}
    right = [{"name": "bergen"}, {"name": "Molde"}]
    assert verdict({"city": "Oslo", "stops": right}, answer) == (True, "valid")
    short = verdict({"city": "Oslo", "stops": right[:1]}, answer)
    assert short == (False, "value_error:list_dict_count")
    swapped = verdict({"city": "Oslo", "stops": right[::-1]}, answer)
    assert swapped == (False, "value_error:dict_value")


def test_simple_wants_exactly_one_call_of_the_right_function() -> None:
    answer = [{"get_weather": {"city": ["Oslo"]}}]
    one = ("get_weather", {"city": "Oslo"})
    assert check("simple", [WEATHER], [one, one], answer).reason == (
        "simple_function_checker:wrong_count"
    )
    renamed = check("simple", [WEATHER], [("weather", {"city": "Oslo"})], answer)
    assert renamed.reason == "simple_function_checker:wrong_func_name"
    as_text = check("simple", [WEATHER], [("get_weather", '{"city": ')], answer)
    assert as_text.reason == "simple_function_checker:arguments_not_object"


def test_multiple_finds_the_expected_tool_among_several() -> None:
    answer = [{"get_time": {"zone": ["CET"], "offset": [1.0, ""]}}]
    tools = [WEATHER, TIME]
    assert check("live_multiple", tools, [("get_time", {"zone": "cet"})], answer).valid
    # JSON Schema's "number" is BFCL's float: an int passes, a string does not
    assert check("multiple", tools, [("get_time", {"zone": "CET", "offset": 1})], answer).valid
    as_text = check("multiple", tools, [("get_time", {"zone": "CET", "offset": "1"})], answer)
    assert as_text.reason == "type_error:simple"
    wrong = check("multiple", tools, [("get_weather", {"city": "CET"})], answer)
    assert wrong.reason == "simple_function_checker:wrong_func_name"


def test_parallel_calls_match_in_any_order() -> None:
    answer = [
        {"get_weather": {"city": ["Oslo"]}},
        {"get_time": {"zone": ["CET"]}},
    ]
    calls = [("get_time", {"zone": "CET"}), ("get_weather", {"city": "Oslo"})]
    assert check("parallel_multiple", [WEATHER, TIME], calls, answer).valid
    assert check("parallel", [WEATHER, TIME], calls[:1], answer).reason == (
        "parallel_function_checker_no_order:wrong_count"
    )
    twice = [calls[0], calls[0]]
    assert check("parallel", [WEATHER, TIME], twice, answer).reason == (
        "parallel_function_checker_no_order:cannot_find_match"
    )


def test_parallel_matching_is_first_fit_as_in_bfcl() -> None:
    # the first expected call takes the first call that fits it ("Oslo"), which leaves nothing
    # for the second; a maximum matching would accept these calls
    answer = [
        {"get_weather": {"city": ["Oslo", "Bergen"]}},
        {"get_weather": {"city": ["Oslo"]}},
    ]
    calls = [("get_weather", {"city": "Oslo"}), ("get_weather", {"city": "Bergen"})]
    assert not check("parallel", [WEATHER], calls, answer).valid
    assert check("parallel", [WEATHER], calls[::-1], answer).valid


def test_categories() -> None:
    assert checker_kind("live_parallel_multiple") == "parallel"
    assert checker_kind("simple") == "simple"
    with pytest.raises(BfclInputError, match="unknown category 'irrelevance'"):
        checker_kind("irrelevance")


def test_questions_that_cannot_be_scored_raise() -> None:
    call = [("get_weather", {"city": "Oslo"})]
    with pytest.raises(BfclInputError, match="no offered tool"):
        check("simple", [WEATHER], call, [{"get_rain": {"city": ["Oslo"]}}])
    with pytest.raises(BfclInputError, match="list of acceptable values"):
        check("simple", [WEATHER], call, [{"get_weather": {"city": "Oslo"}}])
    odd = {"name": "f", "parameters": {"properties": {"x": {"type": "date"}}}}
    with pytest.raises(BfclInputError, match="type 'date'"):
        check("simple", [odd], [("f", {"x": "today"})], [{"f": {"x": ["today"]}}])


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"properties": ["x"]}, "`properties` object"),
        ({"properties": {}, "required": "x"}, "`required` list"),
        ({"properties": {"x": "string"}}, "argument 'x': the schema must be an object"),
        ({"properties": {"x": {"type": "array", "items": {"type": "set"}}}}, "'x[]': type 'set'"),
    ],
)
def test_tool_schemas_the_rules_cannot_read_raise_whatever_the_answer(
    parameters: dict[str, Any], message: str
) -> None:
    tool = {"name": "f", "parameters": parameters}
    for calls in ([], [("f", {})], [("g", {}), ("g", {})]):
        with pytest.raises(BfclInputError, match=re.escape(message)):
            check("simple", [tool], calls, [{"f": {}}])
