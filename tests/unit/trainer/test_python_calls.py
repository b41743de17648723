"""Calls written as Python (BFCL's prompted models) are read with `ast`, never run."""

from __future__ import annotations

import pytest

from trainer.python_calls import read_python_calls


def test_a_list_of_calls_with_dotted_names_and_literal_values() -> None:
    text = '[get_weather(city="Oslo", days=3), math.hcf(pair=(36, 24), opts={"a": [1.5]})]'
    assert read_python_calls(text) == [
        ("get_weather", {"city": "Oslo", "days": 3}),
        ("math.hcf", {"pair": [36, 24], "opts": {"a": [1.5]}}),
    ]


def test_one_call_without_brackets_and_in_a_code_fence() -> None:
    assert read_python_calls('get_time(zone="CET")') == [("get_time", {"zone": "CET"})]
    assert read_python_calls("```python\n[f(a=True)]\n```") == [("f", {"a": True})]


@pytest.mark.parametrize(
    "text",
    [
        "The weather in Oslo is mild.",
        "[f(1)]",  # positional arguments have no name to check
        "[f(a=b)]",  # a variable, not a literal
        "[f(a=__import__('os').getcwd())]",  # never evaluated
        "[f(**opts)]",
        "[f(a=1), 3]",
        "[f(a=1",
    ],
)
def test_anything_else_is_not_read(text: str) -> None:
    assert read_python_calls(text) is None
