"""The template generator on every real catalog in the test data: every sample it makes passes the
format verifier, in every style, and each style has the shape its name promises (conversations
drafted with the catalog's mock API: a value a follow-up takes from a result is in that result)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from generators.base import GenerationRequest
from generators.template.generator import STYLES, TemplateGenerator
from generators.wrong_answers import leaves
from service.pipeline.tool_api import MockToolApi
from unified.catalogs import Catalog, load_catalog
from unified.errors import CatalogError
from unified.formats.base import infer_style
from unified.model import QueryStyle, Sample
from verifiers import FormatVerifier

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "data"
NOT_LOADABLE = {
    # Both point with $ref into files beside them, which a single-document catalog cannot read.
    "oai-v2.0-petstore-separate.yaml",
    "openapi-spec-validator-v2.0-missing-reference.yaml",
}
CATALOGS = [
    *sorted(
        path
        for folder in ("openapi", "functions", "python")
        for path in (DATA / folder).iterdir()
        if path.suffix in {".yaml", ".yml", ".json", ".py"}
    ),
    ROOT / "examples" / "travel_api.yaml",
]
LOADABLE = [path for path in CATALOGS if path.name not in NOT_LOADABLE]


@cache
def catalog(path: Path) -> Catalog:
    return load_catalog(path)


@cache
def generator() -> TemplateGenerator:
    return TemplateGenerator(tool_api=MockToolApi)


def argument_texts(value: Any) -> list[str]:
    """What a query must contain for an argument value (flags are phrased, not quoted)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, int | float):
        return [json.dumps(value)]
    if isinstance(value, list) and all(
        isinstance(item, str | int | float) and not isinstance(item, bool) for item in value
    ):
        return [text for item in value for text in argument_texts(item)]
    return [json.dumps(value, ensure_ascii=False)]


def scalars(value: Any) -> list[Any]:
    return [scalar for _, scalar in leaves(value)]


def check_conversation(sample: Sample, names: list[str]) -> None:
    """Two or three turns of one call each; every value the user said in a turn so far, but
    the one a chained follow-up takes from the result before; answers between turns."""
    turns = sample.conversation()
    follow_ups = sample.meta.extra["follow_ups"]
    assert 2 <= len(turns) <= 3 and len(follow_ups) == len(turns) - 1
    said = ""
    results: list[Any] = []  # of the turns before: a value kept from a chain may come again
    for number, turn in enumerate(turns):
        said += " " + turn.query
        [call] = [call for step in turn.steps for call in step.tool_calls]
        assert call.name in names and isinstance(call.arguments, dict)
        taken = None
        if number:
            follow_up = follow_ups[number - 1]
            assert follow_up["tool"] == call.name
            if follow_up["kind"] == "chain":
                taken = follow_up["argument"]
                earlier = [r for step in turns[number - 1].steps for r in step.results]
                assert call.arguments[taken] in scalars(earlier)
            else:
                assert follow_up["kind"] == "again"
        for name, value in call.arguments.items():
            if name == taken or value in results:
                continue
            for text in argument_texts(value):
                assert text in said, f"{text!r} not in {said!r}"
        results += scalars([r for step in turn.steps for r in step.results])
        if number < len(turns) - 1:
            assert len(turn.steps) == 2 and len(turn.steps[0].results) == 1
            assert turn.steps[1].answer
        else:
            assert len(turn.steps) == 1 and turn.steps[0].results == []


def check_shape(sample: Sample) -> None:
    style = sample.meta.style
    calls = sample.tool_calls()
    names = [tool.name for tool in sample.tools]
    assert len(names) == len(set(names)), "a sample shows each tool once"
    assert sample.query.strip() and sample.task_instruction and sample.format_instruction
    if style is QueryStyle.multi_turn:
        check_conversation(sample, names)
        return
    assert not sample.is_multi_turn()
    assert infer_style(calls, len(sample.tools)) == style
    if style is QueryStyle.simple:
        assert len(sample.tools) == 1 and len(calls) == 1
    elif style is QueryStyle.multiple:
        assert len(sample.tools) >= 2 and len(calls) == 1
    elif style is QueryStyle.parallel:
        assert len(calls) >= 2 and len({call.name for call in calls}) == 1
        assert len({json.dumps(call.arguments, sort_keys=True) for call in calls}) == len(calls)
    elif style is QueryStyle.parallel_multiple:
        assert len({call.name for call in calls}) >= 2
    else:
        assert style is QueryStyle.irrelevance
        assert calls == [] and sample.final_answer()
        assert sample.meta.extra["phrased_from"] not in names
    for call in calls:
        assert call.name in names
        assert isinstance(call.arguments, dict)
        for value in call.arguments.values():
            for text in argument_texts(value):
                assert text in sample.query, f"{text!r} not in {sample.query!r}"


def test_the_unloadable_catalogs_fail_on_purpose() -> None:
    for path in CATALOGS:
        if path.name in NOT_LOADABLE:
            with pytest.raises(CatalogError, match="points outside this document"):
                load_catalog(path)


@pytest.mark.parametrize("path", LOADABLE, ids=lambda path: path.name)
def test_every_sample_passes_the_format_verifier(path: Path) -> None:
    tools = catalog(path).tools
    verifier = FormatVerifier()
    requests = [GenerationRequest(n=200, seed=0, id_prefix="mix-")]
    requests += [
        GenerationRequest(n=25, seed=seed, styles={style: 1.0}, id_prefix=f"{style.value}-")
        for style in STYLES
        for seed in (1, 2)
    ]
    made = 0
    for request in requests:
        samples = generator().generate(tools, request)
        assert [s.id for s in samples] == [f"{request.id_prefix}{i}" for i in range(request.n)]
        for sample in samples:
            verdict = verifier.verify(sample)  # against the sample's own tools
            assert verdict.accepted, f"{sample.id}: {verdict.detail}"
            check_shape(sample)
            made += 1
    assert made == 200 + 25 * 2 * len(STYLES)


@pytest.mark.parametrize("style", STYLES, ids=lambda style: style.value)
def test_each_style_is_made_as_asked_where_the_catalog_allows(style: QueryStyle) -> None:
    tools = catalog(DATA / "functions" / "BFCL_v3_multiple.json").tools
    samples = generator().generate(tools, GenerationRequest(n=40, seed=4, styles={style: 1}))
    assert {sample.meta.style for sample in samples} == {style}
    assert {sample.meta.extra["requested_style"] for sample in samples} == {style.value}
