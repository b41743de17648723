"""The template generator's contract: deterministic samples, the style mix, fallbacks for catalogs
that cannot give a style, options and the errors for bad requests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from generators import GENERATORS
from generators.base import GenerationRequest
from generators.errors import GenerationError
from generators.template.generator import TemplateGenerator
from unified.catalogs import load_catalog
from unified.model import QueryStyle, Sample, Tool
from verifiers import FormatVerifier

ROOT = Path(__file__).resolve().parents[3]
TRAVEL = load_catalog(ROOT / "examples" / "travel_api.yaml").tools
GENERATOR = TemplateGenerator()
WEATHER = next(tool for tool in TRAVEL if tool.name == "get_weather")
NO_ARGUMENTS = Tool(name="ping", description="Check that the service answers.")


def without_created(samples: list[Sample]) -> list[dict[str, Any]]:
    dumped = [sample.model_dump(mode="json") for sample in samples]
    for row in dumped:
        del row["meta"]["created"]
    return dumped


def test_the_same_seed_gives_the_same_samples() -> None:
    request = GenerationRequest(n=60, seed=11)
    first = GENERATOR.generate(TRAVEL, request)
    again = TemplateGenerator().generate(TRAVEL, request)
    assert without_created(first) == without_created(again)


def test_a_pinned_created_time_makes_samples_identical_to_the_byte() -> None:
    request = GenerationRequest(n=20, seed=3, options={"created": "2026-01-31T12:00:00+00:00"})
    first = [s.to_json() for s in GENERATOR.generate(TRAVEL, request)]
    assert first == [s.to_json() for s in GENERATOR.generate(TRAVEL, request)]
    sample = GENERATOR.generate(TRAVEL, request)[0]
    assert sample.meta.created == datetime(2026, 1, 31, 12, tzinfo=UTC)


def test_created_without_a_zone_is_taken_as_utc() -> None:
    request = GenerationRequest(n=1, options={"created": "2026-01-31T12:00:00"})
    assert GENERATOR.generate(TRAVEL, request)[0].meta.created.tzinfo is UTC


def test_another_process_makes_the_same_samples() -> None:
    """Workers are separate processes with their own string-hash seeds."""
    script = (
        "import sys\n"
        "from generators.base import GenerationRequest\n"
        "from generators.template.generator import TemplateGenerator\n"
        "from unified.catalogs import load_catalog\n"
        "tools = load_catalog(sys.argv[1]).tools\n"
        "request = GenerationRequest(n=40, seed=6, options={'created': '2026-01-01T00:00:00Z'})\n"
        "for sample in TemplateGenerator().generate(tools, request):\n"
        "    print(sample.to_json())\n"
    )
    path = ROOT / "examples" / "travel_api.yaml"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    request = GenerationRequest(n=40, seed=6, options={"created": "2026-01-01T00:00:00Z"})
    here = [s.to_json() for s in GENERATOR.generate(load_catalog(path).tools, request)]
    assert done.stdout.splitlines() == here


def test_sample_i_does_not_depend_on_how_many_are_made() -> None:
    few = GENERATOR.generate(TRAVEL, GenerationRequest(n=10, seed=5, id_prefix="j-"))
    many = GENERATOR.generate(TRAVEL, GenerationRequest(n=100, seed=5, id_prefix="j-"))
    assert without_created(few) == without_created(many[:10])


def test_other_seeds_give_other_samples() -> None:
    one = GENERATOR.generate(TRAVEL, GenerationRequest(n=20, seed=1))
    two = GENERATOR.generate(TRAVEL, GenerationRequest(n=20, seed=2))
    assert [s.query for s in one] != [s.query for s in two]
    assert len({s.query for s in one}) >= 15, "queries vary within a request"


def test_the_order_of_the_style_weights_does_not_matter() -> None:
    forward = {QueryStyle.simple: 1.0, QueryStyle.parallel: 1.0}
    backward = dict(reversed(list(forward.items())))
    one = GENERATOR.generate(TRAVEL, GenerationRequest(n=30, seed=8, styles=forward))
    two = GENERATOR.generate(TRAVEL, GenerationRequest(n=30, seed=8, styles=backward))
    assert without_created(one) == without_created(two)


def test_the_style_mix_follows_the_weights() -> None:
    styles = {QueryStyle.simple: 0.5, QueryStyle.parallel: 0.3, QueryStyle.irrelevance: 0.2}
    samples = GENERATOR.generate(TRAVEL, GenerationRequest(n=1000, seed=9, styles=styles))
    counts = Counter(sample.meta.style for sample in samples)
    assert set(counts) == set(styles)
    for style, weight in styles.items():
        assert abs(counts[style] / 1000 - weight) < 0.05, counts


def test_samples_carry_meta_and_the_bundled_instructions() -> None:
    request = GenerationRequest(n=2, seed=42, id_prefix="job7-", styles={QueryStyle.simple: 1})
    sample = GENERATOR.generate([WEATHER], request)[1]
    assert sample.id == "job7-1"
    assert sample.meta.generator == "template"
    assert sample.meta.seed == 42
    assert sample.meta.extra == {"index": 1, "requested_style": "simple"}
    assert WEATHER.source is not None
    assert sample.meta.source == f"template:{WEATHER.source.document}"
    assert GENERATOR.generate([NO_ARGUMENTS], request)[0].meta.source == "template"
    assert "function" in sample.task_instruction
    assert '"tool_calls"' in sample.format_instruction


def test_sample_tools_are_copies_of_the_catalogs() -> None:
    request = GenerationRequest(n=1, styles={QueryStyle.simple: 1})
    sample = GENERATOR.generate([WEATHER], request)[0]
    shown = sample.tools[0]
    assert shown == WEATHER and shown is not WEATHER
    shown.parameters["properties"]["city"]["type"] = "integer"
    assert WEATHER.parameters["properties"]["city"]["type"] == "string"


def test_parallel_calls_vary_one_argument_and_the_query_lists_the_values() -> None:
    request = GenerationRequest(n=30, seed=2, styles={QueryStyle.parallel: 1})
    for sample in GENERATOR.generate([WEATHER], request):
        cities = [call.arguments["city"] for call in sample.tool_calls()]
        assert len(cities) >= 2
        if len(set(cities)) == len(cities):
            assert all(city in sample.query for city in cities)
            assert f" and {cities[-1]}" in sample.query


def test_one_tool_catalog_falls_back_and_records_the_style_made() -> None:
    expected = {
        QueryStyle.simple: QueryStyle.simple,
        QueryStyle.multiple: QueryStyle.simple,
        QueryStyle.parallel: QueryStyle.parallel,
        QueryStyle.parallel_multiple: QueryStyle.parallel,
        QueryStyle.irrelevance: QueryStyle.irrelevance,
    }
    for requested, made in expected.items():
        request = GenerationRequest(n=15, seed=1, styles={requested: 1})
        samples = GENERATOR.generate([WEATHER], request)
        assert {s.meta.style for s in samples} == {made}, requested
        assert {s.meta.extra["requested_style"] for s in samples} == {requested.value}


def test_irrelevance_with_one_tool_asks_something_off_topic() -> None:
    request = GenerationRequest(n=10, seed=3, styles={QueryStyle.irrelevance: 1})
    for sample in GENERATOR.generate([WEATHER], request):
        assert [tool.name for tool in sample.tools] == ["get_weather"]
        assert sample.meta.extra["phrased_from"] is None
        assert sample.tool_calls() == [] and sample.final_answer()
        assert "weather" not in sample.query.lower()


def test_irrelevance_phrased_from_a_tool_leaves_that_tool_out() -> None:
    request = GenerationRequest(n=60, seed=3, styles={QueryStyle.irrelevance: 1})
    phrased = 0
    for sample in GENERATOR.generate(TRAVEL, request):
        source = sample.meta.extra["phrased_from"]
        if source is not None:
            phrased += 1
            assert source not in [tool.name for tool in sample.tools]
    assert phrased >= 30


def test_a_tool_without_arguments_cannot_be_called_in_parallel() -> None:
    request = GenerationRequest(n=10, seed=1, styles={QueryStyle.parallel: 1})
    samples = GENERATOR.generate([NO_ARGUMENTS], request)
    assert {s.meta.style for s in samples} == {QueryStyle.simple}
    assert all(s.tool_calls()[0].arguments == {} for s in samples)


def test_a_tool_whose_schema_cannot_be_met_is_never_called() -> None:
    impossible = Tool(
        name="impossible",
        description="Needs a number that does not exist.",
        parameters={
            "type": "object",
            "properties": {"n": {"type": "integer", "minimum": 10, "maximum": 1}},
            "required": ["n"],
        },
    )
    request = GenerationRequest(n=30, seed=1, styles={QueryStyle.simple: 1})
    samples = GENERATOR.generate([impossible, WEATHER], request)
    assert {call.name for s in samples for call in s.tool_calls()} == {"get_weather"}
    alone = GENERATOR.generate([impossible], request)
    assert {s.meta.style for s in alone} == {QueryStyle.irrelevance}
    assert all(FormatVerifier().verify(s).accepted for s in samples + alone)


def test_templates_dir_can_be_given_to_the_constructor_or_the_request(tmp_path: Path) -> None:
    bundled = ROOT / "templates" / "template_generator"
    for source in bundled.iterdir():
        (tmp_path / source.name).write_text(source.read_text())
    (tmp_path / "simple.j2").write_text(
        '{% from "_phrases.j2" import ask_text %}CUSTOM: {{ ask_text(asks[0], choose) }}'
    )
    request = GenerationRequest(n=5, styles={QueryStyle.simple: 1})
    mine = TemplateGenerator(templates_dir=tmp_path).generate(TRAVEL, request)
    assert all(s.query.startswith("CUSTOM: ") for s in mine)
    with_option = request.model_copy(update={"options": {"templates_dir": str(tmp_path)}})
    assert [s.query for s in GENERATOR.generate(TRAVEL, with_option)] == [s.query for s in mine]
    assert not any(s.query.startswith("CUSTOM") for s in GENERATOR.generate(TRAVEL, request))


def test_the_registry_names_the_template_generator() -> None:
    generator_class = GENERATORS.get("template")
    assert generator_class is TemplateGenerator
    samples = generator_class().generate(TRAVEL, GenerationRequest(n=3))
    assert len(samples) == 3


@pytest.mark.parametrize(
    ("request_fields", "message"),
    [
        (
            {"options": {"temperature": 0.7}},
            "template generator: unknown option 'temperature'; known options: templates_dir, "
            "created",
        ),
        (
            {"options": {"created": "yesterday"}},
            "option 'created' is 'yesterday', not an ISO 8601 date-time; give one like",
        ),
        (
            {"styles": {QueryStyle.instruction: 1.0, QueryStyle.simple: 1.0}},
            "template generator: cannot make 'instruction' samples; remove it from styles "
            "or give it weight 0 (it makes: simple, multiple, parallel, parallel_multiple, "
            "irrelevance, multi_turn)",
        ),
        (
            {"styles": {QueryStyle.simple: 0.0}},
            "template generator: give at least one style a weight above zero",
        ),
        (
            {"styles": {QueryStyle.simple: -1.0, QueryStyle.parallel: 2.0}},
            "template generator: style weights must be zero or more; fix the negative weight",
        ),
    ],
    ids=["unknown-option", "bad-created", "instruction", "no-weight", "negative-weight"],
)
def test_bad_requests_say_what_to_change(request_fields: dict[str, Any], message: str) -> None:
    request = GenerationRequest(n=1, **request_fields)
    with pytest.raises(GenerationError) as caught:
        GENERATOR.generate(TRAVEL, request)
    assert message in str(caught.value)


def test_an_empty_catalog_is_refused() -> None:
    with pytest.raises(GenerationError, match="the catalog has no tools; load a catalog"):
        GENERATOR.generate([], GenerationRequest(n=1))
