"""The LLM generator's prompt templates and seed examples: found, checked once, then rendered.

The bundled set is `templates/llm_generator/`. A user's `templates_dir` overrides it file by file:
a template (or `seed_examples.json`) the user's directory lacks comes from the bundled set, also
when a user template includes or imports it. Before any generation every template the generator
renders is parsed and its variables are checked against what the generator passes
(`TEMPLATE_VARIABLES`), including the variables of the partials it includes, so a typo fails
with the file, the variable and the known variables, before an engine starts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from generators.errors import GenerationError, TemplateError
from unified.model import QueryStyle

BUNDLED_PACKAGE = "templates"
BUNDLED_SUBDIR = "llm_generator"
SEED_EXAMPLES = "seed_examples.json"

STYLE_VARIABLES = frozenset(
    {"style", "tools", "call_tools", "min_calls", "max_calls", "left_out", "examples"}
)
TEMPLATE_VARIABLES: dict[str, frozenset[str]] = {
    "system.j2": frozenset({"purpose"}),
    "simple.j2": STYLE_VARIABLES,
    "multiple.j2": STYLE_VARIABLES,
    "parallel.j2": STYLE_VARIABLES,
    "parallel_multiple.j2": STYLE_VARIABLES,
    "irrelevance.j2": STYLE_VARIABLES,
    "instruction.j2": frozenset({"task", "domain", "constraints", "examples"}),
    "rephrase.j2": frozenset({"kind", "text", "tools"}),
    "respond.j2": frozenset({"instruction", "constraints"}),
    "task_instruction.j2": frozenset({"tool_format", "tools_text"}),
    "format_instruction.j2": frozenset({"call_format"}),
    "blueprint.j2": frozenset({"tools", "min_turns", "max_turns", "max_calls", "examples"}),
    "user_turn.j2": frozenset({"intent", "request", "details", "history"}),
    "assistant_turn.j2": frozenset({"tools", "history", "message"}),
    "assistant_answer.j2": frozenset({"history", "message", "calls"}),
}
"""Every template the generator renders and the variables it passes to each. Partials (names
starting with `_`) are checked against the variables of the templates that use them."""


def bundled_prompts_dir() -> Path:
    """The directory of the prompt templates that ship with ActionForge."""
    return Path(str(files(BUNDLED_PACKAGE).joinpath(BUNDLED_SUBDIR)))


class SeedCall(BaseModel):
    """A call in a seed example."""

    model_config = ConfigDict(extra="forbid")

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class SeedTool(BaseModel):
    """A tool as a seed example shows it: name and what it does."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""


class SeedExample(BaseModel):
    """A function-calling seed example: tools offered, query, calls, and (irrelevance) answer."""

    model_config = ConfigDict(extra="forbid")

    tools: list[SeedTool]
    query: str
    calls: list[SeedCall] = Field(default_factory=list)
    answer: str | None = None


class SeedInstruction(BaseModel):
    """An instruction-following seed example."""

    model_config = ConfigDict(extra="forbid")

    instruction: str
    constraints: list[str] = Field(default_factory=list)
    response: str


class SeedTurn(BaseModel):
    """A turn of a seed blueprint: what the user asks for and the calls that fulfil it."""

    model_config = ConfigDict(extra="forbid")

    request: str
    calls: list[SeedCall] = Field(min_length=1)


class SeedBlueprint(BaseModel):
    """A multi_turn seed example: tools offered, and the blueprint of a conversation."""

    model_config = ConfigDict(extra="forbid")

    tools: list[SeedTool]
    intent: str
    turns: list[SeedTurn] = Field(min_length=1)
    outcome: str


class SeedExamples(BaseModel):
    """The contents of `seed_examples.json`: examples per query style (blueprints for
    multi_turn), plus the kinds of tasks an instruction-following sample may ask for."""

    model_config = ConfigDict(extra="forbid")

    simple: list[SeedExample] = Field(default_factory=list)
    multiple: list[SeedExample] = Field(default_factory=list)
    parallel: list[SeedExample] = Field(default_factory=list)
    parallel_multiple: list[SeedExample] = Field(default_factory=list)
    irrelevance: list[SeedExample] = Field(default_factory=list)
    instruction: list[SeedInstruction] = Field(default_factory=list)
    multi_turn: list[SeedBlueprint] = Field(default_factory=list)
    instruction_tasks: list[str] = Field(min_length=1)

    def for_style(self, style: QueryStyle) -> list[dict[str, Any]]:
        """The seed examples of `style` as template data."""
        examples: list[Any] = getattr(self, style.value)
        return [example.model_dump(exclude_none=True) for example in examples]


