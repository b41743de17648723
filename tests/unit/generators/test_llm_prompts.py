"""The LLM generator's prompt templates: bundled set, a user's directory overriding it file by
file, and the checks that refuse a template before any generation, naming file and variable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import llm.shared as shared
from generators.base import GenerationRequest
from generators.errors import GenerationError, TemplateError
from generators.llm.generator import LlmGenerator
from generators.llm.prompts import (
    SEED_EXAMPLES,
    STYLE_VARIABLES,
    TEMPLATE_VARIABLES,
    PromptSet,
    bundled_prompts_dir,
)
from llm.base import BackendConfig
from unified.model import QueryStyle, Tool

WEATHER = Tool(
    name="get_weather",
    description="Current weather for a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def style_variables(**more: Any) -> dict[str, Any]:
    tool = {
        "name": WEATHER.name,
        "description": WEATHER.description,
        "parameters": WEATHER.parameters,
    }
    values = {
        "style": "simple",
        "tools": [tool],
        "call_tools": ["get_weather"],
        "min_calls": 1,
        "max_calls": 1,
        "left_out": None,
        "examples": [],
    }
    return {**values, **more}


def test_the_bundled_set_loads_and_renders_every_style() -> None:
    prompts = PromptSet()
    assert prompts.directory == bundled_prompts_dir()
    for style in ("simple", "multiple", "parallel", "parallel_multiple", "irrelevance"):
        text = prompts.render(f"{style}.j2", style_variables(style=style))
        assert '"name": "get_weather"' in text
        assert "Reply with one JSON object" in text
    assert prompts.seeds.instruction_tasks
    for style in QueryStyle:
        assert prompts.seeds.for_style(style), style


def test_a_users_directory_overrides_the_bundled_templates_file_by_file(tmp_path: Path) -> None:
    (tmp_path / "simple.j2").write_text("Mine: call {{ call_tools[0] }}.")
    prompts = PromptSet(tmp_path)
    assert prompts.render("simple.j2", style_variables()) == "Mine: call get_weather."
    assert prompts.path_of("simple.j2") == tmp_path / "simple.j2"
    assert prompts.path_of("multiple.j2") == bundled_prompts_dir() / "multiple.j2"
    bundled = PromptSet().render("multiple.j2", style_variables(style="multiple"))
    assert prompts.render("multiple.j2", style_variables(style="multiple")) == bundled


def test_a_users_template_can_use_the_bundled_partials_and_its_own(tmp_path: Path) -> None:
    (tmp_path / "_mine.j2").write_text("{% macro shout(text) %}{{ text | upper }}{% endmacro %}")
    (tmp_path / "simple.j2").write_text(
        '{% from "_mine.j2" import shout %}{% from "_macros.j2" import tool_list %}'
        "{{ shout(call_tools[0]) }}\n{{ tool_list(tools) }}"
    )
    text = PromptSet(tmp_path).render("simple.j2", style_variables())
    assert text.startswith("GET_WEATHER\n{")


def test_an_unknown_variable_is_refused_with_the_file_and_the_known_ones(tmp_path: Path) -> None:
    (tmp_path / "parallel.j2").write_text("Call {{ tool_names }} {{ max_calls }} times.")
    with pytest.raises(TemplateError) as caught:
        PromptSet(tmp_path)
    message = str(caught.value)
    assert str(tmp_path / "parallel.j2") in message
    assert "variable 'tool_names'" in message
    assert "known variables: " + ", ".join(sorted(STYLE_VARIABLES)) in message


def test_a_partial_is_checked_against_the_templates_that_include_it(tmp_path: Path) -> None:
    (tmp_path / "_extra.j2").write_text("Remember {{ secret }}.")
    (tmp_path / "irrelevance.j2").write_text('{% include "_extra.j2" %} {{ tools }}')
    with pytest.raises(TemplateError) as caught:
        PromptSet(tmp_path)
    message = str(caught.value)
    assert str(tmp_path / "_extra.j2") in message
    assert "'secret'" in message and "rendered as part of irrelevance.j2" in message


def test_a_missing_include_names_the_template_and_who_uses_it(tmp_path: Path) -> None:
    (tmp_path / "rephrase.j2").write_text('{% include "_gone.j2" %}{{ text }}')
    with pytest.raises(
        TemplateError, match=r"_gone\.j2: template missing \(used by rephrase\.j2\)"
    ):
        PromptSet(tmp_path)


def test_a_syntax_error_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "respond.j2").write_text("{{ instruction }}\n{% for c in constraints %}\n")
    with pytest.raises(TemplateError, match=r"respond\.j2: line \d+: .*fix the Jinja syntax"):
        PromptSet(tmp_path)


def test_a_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="no such directory; set templates_dir"):
        PromptSet(tmp_path / "nope")


def test_seed_examples_can_be_replaced_and_are_checked(tmp_path: Path) -> None:
    bundled = json.loads((bundled_prompts_dir() / SEED_EXAMPLES).read_text())
    bundled["simple"] = [{"tools": [{"name": "mine"}], "query": "Q?", "calls": [{"name": "mine"}]}]
    (tmp_path / SEED_EXAMPLES).write_text(json.dumps(bundled))
    assert PromptSet(tmp_path).seeds.for_style(QueryStyle.simple)[0]["query"] == "Q?"
    bundled["simple"] = [{"tools": [], "query": 3}]
    (tmp_path / SEED_EXAMPLES).write_text(json.dumps(bundled))
    with pytest.raises(GenerationError, match=r"seed_examples\.json: simple/0/query: "):
        PromptSet(tmp_path)


def test_every_template_is_declared_with_the_variables_the_generator_passes() -> None:
    """The generator renders each template with exactly its declared variables (render()
    asserts it); a run over every style and augmentation renders all of them."""
    assert set(TEMPLATE_VARIABLES) == {p.name for p in bundled_prompts_dir().glob("[!_]*.j2")}


def test_templates_are_checked_before_any_backend_is_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded: list[BackendConfig] = []
    monkeypatch.setattr(shared, "load_backend", loaded.append)
    (tmp_path / "simple.j2").write_text("{{ toolz }}")
    request = GenerationRequest(n=2, options={"model": "m", "templates_dir": str(tmp_path)})
    with pytest.raises(TemplateError, match="'toolz'"):
        LlmGenerator().generate([WEATHER], request)
    assert loaded == []
