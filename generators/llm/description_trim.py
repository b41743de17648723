"""Shorter tool texts for a prompt that does not fit: descriptions cut to their first sentence,
or left out, while every other keyword of a parameter schema (types, enums, required, formats,
bounds) stays as it is. Works on the `{name, description, parameters}` dicts the prompt templates
render; the sample's own tools are never touched."""

from __future__ import annotations

import re
from typing import Any

SHORT_DESCRIPTION_CHARS = 80
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")

# Keywords whose value is one subschema, a list of them, or a map of name -> subschema.
_ONE_SCHEMA = (
    "items",
    "additionalProperties",
    "not",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
)
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_MAPS = ("properties", "patternProperties", "dependentSchemas", "$defs", "definitions")


def short_text(text: str) -> str:
    """The first sentence of `text`, at most SHORT_DESCRIPTION_CHARS characters."""
    first = _SENTENCE_END.split(text.strip(), maxsplit=1)[0]
    if len(first) <= SHORT_DESCRIPTION_CHARS:
        return first
    return first[: SHORT_DESCRIPTION_CHARS - 3].rstrip() + "..."


def schema_descriptions(schema: Any, shorten: bool) -> Any:
    """A copy of `schema` whose descriptions, at every depth, are shortened (`shorten`) or left
    out; a property that is itself named `description` is kept."""
    if not isinstance(schema, dict):
        return schema
    copy: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "description" and isinstance(value, str):
            if shorten and value.strip():
                copy[key] = short_text(value)
        elif key in _ONE_SCHEMA:
            copy[key] = schema_descriptions(value, shorten)
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            copy[key] = [schema_descriptions(item, shorten) for item in value]
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            copy[key] = {name: schema_descriptions(sub, shorten) for name, sub in value.items()}
        else:
            copy[key] = value
    return copy


def with_parameter_descriptions(tool: dict[str, Any], shorten: bool) -> dict[str, Any]:
    """The tool with its parameters' descriptions shortened or left out."""
    if "parameters" not in tool:
        return tool
    return {**tool, "parameters": schema_descriptions(tool["parameters"], shorten)}


def with_tool_description(tool: dict[str, Any], shorten: bool) -> dict[str, Any]:
    """The tool with its own description shortened or left out (empty)."""
    description = tool.get("description") or ""
    return {**tool, "description": short_text(description) if shorten else ""}
