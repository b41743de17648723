"""How queries word a call: the action from the description or name, the kind of phrase for each
argument, and arguments that take the place of a noun phrase in the description."""

from __future__ import annotations

import pytest

from generators.drafting.phrasing import Clause, action_text, clause_kind, make_ask, value_text
from unified.model import Tool


@pytest.mark.parametrize(
    ("name", "description", "action"),
    [
        ("f", "Calculates the area of a circle.", "calculate the area of a circle"),
        ("f", "Retrieves the weather. Uses a paid API.", "retrieve the weather"),
        ("f", "Returns pet inventories by status", "get pet inventories by status"),
        ("f", "Find pet by ID  Returns a single pet", "find pet by ID"),
        ("f", "Searches for tracks", "search for tracks"),
        (
            "f",
            "Current weather and forecast for a city.",
            "get current weather and forecast for a city",
        ),
        ("f", "This function creates a backup of the database.", "create a backup of the database"),
        ("f", "Updated user", "update user"),
        ("f", "Get Product Types", "get product types"),
        ("f", "**Lists** all `pets`", "list all pets"),
        ("findPetsByStatus", "", "find pets by status"),
        ("math.sum", "", "sum"),
        ("IATA_lookup", "", "get IATA lookup"),
        ("f", "x" * 200, "get f"),
    ],
)
def test_the_action_is_an_imperative_phrase(name: str, description: str, action: str) -> None:
    assert action_text(name, description) == action


@pytest.mark.parametrize(
    ("name", "value", "kind"),
    [
        ("city", "Lisbon", "place"),
        ("origin", "SFO", "origin"),
        ("from", "USD", "origin"),
        ("destination_airport", "JFK", "destination"),
        ("start_date", "2026-01-02", "start"),
        ("end", 50, "end"),
        ("start_latitude", 1.5, "named"),
        ("date", "2026-01-02", "date"),
        ("departure_time", "10:00", "time"),
        ("unit", "celsius", "unit"),
        ("language", "French", "language"),
        ("q", "jazz", "topic"),
        ("limit", 10, "limit"),
        ("passengers", 2, "count"),
        ("include_images", True, "flag"),
        ("weight", 72.5, "named"),
    ],
)
def test_each_argument_gets_a_fitting_kind_of_phrase(name: str, value: object, kind: str) -> None:
    assert clause_kind(name, value) == kind


def test_values_are_written_as_a_query_would() -> None:
    assert value_text("Lisbon") == "Lisbon"
    assert value_text(2.5) == "2.5"
    assert value_text(True) == "true"
    assert value_text([1, 2]) == "1, 2"
    assert value_text({"id": 1}) == '{"id": 1}'


def test_an_argument_replaces_the_noun_phrase_it_fills() -> None:
    tool = Tool(name="capital", description="Fetch the capital city of a specified country.")
    ask = make_ask(tool, {"country": "France"}, {})
    assert ask.parts[0] == "fetch the capital city of "
    clause = ask.parts[1]
    assert isinstance(clause, Clause) and clause.texts == ("France",)
    assert ask.phrases == () and ask.settings == ()


def test_other_arguments_become_phrases_or_settings() -> None:
    tool = Tool(name="search_flights", description="Search flights between two airports.")
    arguments = {"origin": "SFO", "destination": "JFK", "passengers": 2, "cabin": "economy"}
    ask = make_ask(tool, arguments, {})
    assert ask.parts == ("search flights between two airports",)
    assert [(c.kind, c.texts) for c in ask.phrases] == [
        ("origin", ("SFO",)),
        ("destination", ("JFK",)),
        ("count", ("2",)),
    ]
    assert [(c.words, c.texts) for c in ask.settings] == [("cabin", ("economy",))]


def test_a_varying_argument_lists_every_value() -> None:
    tool = Tool(name="get_weather", description="Current weather in a city.")
    ask = make_ask(tool, {"city": "Paris"}, {"city": ["Paris", "Oslo", "Rome"]})
    clause = ask.parts[1]
    assert isinstance(clause, Clause) and clause.texts == ("Paris", "Oslo", "Rome")
