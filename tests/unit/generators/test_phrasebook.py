"""Loading the generator's templates: the bundled set ships in the `templates` package, a user's
directory replaces it, and every mistake in a template is reported with its file and place."""

from __future__ import annotations

import random
import shutil
from importlib.resources import files
from pathlib import Path

import pytest

from generators.drafting.phrasing import make_ask
from generators.errors import TemplateError
from generators.template.phrasebook import TEMPLATE_VARIABLES, PhraseBook, bundled_templates_dir
from unified.model import QueryStyle, Tool

BUNDLED = bundled_templates_dir()
WEATHER = Tool(name="get_weather", description="Current weather in a city.")


def copy_bundled(tmp_path: Path) -> Path:
    target = tmp_path / "mine"
    shutil.copytree(BUNDLED, target)
    return target


def test_the_bundled_templates_ship_in_the_templates_package() -> None:
    package_dir = Path(str(files("templates")))
    assert package_dir / "template_generator" == BUNDLED
    assert {path.name for path in BUNDLED.glob("*.j2")} >= set(TEMPLATE_VARIABLES)


def test_the_bundled_templates_render_every_style() -> None:
    book = PhraseBook(BUNDLED)
    ask = make_ask(WEATHER, {"city": "Lisbon"}, {})
    rng = random.Random(1)
    for style in (QueryStyle.simple, QueryStyle.multiple, QueryStyle.parallel):
        query = book.query(style, [ask], rng)
        assert "Lisbon" in query and query[0].isupper()
    assert "Lisbon" in book.irrelevant_query(ask, rng)
    assert book.irrelevant_query(None, rng)
    assert book.refusal(["get_weather"], rng)
    assert book.task_instruction and book.format_instruction


def test_a_missing_directory_says_to_set_templates_dir(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(TemplateError) as caught:
        PhraseBook(missing)
    message = str(caught.value)
    assert message.startswith(f"{missing}: no such directory; set templates_dir")
    assert "simple.j2" in message


def test_a_missing_template_is_named(tmp_path: Path) -> None:
    directory = copy_bundled(tmp_path)
    (directory / "parallel.j2").unlink()
    with pytest.raises(TemplateError) as caught:
        PhraseBook(directory)
    assert str(caught.value).startswith(f"{directory / 'parallel.j2'}: template missing; add it")


def test_a_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    directory = copy_bundled(tmp_path)
    (directory / "simple.j2").write_text("line one\n{% if asks %}\nno endif\n")
    with pytest.raises(TemplateError) as caught:
        PhraseBook(directory)
    message = str(caught.value)
    assert message.startswith(f"{directory / 'simple.j2'}: line ")
    assert "fix the Jinja syntax there" in message


def test_an_unknown_variable_is_refused_when_loading(tmp_path: Path) -> None:
    directory = copy_bundled(tmp_path)
    (directory / "multiple.j2").write_text("{{ asks }} {{ user_name }}")
    with pytest.raises(TemplateError) as caught:
        PhraseBook(directory)
    assert str(caught.value) == (
        f"{directory / 'multiple.j2'}: variable 'user_name': the generator does not pass "
        "'user_name' to this template; use only the variables it is given: asks, choose"
    )


def test_a_partial_may_not_use_variables(tmp_path: Path) -> None:
    directory = copy_bundled(tmp_path)
    (directory / "_extra.j2").write_text("{{ choose }}")
    with pytest.raises(TemplateError, match=r"_extra\.j2: variable 'choose': .*given: none"):
        PhraseBook(directory)


def test_an_unknown_attribute_fails_the_render_with_file_and_line(tmp_path: Path) -> None:
    directory = copy_bundled(tmp_path)
    (directory / "simple.j2").write_text("Hello\n{{ asks[0].weather }}\n")
    book = PhraseBook(directory)
    ask = make_ask(WEATHER, {"city": "Lisbon"}, {})
    with pytest.raises(TemplateError) as caught:
        book.query(QueryStyle.simple, [ask], random.Random(0))
    message = str(caught.value)
    assert message.startswith(f"{directory / 'simple.j2'}: line 2: ")
    assert "has no attribute 'weather'" in message
    assert "use only the variables and attributes the generator passes (asks, choose)" in message


def test_an_error_inside_a_partial_names_the_partial(tmp_path: Path) -> None:
    directory = copy_bundled(tmp_path)
    phrases = directory / "_phrases.j2"
    phrases.write_text(phrases.read_text().replace("{{ part }}", "{{ part.nothing }}"))
    book = PhraseBook(directory)
    ask = make_ask(WEATHER, {"city": "Lisbon"}, {})
    with pytest.raises(TemplateError) as caught:
        book.query(QueryStyle.simple, [ask], random.Random(0))
    assert str(caught.value).startswith(f"{phrases}: line ")


def test_imports_must_name_an_existing_partial(tmp_path: Path) -> None:
    directory = copy_bundled(tmp_path)
    (directory / "simple.j2").write_text('{% from "_gone.j2" import x %}{{ x(asks) }}')
    with pytest.raises(TemplateError) as caught:
        PhraseBook(directory)
    assert str(caught.value) == (
        f"{directory / 'simple.j2'}: import of '_gone.j2': no such template in {directory}; "
        "add it or fix the name"
    )
    (directory / "simple.j2").write_text('{% import "parallel.j2" as p %}{{ asks }}')
    with pytest.raises(TemplateError, match="only partials whose names start with '_'"):
        PhraseBook(directory)
    (directory / "simple.j2").write_text("{% import asks as p %}")
    with pytest.raises(TemplateError, match="imports a template named by a variable"):
        PhraseBook(directory)


def test_a_template_that_is_not_utf8_is_reported(tmp_path: Path) -> None:
    directory = copy_bundled(tmp_path)
    (directory / "simple.j2").write_bytes(b"\xff\xfe{{ asks }}")
    with pytest.raises(TemplateError, match=r"simple\.j2: cannot read the template"):
        PhraseBook(directory)
