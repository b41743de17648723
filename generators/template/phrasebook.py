"""The template generator's Jinja templates: found, compiled and checked once, then rendered
into queries, refusals and instructions.

Templates are data: a directory with one file per query style plus a few more (see
`TEMPLATE_VARIABLES`). The bundled set lives in the top-level `templates` package; a user can
point the generator at a directory of their own. A template that uses a variable the generator
does not pass is refused when it is loaded, and a missing attribute fails the render with the
template's file and line.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from functools import cache
from importlib.resources import files
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
from jinja2 import meta

from generators.drafting.follow_ups import FollowUpAsk
from generators.drafting.phrasing import Ask
from generators.errors import TemplateError
from unified.model import QueryStyle

BUNDLED_PACKAGE = "templates"
BUNDLED_SUBDIR = "template_generator"

QUERY_VARIABLES = frozenset({"asks", "choose"})
TEMPLATE_VARIABLES: dict[str, frozenset[str]] = {
    "simple.j2": QUERY_VARIABLES,
    "multiple.j2": QUERY_VARIABLES,
    "parallel.j2": QUERY_VARIABLES,
    "parallel_multiple.j2": QUERY_VARIABLES,
    "irrelevance.j2": frozenset({"ask", "choose"}),
    "irrelevance_answer.j2": frozenset({"tool_names", "choose"}),
    "task_instruction.j2": frozenset(),
    "format_instruction.j2": frozenset(),
}
"""Every template the generator renders, and the variables it passes to each. Partials whose
names start with `_` (macros to import) are given no variables."""
FOLLOW_UP_TEMPLATES: dict[str, frozenset[str]] = {
    "multi_turn.j2": frozenset({"follow_up", "choose"}),
    "multi_turn_answer.j2": frozenset({"tool_names", "items", "choose"}),
}
"""The templates of a conversation's follow-up turns and of the answers between turns. A
directory of one's own made before they existed may lack them: then the bundled ones (with the
bundled partials) phrase the follow-ups."""


def bundled_templates_dir() -> Path:
    """The directory of the templates that ship with ActionForge."""
    return Path(str(files(BUNDLED_PACKAGE).joinpath(BUNDLED_SUBDIR)))


def _capfirst(text: Any) -> str:
    text = str(text)
    return text[:1].upper() + text[1:]


def _template_line(tb: TracebackType | None, filename: str) -> int | None:
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


class PhraseBook:
    """The templates of one directory, loaded and checked; renders with a sample's RNG."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory).resolve()
        if not self.directory.is_dir():
            raise TemplateError(
                str(self.directory),
                None,
                "no such directory; set templates_dir to a directory holding "
                f"{', '.join(sorted(TEMPLATE_VARIABLES))}",
            )
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.directory),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        self._env.filters["capfirst"] = _capfirst
        self._templates = {name: self._load(name, allowed) for name, allowed in _all_names(self)}
        self._follow_up_book: PhraseBook | None = self
        if any(not (self.directory / name).is_file() for name in FOLLOW_UP_TEMPLATES):
            self._follow_up_book = None  # the bundled book, loaded when first needed
        self.task_instruction = self._render("task_instruction.j2", {})
        self.format_instruction = self._render("format_instruction.j2", {})

    def _path(self, name: str) -> str:
        return str(self.directory / name)

    def _load(self, name: str, allowed: frozenset[str]) -> jinja2.Template:
        path = self._path(name)
        try:
            source = (self.directory / name).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise TemplateError(
                path,
                None,
                "template missing; add it (copy it from the bundled templates in "
                f"{bundled_templates_dir()}) or point templates_dir at a complete directory",
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateError(path, None, f"cannot read the template: {exc}") from None
        try:
            tree = self._env.parse(source, name, path)
            template = self._env.get_template(name)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                path, f"line {exc.lineno}", f"{exc.message}; fix the Jinja syntax there"
            ) from None
        unknown = sorted(meta.find_undeclared_variables(tree) - allowed)
        if unknown:
            given = ", ".join(sorted(allowed)) or "none (use only macros and literals)"
            raise TemplateError(
                path,
                f"variable '{unknown[0]}'",
                f"the generator does not pass '{unknown[0]}' to this template; "
                f"use only the variables it is given: {given}",
            )
        for referenced in meta.find_referenced_templates(tree):
            if referenced is None:
                raise TemplateError(
                    path, None, "imports a template named by a variable; name it literally"
                )
            if not referenced.startswith("_"):
                raise TemplateError(
                    path,
                    f"import of '{referenced}'",
                    "only partials whose names start with '_' can be imported",
                )
            if not (self.directory / referenced).is_file():
                raise TemplateError(
                    path,
                    f"import of '{referenced}'",
                    f"no such template in {self.directory}; add it or fix the name",
                )
        return template

    def _render(self, name: str, context: dict[str, Any]) -> str:
        template = self._templates[name]
        try:
            text = template.render(context)
        except jinja2.UndefinedError as exc:
            failing = _failing_template(exc, self.directory) or name
            line = _template_line(exc.__traceback__, self._path(failing))
            raise TemplateError(
                self._path(failing),
                f"line {line}" if line else None,
                f"{exc.message}; use only the variables and attributes the generator passes "
                f"({', '.join(sorted(context)) or 'none'})",
            ) from None
        return text.strip()

    def query(self, style: QueryStyle, asks: Sequence[Ask], rng: random.Random) -> str:
        """The query that asks for `asks` in the given style's phrasings."""
        return self._render(f"{style.value}.j2", {"asks": list(asks), "choose": _chooser(rng)})

    def irrelevant_query(self, ask: Ask | None, rng: random.Random) -> str:
        """A query for something the sample's tools cannot do: an ask of a left-out tool, or
        (with `ask` None) an off-topic request."""
        return self._render("irrelevance.j2", {"ask": ask, "choose": _chooser(rng)})

    def refusal(self, tool_names: Sequence[str], rng: random.Random) -> str:
        """The final answer of an irrelevance sample: no tool fits."""
        context = {"tool_names": list(tool_names), "choose": _chooser(rng)}
        return self._render("irrelevance_answer.j2", context)

    def follow_up(self, follow_up: FollowUpAsk, rng: random.Random) -> str:
        """The user's message of a follow-up turn."""
        context = {"follow_up": follow_up, "choose": _chooser(rng)}
        return self._follow_ups()._render("multi_turn.j2", context)

    def turn_answer(self, tool_names: Sequence[str], items: int | None, rng: random.Random) -> str:
        """The answer that closes a turn before the user's next one; `items`: how many things
        the turn's result lists (None when it is not a list)."""
        context = {"tool_names": list(tool_names), "items": items, "choose": _chooser(rng)}
        return self._follow_ups()._render("multi_turn_answer.j2", context)

    def _follow_ups(self) -> PhraseBook:
        if self._follow_up_book is None:
            self._follow_up_book = _bundled_book()
        return self._follow_up_book


@cache
def _bundled_book() -> PhraseBook:
    return PhraseBook(bundled_templates_dir())


def _all_names(book: PhraseBook) -> list[tuple[str, frozenset[str]]]:
    partials = sorted(
        path.name for path in book.directory.glob("_*.j2") if path.name not in TEMPLATE_VARIABLES
    )
    present = {
        name: allowed
        for name, allowed in FOLLOW_UP_TEMPLATES.items()
        if (book.directory / name).is_file()
    }
    named = sorted({**TEMPLATE_VARIABLES, **present}.items())
    return [(name, frozenset()) for name in partials] + named


def _failing_template(exc: BaseException, directory: Path) -> str | None:
    """The file name of the innermost template frame in the traceback (a partial, maybe)."""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith(str(directory)):
            found = Path(filename).name
        tb = tb.tb_next
    return found


def _chooser(rng: random.Random) -> Callable[[Sequence[Any]], Any]:
    def choose(items: Sequence[Any]) -> Any:
        return rng.choice(items) if items else ""

    return choose
