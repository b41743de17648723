import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unified import Sample, Step, Tool, ToolCall
from verifiers import FormatVerifier, Reason, Verdict

WEATHER = Tool(
    name="get_weather",
    description="Current weather in a city.",
    parameters={
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer", "minimum": 1, "maximum": 14},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "location": {
                "type": "object",
                "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}},
                "required": ["lat", "lon"],
            },
        },
        "required": ["city"],
    },
)
SEARCH = Tool(
    name="search",
    parameters={
        "type": "object",
        "properties": {"q": {"type": "string"}},
        "additionalProperties": {"type": "string"},
    },
)


def sample(*calls: ToolCall, tools: list[Tool] | None = None) -> Sample:
    return Sample(
        id="s1",
        query="What's the weather?",
        tools=[WEATHER, SEARCH] if tools is None else tools,
        steps=[Step(tool_calls=list(calls))] if calls else [],
    )


@pytest.fixture(scope="module")
def verifier() -> FormatVerifier:
    return FormatVerifier()


def test_valid_calls_are_accepted(verifier: FormatVerifier) -> None:
    verdict = verifier.verify(
        sample(
            ToolCall(name="get_weather", arguments={"city": "Paris", "unit": "celsius"}),
            ToolCall(name="get_weather", arguments={"city": "Oslo", "days": 3}),
        )
    )
    assert verdict == Verdict(accepted=True, stage="format")


def test_a_sample_that_calls_nothing_is_valid(verifier: FormatVerifier) -> None:
    verdict = verifier.verify(sample())
    assert verdict.accepted and verdict.reason is None


@pytest.mark.parametrize(
    ("call", "reason", "in_detail"),
    [
        (
            ToolCall(name="get_wether", arguments={"city": "Paris"}),
            Reason.unknown_tool,
            ["'get_wether'", "get_weather, search"],
        ),
        (
            ToolCall(name="get_weather", arguments={"unit": "celsius"}),
            Reason.missing_required_argument,
            ["'city' is a required property", "required"],
        ),
        (
            ToolCall(name="get_weather", arguments={"city": "Paris", "days": "three"}),
            Reason.argument_type_mismatch,
            ["argument 'days'", "'three' is not of type 'integer'", "type at /properties/days"],
        ),
        (
            ToolCall(name="get_weather", arguments={"city": "Paris", "unit": "kelvin"}),
            Reason.enum_violation,
            ["argument 'unit'", "'kelvin' is not one of", "enum at /properties/unit/enum"],
        ),
        (
            ToolCall(name="get_weather", arguments={"city": "Paris", "country": "FR"}),
            Reason.unexpected_argument,
            ["argument 'country' is not declared", "city, days, location, unit"],
        ),
        (
            ToolCall(name="get_weather", arguments='{"city": "Paris"'),
            Reason.arguments_not_json,
            ['{"city": "Paris"'],
        ),
        (
            ToolCall(name="get_weather", arguments="[1, 2]"),
            Reason.arguments_not_json,
            ["not a JSON object", "[1, 2]"],
        ),
        (
            ToolCall(name="get_weather", arguments={"city": "Paris", "days": 30}),
            Reason.schema_violation,
            ["argument 'days'", "30 is greater than the maximum of 14", "maximum"],
        ),
        (
            ToolCall(name="get_weather", arguments={"city": "Rome", "location": {"lat": 41.9}}),
            Reason.missing_required_argument,
            ["argument 'location'", "'lon' is a required property"],
        ),
    ],
)
def test_each_reason_code(
    verifier: FormatVerifier, call: ToolCall, reason: Reason, in_detail: list[str]
) -> None:
    verdict = verifier.verify(sample(call))
    assert not verdict.accepted
    assert verdict.stage == "format"
    assert verdict.reason == reason
    assert verdict.detail is not None
    for fragment in in_detail:
        assert fragment in verdict.detail


def test_the_first_bad_call_is_named(verifier: FormatVerifier) -> None:
    verdict = verifier.verify(
        sample(
            ToolCall(name="get_weather", arguments={"city": "Paris"}),
            ToolCall(name="get_weather", arguments={"city": 7}),
        )
    )
    assert verdict.reason == Reason.argument_type_mismatch
    assert verdict.detail is not None and verdict.detail.startswith("call 1 ('get_weather')")


def test_declared_additional_properties_allow_extra_arguments(verifier: FormatVerifier) -> None:
    ok = verifier.verify(sample(ToolCall(name="search", arguments={"q": "x", "lang": "en"})))
    bad = verifier.verify(sample(ToolCall(name="search", arguments={"q": "x", "page": 2})))
    assert ok.accepted
    assert bad.reason == Reason.argument_type_mismatch and "argument 'page'" in (bad.detail or "")


def test_string_formats_are_checked(verifier: FormatVerifier) -> None:
    tool = Tool(
        name="send",
        parameters={
            "type": "object",
            "properties": {"to": {"type": "string", "format": "email"}},
        },
    )
    good = sample(ToolCall(name="send", arguments={"to": "a@example.com"}), tools=[tool])
    bad = sample(ToolCall(name="send", arguments={"to": "not an address"}), tools=[tool])
    assert verifier.verify(good).accepted
    assert verifier.verify(bad).reason == Reason.schema_violation


def test_a_broken_tool_schema_is_a_reason_not_an_exception(verifier: FormatVerifier) -> None:
    tool = Tool(name="odd", parameters={"type": "object", "properties": {"x": {"type": "dict"}}})
    verdict = verifier.verify(sample(ToolCall(name="odd", arguments={"x": {}}), tools=[tool]))
    assert verdict.reason == Reason.invalid_tool_schema
    assert "not valid JSON Schema" in (verdict.detail or "")


def test_tools_can_come_from_a_catalog_instead_of_the_sample(verifier: FormatVerifier) -> None:
    s = sample(ToolCall(name="search", arguments={"q": "x"}), tools=[])
    assert verifier.verify(s).reason == Reason.unknown_tool
    assert verifier.verify(s, tools=[SEARCH]).accepted


def test_long_model_output_is_cut_in_the_detail(verifier: FormatVerifier) -> None:
    verdict = verifier.verify(sample(ToolCall(name="get_weather", arguments="x" * 10_000)))
    assert verdict.reason == Reason.arguments_not_json
    assert verdict.detail is not None and len(verdict.detail) <= 400


def test_validators_are_compiled_once_per_schema() -> None:
    verifier = FormatVerifier()
    calls = [ToolCall(name="get_weather", arguments={"city": c}) for c in ("A", "B", "C")]
    for call in calls:
        verifier.verify(sample(call))
    # Equal schemas in separately parsed samples share one compiled validator.
    copy = Tool.model_validate_json(WEATHER.model_dump_json())
    verifier.verify(sample(calls[0], tools=[copy]))
    assert len(verifier._cache) == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(["get_weather", "search", "nope", ""]),
    arguments=st.dictionaries(st.text(max_size=10), json_values, max_size=5) | st.text(max_size=40),
)
def test_never_raises_on_arbitrary_model_output(name: str, arguments: object) -> None:
    verdict = FormatVerifier().verify(sample(ToolCall(name=name, arguments=arguments)))
    assert verdict.stage == "format"
    assert verdict.accepted == (verdict.reason is None)
    if not verdict.accepted:
        assert verdict.reason in set(Reason)
