"""The grounding and coverage stages on samples written to hold or break one rule each, and on
real BFCL rows (tests/data/formats, sources in its SOURCES.md): their right answers pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unified.catalogs import load_catalog
from unified.formats import read_samples
from unified.model import Sample, Step, Tool, ToolCall
from verifiers.coverage import uncovered
from verifiers.grounding import ungrounded
from verifiers.query_sanity import QueryOptions, malformed
from verifiers.query_values import QueryText, dates_in, numbers_in
from verifiers.stages import StageContext, build_stages, run_stages

DATA = Path(__file__).resolve().parents[2] / "data" / "formats"

FLIGHTS = Tool(
    name="search_flights",
    description="Search flights.",
    parameters={
        "type": "object",
        "properties": {
            "origin": {"type": "string"},
            "destination": {"type": "string"},
            "date": {"type": "string", "format": "date"},
            "passengers": {"type": "integer", "default": 1},
            "cabin": {"type": "string", "enum": ["economy", "business", "first"]},
            "currency": {"type": "string"},
            "budget": {"type": "number", "description": "Most to pay; e.g. 250.5"},
            "direct": {"type": "boolean"},
        },
        "required": ["origin", "destination"],
    },
)


def sample(query: str, *calls: dict[str, Any], name: str = "search_flights") -> Sample:
    return Sample(
        id="s",
        query=query,
        tools=[FLIGHTS],
        steps=[Step(tool_calls=[ToolCall(name=name, arguments=args) for args in calls])],
    )


@pytest.mark.parametrize(
    ("query", "arguments"),
    [
        ("Flights from Lisbon to New York on May 3rd 2024", {"date": "2024-05-03"}),
        ("Flights from Lisbon to New York on 03/05/2024", {"date": "2024-05-03"}),
        ("Flights from lisbon to new-york tomorrow", {"date": "2031-01-01"}),
        ("Flights from Lisbon to New York for two", {"passengers": 2}),
        ("Flights from Lisbon to New York under 2,500 euros", {"budget": 2500, "currency": "EUR"}),
        ("Flights from Lisbon to New York under 2.5k", {"budget": 2500}),
        ("Flights from Lisbon to New York, business class", {"cabin": "business"}),
        ("Flights from Lisbon to New York", {"cabin": "economy"}),  # the query names no cabin
        ("Flights from Lisbon to New York", {"passengers": 1, "direct": True}),  # default, bool
        ("Flights from Lisbon to New York", {"budget": 250.5}),  # the description states it
        ("Flights from Lisbon to the U.S.", {"destination": "United States"}),
        ("Flights from Lisbon to New York in 3 hours", {"passengers": 180}),  # 3 h in minutes
        ("Flights from Lisbon to New York after 11 PM", {"passengers": 23}),  # clock hour
        ("Flights from Lisbon to New York for two dozen", {"passengers": 24}),
        ("Flights from Lisbon to New York, paid monthly", {"budget": 12}),
        ("Flights from Lisbon to New York at 50mA", {"budget": 0.05}),  # metric prefix
        ("Flights from Lisbon to New York on Feb 3 2025", {"date": "February 3 2025"}),
        ("Flights from Lisbon to New York, fares [200,300]", {"budget": 300}),  # a list
        ("Flights from Lisbon to New York next weekend", {"date": "2031-01-01"}),
        ("Flights from Lisbon to New York please", {"currency": "english"}),  # its language
    ],
)
def test_values_the_query_states_in_another_form_are_grounded(
    query: str, arguments: dict[str, Any]
) -> None:
    destination = "United States" if "U.S." in query else "New York"
    call = {"origin": "Lisbon", "destination": destination, **arguments}
    assert ungrounded(sample(query, call), [FLIGHTS]) is None


@pytest.mark.parametrize(
    ("query", "arguments", "named"),
    [
        ("Flights from Lisbon to Rome", {"destination": "2026-03-14"},
         'destination = "2026-03-14"'),
        ("Flights from Lisbon to Rome", {"destination": "Ci/"}, 'destination = "Ci/"'),
        ("Flights from Lisbon to Rome for 3", {"destination": "Rome", "passengers": 4}, "= 4"),
        ("Flights from Lisbon to Rome, first class", {"destination": "Rome", "cabin": "economy"},
         'cabin = "economy"'),
        ("Flights from Lisbon to Rome on May 3rd 2024", {"destination": "Rome",
         "date": "2024-05-04"}, 'date = "2024-05-04"'),
        # a relative date grounds dates only where the argument takes one
        ("Flights from Lisbon to Rome next weekend", {"destination": "2031-01-01"},
         'destination = "2031-01-01"'),
        ("Flights from Lisbon to Rome please", {"destination": "Rome", "currency": "french"},
         'currency = "french"'),
    ],
)  # fmt: skip
def test_a_value_the_query_does_not_state_is_named_with_its_call_and_argument(
    query: str, arguments: dict[str, Any], named: str
) -> None:
    why = ungrounded(sample(query, {"origin": "Lisbon", **arguments}), [FLIGHTS])
    assert why is not None
    assert why.startswith("call search_flights: argument ")
    assert named in why


def test_later_steps_may_take_values_from_earlier_results() -> None:
    first = ToolCall(name="search_flights", arguments={"origin": "Lisbon", "destination": "Rome"})
    book = ToolCall(name="book", arguments={"flight_id": "TP-842"})
    made = Sample(
        id="s",
        query="Book the first flight from Lisbon to Rome",
        tools=[FLIGHTS],
        steps=[
            Step(tool_calls=[first], results=[{"flights": [{"id": "TP-842"}]}]),
            Step(tool_calls=[book]),
        ],
    )
    assert ungrounded(made, [FLIGHTS]) is None
    unresulted = made.model_copy(
        update={"steps": [Step(tool_calls=[first]), Step(tool_calls=[book])]}
    )
    assert ungrounded(unresulted, [FLIGHTS]) is not None


def test_coverage_finds_a_missing_parallel_call_and_a_repeated_one() -> None:
    query = "Flights from Lisbon with budgets of 300, 450 and 600"
    calls = [{"origin": "Lisbon", "destination": "x", "budget": b} for b in (300, 450, 600)]
    assert uncovered(sample(query, *calls)) is None
    missing = uncovered(sample(query, *calls[:2]))
    assert missing is not None
    assert (missing[0], missing[1]) == (
        "query_value_unused",
        "the query states 600, which no call uses",
    )
    repeated = uncovered(sample(query, *calls, calls[0]))
    assert repeated is not None and repeated[0] == "duplicate_call"


def test_coverage_finds_a_listed_name_no_call_uses() -> None:
    query = "Flights from Lisbon to Berlin and Madrid"
    calls = [{"origin": "Lisbon", "destination": city} for city in ("Berlin", "Madrid")]
    assert uncovered(sample(query, *calls)) is None
    assert uncovered(sample(query, calls[0])) == (
        "query_value_unused",
        "the query lists 'Madrid' beside 'Berlin', which no call uses",
    )
    assert uncovered(sample("Flights from Lisbon to Paris, Rome and Oslo", calls[0])) is None
    listed = sample(
        "Flights from Lisbon to Paris, Rome and Oslo",
        *({"origin": "Lisbon", "destination": city} for city in ("Paris", "Oslo")),
    )
    missing = uncovered(listed)
    assert missing is not None and "'Rome'" in missing[1]
    # a region after a comma belongs to its place; clause words are not list items
    for query in (
        "Flights from Lisbon to Austin, Texas",
        "Flights from Lisbon to Berlin, Germany and more",
        "Flights from Lisbon to Berlin and I want a window seat",
    ):
        city = "Austin" if "Austin" in query else "Berlin"
        assert uncovered(sample(query, {"origin": "Lisbon", "destination": city})) is None


def test_a_call_tied_to_the_query_by_numbers_alone_is_an_extra_call() -> None:
    factorial = Tool(
        name="math.factorial",
        description="Factorial of a number.",
        parameters={"type": "object", "properties": {"number": {"type": "integer"}}},
    )
    made = Sample(
        id="s",
        query="What are the next five matches for Manchester United?",
        tools=[factorial],
        steps=[Step(tool_calls=[ToolCall(name="math.factorial", arguments={"number": 5})])],
    )
    assert uncovered(made) == (
        "extra_call",
        "call math.factorial is not asked for: its tool shares no word with the query, and it "
        "takes no value the query gives but numbers",
    )
    asked = made.model_copy(update={"query": "What is the factorial of five?"})
    assert uncovered(asked) is None
    multiplication = made.model_copy(update={"query": "Give me the factorials of 5, please"})
    assert uncovered(multiplication) is None


UBER = Path(__file__).resolve().parents[2] / "data" / "openapi" / "oai-v2.0-uber.json"


def test_the_digits_of_a_uuid_are_no_number_the_query_states() -> None:
    """A template sample on Uber's API (its `customer_uuid` is a `format: uuid` string): read
    as numbers, `23e81310-...` and `...-5723262e3479` were infinite, and no call "used" inf."""
    tools = load_catalog(UBER).tools
    uuids = [
        "23e81310-6236-4585-ab4b-1a82d1fd9a56",
        "ed7fde98-47a8-4196-bc31-6023a2f5c772",
        "ff29f7b3-0aad-4428-a615-5723262e3479",
    ]
    place = {"start_latitude": -32.0094, "start_longitude": 122.325}
    calls = [
        ToolCall(name="get_estimates_time", arguments={**place, "customer_uuid": uuid})
        for uuid in uuids
    ]
    made = Sample(
        id="299",
        query="I'd like to get time estimates with start latitude -32.0094, start longitude "
        f"122.325 and customer uuid {uuids[0]}, {uuids[1]} and {uuids[2]}.",
        tools=tools,
        steps=[Step(tool_calls=calls)],
    )
    assert uncovered(made, tools) is None
    one = made.model_copy(
        update={
            "query": f"Time estimates at start latitude -32.0094, start longitude 122.325 for "
            f"customer {uuids[2]}, please",
            "steps": [Step(tool_calls=calls[2:])],
        }
    )
    assert uncovered(one, tools) is None
    assert uncovered(one.model_copy(update={"query": "For 23e81310: " + one.query}), tools) is None
    # The numbers beside a UUID still count.
    dropped = ToolCall(
        name="get_estimates_time",
        arguments={"start_latitude": -32.0094, "customer_uuid": uuids[2]},
    )
    assert uncovered(one.model_copy(update={"steps": [Step(tool_calls=[dropped])]}), tools) == (
        "query_value_unused",
        "the query states 122.325, which no call uses",
    )


def test_coverage_spares_numbers_that_stand_alone_dates_and_counts() -> None:
    query = "I am 30 and fly on 2024-05-03: 2 flights from Lisbon, to Rome and Paris"
    calls = [{"origin": "Lisbon", "destination": city} for city in ("Rome", "Paris")]
    assert uncovered(sample(query, *calls)) is None


def test_query_values_in_their_forms() -> None:
    assert {2500.0, 15.0, 0.15, 2.0, 12.0} <= numbers_in("2,500 at 15% for two, a dozen")
    assert 180.0 in numbers_in("3 minutes")
    assert dates_in("on May 3rd 2024")  # month and day with the year
    assert (4, 3) in dates_in("from April 3rd")  # no year written: month and day
    text = QueryText("Flights to São Paulo for the Smith family")
    assert text.states_text("sao paulo") is False  # accents are kept: a different spelling
    assert text.states_text("São Paulo") and text.states_text("smith_family")


def test_real_bfcl_rows_pass_both_stages() -> None:
    samples: list[Sample] = []
    for name in ("simple", "parallel_multiple"):
        questions = DATA / f"bfcl_{name}_questions.jsonl"
        answers = DATA / f"bfcl_{name}_possible_answers.jsonl"
        with read_samples(questions, "bfcl", answers=answers) as reader:
            samples += list(reader)
    result = run_stages(build_stages(["format", "grounding", "coverage"]), samples, StageContext())
    assert [[v.detail for v in verdicts if not v.accepted] for verdicts in result.verdicts] == [
        [] for _ in samples
    ]


@pytest.mark.parametrize(
    ("query", "rule"),
    [
        ("{", "no_words"),
        ("[A-Z]{3}$", "no_words"),
        ("get_weather", "function_name"),
        ("searchFlights(origin='LIS')", "function_name"),
        ('{"origin": "LIS", "destination": "JFK", "date": 3}', "code_like"),
        ("Lisbon flights", "too_short"),
        (
            "Flights to Rome today. Flights to Rome today. Flights to Rome today.",
            "repeated_sentence",
        ),
    ],
)
def test_queries_that_do_not_read_as_requests_are_malformed_by_rule(query: str, rule: str) -> None:
    found = malformed(query, QueryOptions())
    assert found is not None and found.startswith(f"{rule}: ")


@pytest.mark.parametrize(
    "query",
    [
        "What is the binary sum of 10010 and 11101?",
        "list c drive",
        "ช่วยหาคุณแม่บ้านที่ให้บริการรีดผ้า.",  # Thai: no spaces between words
        "Give me 3 flights. Each flight must be direct. Each flight must be direct.",
        '{"response": "The image shows four logos of comic book heroes: Superman and Batman."}',
    ],
)
def test_real_requests_pass_the_query_stage(query: str) -> None:
    assert malformed(query, QueryOptions()) is None


def test_the_query_stage_checks_the_language_it_is_given() -> None:
    french = "Quels vols partent de Lisbonne pour Rome demain et pour combien ?"
    assert malformed(french, QueryOptions()) is None
    assert malformed(french, QueryOptions(language="English")) == (
        "wrong_language: reads as French, not English"
    )
    assert malformed(french, QueryOptions(language="french")) is None


def test_an_irrelevance_sample_whose_query_a_tool_fits_is_missing_a_call() -> None:
    weather = Tool(
        name="get_weather",
        description="Current weather and forecast for a city.",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}},
    )
    fits = Sample(id="s", query="What is the weather forecast in Lisbon?", tools=[weather])
    assert uncovered(fits) == (
        "missing_call",
        "tool get_weather fits the query, which no call makes; a sample calls nothing only when "
        "no offered tool fits",
    )
    unrelated = Sample(
        id="s", query="Write me a poem about the sea and its tides.", tools=[weather]
    )
    assert uncovered(unrelated) is None
    quadratic = Tool(
        name="solve_quadratic",
        description="Find the roots of a quadratic equation.",
        parameters={
            "type": "object",
            "properties": {n: {"type": "integer"} for n in "abc"},
            "required": ["a", "b", "c"],
        },
    )
    # the name's words are not all in the query, but it shares enough and states the values
    roots = Sample(
        id="s", query="Roots of the quadratic equation a=2, b=5, c=3?", tools=[quadratic]
    )
    found = uncovered(roots)
    assert found is not None and found[0] == "missing_call"
    flight = Sample(id="s", query="Can you find me a flight from Oslo to Madrid on Friday?")
    found = uncovered(flight.model_copy(update={"tools": [FLIGHTS]}))
    assert found is not None and found[0] == "missing_call"
    valueless = roots.model_copy(update={"query": "What makes an equation quadratic, roots aside?"})
    assert uncovered(valueless) is None
    # BFCL's irrelevance rows: tools close to the question that do not answer it.
    with read_samples(DATA / "bfcl_irrelevance_questions.jsonl", "bfcl") as reader:
        assert [uncovered(sample) for sample in reader] == [None, None]


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    query=st.text(max_size=200),
    arguments=st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=5) | st.text(max_size=20),
    described=st.booleans(),
)
def test_the_meaning_stages_give_every_sample_a_verdict_whatever_it_holds(
    query: str, arguments: dict[str, Any] | str, described: bool
) -> None:
    tool = Tool(
        name="do_it",
        description="Does it for a city." if described else "",
        parameters={"type": "object", "properties": {"city": {"type": "string", "enum": ["x"]}}},
    )
    made = Sample(
        id="s",
        query=query,
        tools=[tool],
        steps=[Step(tool_calls=[ToolCall(name="do_it", arguments=arguments)])],
    )
    bare = made.model_copy(update={"steps": []})
    stages = build_stages(["query", "grounding", "coverage"])
    for stage in stages:
        verdicts = stage.verify_batch([made, bare], StageContext())
        assert len(verdicts) == 2
        assert all(v.accepted or (v.reason and v.detail) for v in verdicts)
