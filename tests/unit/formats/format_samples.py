"""Hand-built unified samples covering every query style, thoughts, results, final answers,
few-shot examples, task and format instructions, and ids."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from unified.model import Example, QueryStyle, Sample, SampleMeta, Step, Tool, ToolCall, Turn

DATA = Path(__file__).resolve().parents[2] / "data" / "formats"
CREATED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _tool(name: str, description: str, **properties: dict[str, Any]) -> Tool:
    required = [key for key, schema in properties.items() if "default" not in schema]
    return Tool(
        name=name,
        description=description,
        parameters={"type": "object", "properties": properties, "required": required},
    )


WEATHER = _tool(
    "get_weather",
    "Current weather for a city.",
    city={"type": "string", "description": "City name."},
    unit={"type": "string", "description": "celsius or fahrenheit", "default": "celsius"},
)
FLIGHTS = _tool(
    "search_flights",
    "Find flights between two airports.",
    origin={"type": "string", "description": "IATA code of the departure airport."},
    destination={"type": "string", "description": "IATA code of the arrival airport."},
    max_stops={"type": "integer", "description": "Most stops allowed.", "default": 1},
)
HOTELS = _tool(
    "find_hotels",
    "Hotels in a city.",
    city={"type": "string", "description": "City name."},
    nights={"type": "array", "items": {"type": "integer"}, "description": "Nights wanted."},
)


def _meta(style: QueryStyle) -> SampleMeta:
    return SampleMeta(style=style, source="hand-built", generator="tests", created=CREATED)


def hand_built_samples() -> list[Sample]:
    """One sample per query style, plus few-shot examples, thoughts and instructions."""
    return [
        Sample(
            id="s-simple",
            task_instruction="You are a travel assistant.",
            format_instruction='Answer with JSON: {"answer": ...}.',
            tools=[WEATHER],
            query="What's the weather in Lisbon?",
            steps=[
                Step(
                    thought="I should look the weather up.",
                    tool_calls=[ToolCall(name="get_weather", arguments={"city": "Lisbon"})],
                    results=[{"temp_c": 21.5, "sky": "clear"}],
                ),
                Step(answer='{"answer": "21.5 °C and clear"}'),
            ],
            meta=_meta(QueryStyle.simple),
        ),
        Sample(
            id="s-multiple",
            task_instruction="Use the tools when they help.",
            tools=[WEATHER, FLIGHTS, HOTELS],
            query="Flights from LIS to JFK with no stops, please.",
            steps=[
                Step(
                    thought="",
                    tool_calls=[
                        ToolCall(
                            name="search_flights",
                            arguments={"origin": "LIS", "destination": "JFK", "max_stops": 0},
                            id="call_x1",
                        )
                    ],
                )
            ],
            meta=_meta(QueryStyle.multiple),
        ),
        Sample(
            id="s-parallel",
            tools=[WEATHER],
            query="Weather in Porto and in Faro?",
            steps=[
                Step(
                    tool_calls=[
                        ToolCall(name="get_weather", arguments={"city": "Porto"}, id="call_a"),
                        ToolCall(name="get_weather", arguments={"city": "Faro"}, id="call_b"),
                    ],
                    results=["rain, 14 °C", None],
                ),
                Step(answer="Porto: rain, 14 °C. Faro: no data."),
            ],
            meta=_meta(QueryStyle.parallel),
        ),
        Sample(
            id="42",
            tools=[FLIGHTS, HOTELS],
            query="Find a flight LIS to MAD and a hotel in Madrid for 2 or 3 nights.",
            steps=[
                Step(
                    tool_calls=[
                        ToolCall(
                            name="search_flights",
                            arguments={"origin": "LIS", "destination": "MAD"},
                            id="f1",
                        ),
                        ToolCall(
                            name="find_hotels",
                            arguments={"city": "Madrid", "nights": [2, 3]},
                            id="h1",
                        ),
                    ],
                    results=[[{"flight": "TP1016", "price": 89.0}], 3.5],
                )
            ],
            meta=_meta(QueryStyle.parallel_multiple),
        ),
        Sample(
            id="s-irrelevance",
            task_instruction="Only use the tools you are given.",
            tools=[HOTELS],
            query="Who won the 1998 World Cup?",
            steps=[Step(answer="None of my tools can answer that.")],
            meta=_meta(QueryStyle.irrelevance),
        ),
        Sample(
            id="s-few-shot",
            task_instruction="Follow the examples.",
            format_instruction="Call exactly one tool.",
            tools=[WEATHER],
            examples=[
                Example(
                    query="Weather in Rome?",
                    steps=[
                        Step(
                            tool_calls=[
                                ToolCall(name="get_weather", arguments={"city": "Rome"}, id="ex1")
                            ],
                            results=[{"temp_c": 25}],
                        ),
                        Step(answer="25 °C in Rome."),
                    ],
                ),
                Example(query="Say hi.", steps=[Step(answer="Hi!")]),
            ],
            query="Weather in Oslo, in fahrenheit?",
            steps=[
                Step(
                    tool_calls=[
                        ToolCall(
                            name="get_weather",
                            arguments={"city": "Oslo", "unit": "fahrenheit"},
                            id="call_q",
                        )
                    ],
                )
            ],
            meta=_meta(QueryStyle.simple),
        ),
    ]


def multi_turn_samples() -> list[Sample]:
    """Conversations: follow-up turns that end on an answer, on tool results, on calls, and a
    turn the assistant answers without a step."""
    return [
        Sample(
            id="s-multi-turn",
            task_instruction="You are a travel assistant.",
            tools=[FLIGHTS, HOTELS, WEATHER],
            query="Flights from LIS to OPO?",
            steps=[
                Step(
                    tool_calls=[
                        ToolCall(
                            name="search_flights",
                            arguments={"origin": "LIS", "destination": "OPO"},
                            id="call_f",
                        )
                    ],
                    results=[
                        [{"flight": "TP1940", "price": 59}, {"flight": "FR8341", "price": 23}]
                    ],
                ),
                Step(answer="TP1940 at 59 and FR8341 at 23."),
            ],
            turns=[
                Turn(
                    query="And hotels in Porto for the cheaper flight's night, 2 nights?",
                    steps=[
                        Step(
                            thought="Hotels for two nights.",
                            tool_calls=[
                                ToolCall(
                                    name="find_hotels",
                                    arguments={"city": "Porto", "nights": [2]},
                                    id="call_h",
                                )
                            ],
                            results=[{"hotels": ["Infante Sagres"]}],
                        )
                    ],
                ),
                Turn(query="Thanks!", steps=[Step(answer="Have a good trip.")]),
            ],
            meta=_meta(QueryStyle.multiple),
        ),
        Sample(
            id="s-multi-turn-refusal-first",
            tools=[WEATHER],
            query="Book me a table for two.",
            turns=[
                Turn(
                    query="Then the weather in Faro?",
                    steps=[
                        Step(
                            tool_calls=[
                                ToolCall(name="get_weather", arguments={"city": "Faro"}, id="w1")
                            ]
                        )
                    ],
                )
            ],
            meta=_meta(QueryStyle.irrelevance),
        ),
    ]
