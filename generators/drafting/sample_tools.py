"""A catalog's tools made ready for generating: each with its argument sampler, its compiled
schema validator and its wording, plus which tools can be called and which are unrelated."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from generators.drafting.phrasing import Ask, first_sentence, make_ask
from unified.model import Tool
from unified.values.fakes import Fakes
from unified.values.schema_values import SchemaSampler, Unsatisfiable
from unified.values.value_kinds import name_words, word_set

ARGUMENT_ATTEMPTS = 12
"""Tries to sample arguments that pass a tool's schema before giving up on it for a sample."""
SIMILAR_OVERLAP = 0.5
"""Tools whose content words overlap this much (Jaccard) may do the same thing: an irrelevance
sample phrased from one does not show the other."""
PROBE_SEED = 20260101

_STOP_WORDS = word_set(
    """a an the of for to in on by with and or from at as is are be this that given specified
    specific it its into their your my our all any some get set"""
)
_WORD = re.compile(r"[A-Za-z]+")


class PreparedTool:
    """One tool with what generating needs: sampler, validator, wording and a JSON copy."""

    def __init__(self, tool: Tool) -> None:
        self.tool = tool
        self._json = tool.model_dump_json(by_alias=True)
        self.sampler = SchemaSampler(tool.parameters)
        self.document = tool.source.document if tool.source is not None else None
        properties = tool.parameters.get("properties")
        self.properties = properties if isinstance(properties, dict) else {}
        self.has_parameters = bool(self.properties)
        extra = tool.parameters.get("additionalProperties", False)
        self._open_ended = extra is not False or "patternProperties" in tool.parameters
        try:
            Draft202012Validator.check_schema(tool.parameters)
        except SchemaError:
            self._validator: Draft202012Validator | None = None
        else:
            self._validator = Draft202012Validator(
                tool.parameters, format_checker=Draft202012Validator.FORMAT_CHECKER
            )
        text = f"{' '.join(name_words(tool.name))} {first_sentence(tool.description)}"
        self.words = frozenset(w.lower() for w in _WORD.findall(text)) - _STOP_WORDS

    def copy(self) -> Tool:
        """A copy of the tool that shares nothing with the catalog's."""
        return Tool.model_validate_json(self._json)

    def sample_arguments(self, rng: random.Random) -> dict[str, Any]:
        """Arguments drawn from the parameters schema (not yet checked against it)."""
        return self.sampler.arguments(Fakes(rng))

    def valid_arguments(
        self, rng: random.Random, attempts: int = ARGUMENT_ATTEMPTS
    ) -> dict[str, Any] | None:
        """Arguments that pass the tool's schema, or None when `attempts` draws all failed."""
        if self._validator is None:
            return None
        for _ in range(attempts):
            try:
                arguments = self.sample_arguments(rng)
            except Unsatisfiable:
                continue
            if self.accepts(arguments):
                return arguments
        return None

    def property_value(self, name: str, rng: random.Random) -> Any:
        """A fresh value for one top-level argument."""
        return self.sampler.property_value(name, Fakes(rng))

    def accepts(self, arguments: Mapping[str, Any]) -> bool:
        """Whether the format verifier would accept a call with these arguments."""
        if self._validator is None:
            return False
        if not self._open_ended and any(name not in self.properties for name in arguments):
            return False
        try:
            return bool(self._validator.is_valid(arguments))
        except Exception:  # a schema the validator cannot apply, e.g. a broken $ref
            return False

    def can_vary(self, name: str, value: Any) -> bool:
        """Whether argument `name` could take other values in parallel calls."""
        schema = self.properties.get(name)
        if not isinstance(schema, dict) or "const" in schema:
            return False
        enum = schema.get("enum")
        if isinstance(enum, list) and len(enum) < 2:
            return False
        return isinstance(value, str | int | float) and not isinstance(value, bool)

    def ask(self, arguments: Mapping[str, Any], axis: Mapping[str, list[Any]]) -> Ask:
        """How a query asks for this call (see `generators.drafting.phrasing.make_ask`)."""
        return make_ask(self.tool, arguments, axis)

    def similar_to(self, other: PreparedTool) -> bool:
        """Whether the two tools may do the same thing (same description or many shared words)."""
        if self.tool.description and self.tool.description == other.tool.description:
            return True
        union = self.words | other.words
        if not union:
            return False
        return len(self.words & other.words) / len(union) >= SIMILAR_OVERLAP


class ToolCopies:
    """One copy of each catalog tool for the samples of one request: they share it (as the
    samples read from one file share their validated tools), and nothing with the catalog's;
    storing a batch then dumps each tool once (`unified.sample_json.SampleDumper`)."""

    def __init__(self) -> None:
        self._copies: dict[int, Tool] = {}

    def of(self, tool: PreparedTool) -> Tool:
        """This request's copy of `tool`."""
        copy = self._copies.get(id(tool))
        if copy is None:
            copy = self._copies[id(tool)] = tool.copy()
        return copy


class CatalogTools:
    """The tools of a catalog, prepared once; `callable` are those with arguments that pass
    their schema (found with a fixed seed, so the set does not depend on the request)."""

    def __init__(self, tools: Sequence[Tool]) -> None:
        self.tools = [PreparedTool(tool) for tool in tools]
        self.callable = [
            tool
            for tool in self.tools
            if tool.valid_arguments(random.Random(PROBE_SEED), attempts=ARGUMENT_ATTEMPTS * 2)
            is not None
        ]
        self._unrelated: dict[int, list[PreparedTool]] = {}

    def unrelated_to(self, source: PreparedTool) -> list[PreparedTool]:
        """The other tools that cannot serve a query phrased from `source`."""
        key = id(source)
        found = self._unrelated.get(key)
        if found is None:
            found = [t for t in self.tools if t is not source and not t.similar_to(source)]
            self._unrelated[key] = found
        return found


class CatalogToolsCache:
    """The `CatalogTools` of the last few catalogs a generator saw, keyed by their tools, so that
    the batches of one job index its catalog once per worker process."""

    def __init__(self, size: int = 8) -> None:
        self._size = size
        self._entries: dict[tuple[str, ...], CatalogTools] = {}

    def get(self, tools: Sequence[Tool]) -> CatalogTools:
        """The indexed catalog of `tools`, built on first use; the oldest entry goes first."""
        key = tuple(tool.model_dump_json() for tool in tools)
        catalog = self._entries.get(key)
        if catalog is None:
            if len(self._entries) >= self._size:
                self._entries.pop(next(iter(self._entries)))
            catalog = self._entries[key] = CatalogTools(tools)
        return catalog
