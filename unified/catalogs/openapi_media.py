"""Request and response media types, and when a request body is a plain object whose
properties can become a tool's arguments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from unified.catalogs.openapi_schema import SchemaRoot

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_PLAIN_OBJECT_KEYS = frozenset(
    {"type", "properties", "required", "title", "description", "examples", "additionalProperties"}
)


@dataclass(frozen=True)
class Body:
    """A request body: its converted schema, whether it is required, its description, media
    type, and the argument name it takes when it is not merged."""

    schema: Any
    required: bool
    description: Any
    content_type: str
    name: str


def base_media_type(media_type: str) -> str:
    """`media_type` without parameters, in lower case."""
    return media_type.split(";", 1)[0].strip().lower()


def is_json(media_type: str) -> bool:
    """Whether `media_type` is JSON (`application/json`, `*/*+json`, ...)."""
    base = base_media_type(media_type)
    return base in ("application/json", "text/json") or base.endswith("+json")


def pick_media_type(content: dict[str, Any], *, request: bool) -> str | None:
    """The media type to use from a `content` map: JSON first, then (for requests) a form,
    then a wildcard; for requests, else the first one."""
    keys = [key for key in content if isinstance(key, str)]
    for accept in (
        is_json,
        lambda key: request and base_media_type(key) in FORM_TYPES,
        lambda key: base_media_type(key) in ("*/*", "application/*"),
    ):
        for key in keys:
            if accept(key):
                return key
    return keys[0] if request and keys else None


def object_properties(schema: Any, root: SchemaRoot) -> tuple[dict[str, Any], list[str]] | None:
    """The properties and required names of a plain object schema (or an allOf of them),
    else None."""
    schema = root.def_body(schema)
    if not isinstance(schema, dict) or schema.get("type", "object") != "object":
        return None
    parts = schema.get("allOf")
    if isinstance(parts, list) and set(schema) <= {"allOf", "type", "title", "description"}:
        properties: dict[str, Any] = {}
        required: list[str] = []
        for part in parts:
            found = object_properties(part, root)
            if found is None or set(found[0]) & set(properties):
                return None
            properties.update(found[0])
            required += found[1]
        return (properties, required) if properties else None
    if not set(schema) <= _PLAIN_OBJECT_KEYS or schema.get("additionalProperties") not in (
        None,
        False,
    ):
        return None
    own = schema.get("properties")
    if not isinstance(own, dict) or not own:
        return None
    return own, list(schema.get("required", []))