def _json(value: Any, indent: int | None = None) -> str:
    # Jinja's own tojson escapes <, >, & and ' for HTML; prompts want plain JSON.
    return json.dumps(value, ensure_ascii=False, indent=indent)


class PromptSet:
    """The prompt templates of one directory (with the bundled ones behind it), loaded and
    checked; `render(name, variables)` gives the prompt text."""

    def __init__(self, directory: str | Path | None = None) -> None:
        bundled = bundled_prompts_dir()
        self.directory = Path(directory).resolve() if directory else bundled
        if not self.directory.is_dir():
            raise TemplateError(
                str(self.directory),
                None,
                "no such directory; set templates_dir to a directory of prompt templates "
                f"(any of {', '.join(sorted(TEMPLATE_VARIABLES))}; missing ones come from "
                f"{bundled})",
            )
        self._search = [self.directory] if self.directory == bundled else [self.directory, bundled]
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(path) for path in self._search]),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        self._env.filters["tojson"] = _json
        self._templates = {
            name: self._load(name, allowed) for name, allowed in TEMPLATE_VARIABLES.items()
        }
        self.seeds = self._load_seeds()

    def path_of(self, name: str) -> Path:
        """The file a template or data file named `name` is read from."""
        for directory in self._search:
            if (directory / name).is_file():
                return directory / name
        return self.directory / name

    def _load(self, name: str, allowed: frozenset[str]) -> jinja2.Template:
        self._check(name, allowed, name, set())
        try:
            return self._env.get_template(name)
        except jinja2.TemplateError as exc:  # checked above; kept for a clear message anyway
            raise TemplateError(str(self.path_of(name)), None, str(exc)) from None

    def _check(self, name: str, allowed: frozenset[str], user: str, seen: set[str]) -> None:
        """Parse `name` and check its variables against those passed to `user`, the template
        the generator renders; then the same for every template it includes or imports."""
        if name in seen:
            return
        seen.add(name)
        path = self.path_of(name)
        try:
            source = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise TemplateError(
                str(path),
                None,
                f"template missing (used by {user}); add it to {self.directory} "
                "or fix the name that refers to it",
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateError(str(path), None, f"cannot read the template: {exc}") from None
        try:
            tree = self._env.parse(source, name, str(path))
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                str(path), f"line {exc.lineno}", f"{exc.message}; fix the Jinja syntax there"
            ) from None
        unknown = sorted(meta.find_undeclared_variables(tree) - allowed)
        if unknown:
            given = ", ".join(sorted(allowed)) or "none"
            via = "" if name == user else f" (it is rendered as part of {user})"
            raise TemplateError(
                str(path),
                f"variable '{unknown[0]}'",
                f"the llm generator does not pass '{unknown[0]}' to this template{via}; "
                f"known variables: {given}",
            )
        for referenced in meta.find_referenced_templates(tree):
            if referenced is None:
                raise TemplateError(
                    str(path), None, "includes a template named by a variable; name it literally"
                )
            self._check(referenced, allowed, user, seen)

    def _load_seeds(self) -> SeedExamples:
        path = self.path_of(SEED_EXAMPLES)
        try:
            return SeedExamples.model_validate_json(path.read_bytes())
        except OSError as exc:
            raise GenerationError(f"{path}: cannot read the seed examples: {exc}") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = "/".join(str(part) for part in first["loc"]) or "the document"
            raise GenerationError(
                f"{path}: {where}: {first['msg']}; see the bundled {SEED_EXAMPLES} in "
                f"{bundled_prompts_dir()} for the expected shape"
            ) from None

    def render(self, name: str, variables: Mapping[str, Any]) -> str:
        """Render template `name`; `variables` must be exactly the ones it is declared with."""
        expected = TEMPLATE_VARIABLES[name]
        if set(variables) != expected:
            raise AssertionError(
                f"{name}: rendered with {sorted(variables)}, not {sorted(expected)}"
            )
        try:
            text = self._templates[name].render(dict(variables))
        except jinja2.UndefinedError as exc:
            raise TemplateError(
                str(self.path_of(name)),
                None,
                f"{exc.message}; use only the variables and attributes the generator passes "
                f"({', '.join(sorted(expected))})",
            ) from None
        return text.strip()
