"""JSON Schema argument types written back as xLAM type names (`str`, `List[int]`, `int, optional`).

The forward direction is the xLAM catalog loader's (`unified.catalogs.functions.xlam_loader`,
types mapped by `unified.catalogs.pytypes`): an argument is required unless its type says
optional or it has a `default`. `xlam_type_name` is the inverse for the schemas that loader makes
from plain type names; the xLAM format keeps any other original type name beside the sample.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from unified.catalogs.pytypes import TypeExpressionError, type_string_schema

XLAM_ARGUMENT_KEYS = (
    "description",
    "default",
    "enum",
    "format",
    "minimum",
    "maximum",
    "pattern",
    "examples",
)
"""The keys of an xLAM argument, besides `type`, that the xLAM loader carries into the schema."""

_JSON_TO_PYTHON = {
    "string": "str",
    "integer": "int",
    "number": "float",
    "boolean": "bool",
    "array": "list",
    "object": "dict",
}


def xlam_type_name(schema: dict[str, Any], required: bool) -> str:
    """The xLAM type name of an argument schema; `, optional` marks an optional argument that has
    no default (a default alone already makes an xLAM argument optional)."""
    name = _python_name(schema)
    return name if required or "default" in schema else f"{name}, optional"


def _python_name(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "Any"
    json_type = schema.get("type")
    items = schema.get("items")
    if json_type == "array" and isinstance(items, dict) and items.get("type"):
        return f"List[{_python_name(items)}]"
    return _JSON_TO_PYTHON.get(json_type, "Any") if isinstance(json_type, str) else "Any"


@lru_cache(maxsize=4096)
def implied_by_type(type_name: str) -> dict[str, Any]:
    """The schema keys that an xLAM type name alone gives an argument (cached: do not change
    the returned mapping)."""
    try:
        return dict(type_string_schema(type_name).schema)
    except TypeExpressionError:
        return {}
