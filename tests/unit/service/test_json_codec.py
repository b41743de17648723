"""JSON columns: orjson where it can, the standard library where it cannot, the same values."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.db import json_codec

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_every_json_value_reads_back_as_the_standard_library_reads_it(value: object) -> None:
    text = json_codec.dumps(value)
    assert json_codec.loads(text) == json.loads(json.dumps(value)) == value


@pytest.mark.parametrize(
    "value",
    [{"big": 2**70}, {"negative": -(2**65)}, {"lone surrogate": "a\ud800b"}, ["\udfff"]],
)
def test_what_orjson_refuses_goes_the_standard_library_way(value: object) -> None:
    text = json_codec.dumps(value)
    assert text == json.dumps(value)
    assert json_codec.loads(text) == value


def test_nan_is_stored_as_null() -> None:
    assert json_codec.loads(json_codec.dumps({"x": float("nan")})) == {"x": None}
