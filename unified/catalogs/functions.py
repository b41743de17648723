"""JSON function lists as catalogs: OpenAI tools, xLAM tools and BFCL function docs.

Accepted documents (each loader reads one format; detection looks at the first entry whose
shape it recognises):

- OpenAI: a list of ``{"type": "function", "function": {name, description, parameters}}``,
  the Responses-API form ``{"type": "function", "name", "description", "parameters"}``, bare
  ``{name, description, parameters}`` objects whose parameters are a JSON Schema object, one such
  object alone, or a ``{"tools": [...]}`` / ``{"functions": [...]}`` wrapper. Parameters are kept
  as given.
- xLAM (function-calling-60k ``tools``): ``{name, description, parameters}`` where parameters is a
  flat mapping of argument -> ``{type, description, default}`` and ``type`` is a Python-ish type
  string mapped by `unified.catalogs.pytypes` (an unknown type name gives a permissive schema,
  text that is not a type expression at all is an error). An argument is required unless it has
  a ``default``, its type says optional (``Optional[...]``, ``..., optional``), or it says
  ``"required": false`` / ``"optional": true``. Dataset rows ``{id, query, answers, tools}``
  (``tools`` a JSON string or list) are accepted too.
- BFCL: ``{name, description, parameters: {"type": "dict", properties, required}}`` with BFCL
  types mapped recursively (``dict`` -> object, ``float`` -> number, ``tuple`` -> array, ``any``
  -> no type constraint, ...); a property marked ``"optional": true`` leaves ``required``. Question
  rows ``{id, question, function: [...]}``, usually one per line (JSON Lines), are accepted.

When functions come from dataset rows (BFCL questions, xLAM rows) the same function name often
recurs; the first definition of each name is kept and later ones are skipped. In a plain list a
repeated name is an error.

Places are JSON pointers (``/3``, ``/tools/3``, ``/3/function/0``); in a JSON Lines document they
start with the line number (``line 4 /function/0``). Pointers below an xLAM row's ``tools`` point
into the decoded JSON string.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

import orjson

from unified.catalogs.base import NOT_PARSED, CatalogDocument
from unified.catalogs.limits import JsonShape
from unified.catalogs.pytypes import TypeExpressionError, type_string_schema
from unified.errors import CatalogError
from unified.model import TOOL_NAME_PATTERN, Tool, ToolSource

_WRAPPER_KEYS = ("tools", "functions")
_SCHEMA_KEYWORDS = {"properties", "required", "additionalProperties", "description", "title"}
_XLAM_KEPT_KEYS = ("enum", "format", "minimum", "maximum", "pattern", "examples")
_BFCL_TYPES: dict[str, str | None] = {
    "dict": "object",
    "object": "object",
    "hashmap": "object",
    "map": "object",
    "integer": "integer",
    "int": "integer",
    "long": "integer",
    "short": "integer",
    "byte": "integer",
    "float": "number",
    "double": "number",
    "number": "number",
    "string": "string",
    "str": "string",
    "char": "string",
    "boolean": "boolean",
    "bool": "boolean",
    "array": "array",
    "arraylist": "array",
    "list": "array",
    "tuple": "array",
    "null": "null",
    "any": None,
}


@dataclass(frozen=True)
class _Where:
    """A place in the document: an optional JSON Lines line number and a JSON pointer."""

    line: int | None
    pointer: str

    def child(self, *tokens: object) -> _Where:
        escaped = (str(t).replace("~", "~0").replace("/", "~1") for t in tokens)
        return _Where(self.line, self.pointer + "".join("/" + t for t in escaped))

    def __str__(self) -> str:
        return f"line {self.line} {self.pointer}".strip() if self.line else self.pointer


@dataclass(frozen=True)
class _Entry:
    where: _Where
    value: Any
    from_rows: bool


def _fail(doc: CatalogDocument, where: _Where, message: str) -> CatalogError:
    return CatalogError(doc.name, str(where) or None, message)


# ---- detection -------------------------------------------------------------------------------


def _is_bfcl_row(item: dict[str, Any]) -> bool:
    return (
        isinstance(item.get("function"), list | dict)
        and ("question" in item or "id" in item)
        and item.get("type") != "function"
    )


def _is_xlam_row(item: dict[str, Any]) -> bool:
    return "tools" in item and "name" not in item and any(k in item for k in ("query", "answers"))


def _wrapped(item: dict[str, Any]) -> tuple[str, list[Any]] | None:
    if "name" in item:
        return None
    for key in _WRAPPER_KEYS:
        if isinstance(item.get(key), list):
            return key, item[key]
    return None


def _kind_of_entry(item: Any) -> str | None:
    """Which format one function entry (or row, or wrapper) is written in, if recognisable."""
    if not isinstance(item, dict):
        return None
    if _is_bfcl_row(item):
        return "bfcl"
    if _is_xlam_row(item):
        return "xlam"
    wrapped = _wrapped(item)
    if wrapped is not None:
        return _kind_of(wrapped[1])
    if item.get("type") == "function":
        return "openai"
    params = item.get("parameters")
    if params is None:
        return "openai" if "name" in item else None
    if not isinstance(params, dict):
        return None
    declared = params.get("type")
    if declared == "object":
        return "openai"
    if declared == "dict":
        return "bfcl"
    if isinstance(declared, str):
        return None
    if "properties" in params and set(params) <= _SCHEMA_KEYWORDS:
        return "openai"  # a JSON Schema missing its "type"; check_tool says what to add
    if all(isinstance(spec, dict) for spec in params.values()):
        return "xlam"
    return None


def _kind_of(data: Any) -> str | None:
    for item in data if isinstance(data, list) else [data]:
        kind = _kind_of_entry(item)
        if kind is not None:
            return kind
    return None


# ---- collecting entries ----------------------------------------------------------------------


def _row_lines(doc: CatalogDocument) -> list[int] | None:
    """Line numbers of the rows of a JSON Lines document (parsed by base into a list)."""
    if not isinstance(doc.data, list) or doc.text.lstrip()[:1] != "{":
        return None
    return [n for n, line in enumerate(doc.text.split("\n"), start=1) if line.strip()]


def _collect(doc: CatalogDocument) -> list[_Entry]:
    """Every function entry of the document, rows expanded, with its place."""
    data = doc.data
    if isinstance(data, dict):
        wrapped = _wrapped(data) if not (_is_bfcl_row(data) or _is_xlam_row(data)) else None
        if wrapped is not None:
            key, items = wrapped
            root = _Where(None, "")
            return [_Entry(root.child(key, i), item, False) for i, item in enumerate(items)]
        return _expand(doc, _Where(None, ""), data)
    lines = _row_lines(doc)
    entries: list[_Entry] = []
    for i, item in enumerate(data):
        where = _Where(lines[i], "") if lines and i < len(lines) else _Where(None, f"/{i}")
        entries.extend(_expand(doc, where, item))
    return entries


def _expand(doc: CatalogDocument, where: _Where, item: Any) -> list[_Entry]:
    if not isinstance(item, dict):
        return [_Entry(where, item, False)]
    if _is_bfcl_row(item):
        functions = item["function"]
        if isinstance(functions, dict):
            return [_Entry(where.child("function"), functions, True)]
        return [_Entry(where.child("function", j), f, True) for j, f in enumerate(functions)]
    if _is_xlam_row(item):
        tools = item["tools"]
        if isinstance(tools, str):
            try:
                tools = orjson.loads(tools)
            except orjson.JSONDecodeError as exc:
                raise _fail(
                    doc,
                    where.child("tools"),
                    f"'tools' is a JSON string that does not parse ({exc}); fix the JSON",
                ) from None
            JsonShape(doc.name, doc.limits).check(tools, str(where.child("tools")))
        if not isinstance(tools, list):
            raise _fail(
                doc,
                where.child("tools"),
                f"'tools' must be a list of functions, got {_kind_name(tools)}",
            )
        return [_Entry(where.child("tools", j), t, True) for j, t in enumerate(tools)]
    return [_Entry(where, item, False)]


def _kind_name(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    names |= {int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


# ---- the common part of every entry ----------------------------------------------------------


@dataclass(frozen=True)
class _Function:
    where: _Where
    name: str
    description: str
    parameters: Any


def _read_function(doc: CatalogDocument, entry: _Entry, *, nested_key: str | None) -> _Function:
    where, body = entry.where, entry.value
    if not isinstance(body, dict):
        raise _fail(
            doc,
            where,
            f"entry is {_kind_name(body)}, not an object; write each function as a JSON "
            "object with name, description and parameters",
        )
    if nested_key and body.get("type") == "function" and nested_key in body:
        body = body[nested_key]
        where = where.child(nested_key)
        if not isinstance(body, dict):
            raise _fail(doc, where, f"'{nested_key}' must be an object, got {_kind_name(body)}")
    name = body.get("name")
    if name is None:
        raise _fail(doc, where, "function has no 'name'; add the function's name")
    if not isinstance(name, str) or not re.match(TOOL_NAME_PATTERN, name):
        raise _fail(
            doc,
            where.child("name"),
            f"tool name {name!r} is not allowed: a name starts with a letter or '_', then up to "
            "127 letters, digits, '_', '.' or '-'; rename the function",
        )
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        raise _fail(
            doc,
            where.child("description"),
            f"'description' of '{name}' must be a string, got {_kind_name(description)}",
        )
    parameters = body.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise _fail(
            doc,
            where.child("parameters"),
            f"'parameters' of '{name}' must be an object, got {_kind_name(parameters)}; "
            "describe the arguments as a JSON object",
        )
    return _Function(where, name, description or "", parameters)


class _FunctionListLoader:
    kind: str = ""
    nested_key: str | None = None

    def detect(self, doc: CatalogDocument) -> bool:
        """Whether the first recognisable entry of the document is in this loader's format."""
        return doc.data is not NOT_PARSED and _kind_of(doc.data) == self.kind

    def load(self, doc: CatalogDocument) -> list[Tool]:
        """Every function of the document as a tool (first definition wins within rows)."""
        tools: list[Tool] = []
        row_names: set[str] = set()
        for entry in _collect(doc):
            function = _read_function(doc, entry, nested_key=self.nested_key)
            if entry.from_rows:
                if function.name in row_names:
                    continue
                row_names.add(function.name)
            tools.append(
                Tool(
                    name=function.name,
                    description=function.description,
                    parameters=self.parameters(doc, function),
                    source=ToolSource(
                        kind=self.kind, document=doc.name, place=str(entry.where) or None
                    ),
                )
            )
        if not tools:
            raise CatalogError(
                doc.name, None, f"no functions found; add at least one {self.kind} function"
            )
        return tools

    def parameters(self, doc: CatalogDocument, function: _Function) -> dict[str, Any]:
        raise NotImplementedError


# ---- OpenAI ----------------------------------------------------------------------------------


class OpenAILoader(_FunctionListLoader):
    """OpenAI tool definitions; parameters are already JSON Schema and are kept as given."""

    kind = "openai"
    nested_key = "function"

    def parameters(self, doc: CatalogDocument, function: _Function) -> dict[str, Any]:
        """The function's JSON Schema, or an empty object schema when it takes no arguments."""
        if function.parameters is None:
            return {"type": "object", "properties": {}}
        return copy.deepcopy(function.parameters)


# ---- xLAM ------------------------------------------------------------------------------------


class XlamLoader(_FunctionListLoader):
    """xLAM tools: a flat argument -> {type, description, default} mapping per function."""

    kind = "xlam"

    def parameters(self, doc: CatalogDocument, function: _Function) -> dict[str, Any]:
        """An object schema with one property per argument, Python-ish types mapped."""
        properties: dict[str, Any] = {}
        required: list[str] = []
        where = function.where.child("parameters")
        for argument, spec in (function.parameters or {}).items():
            at = where.child(argument)
            if not isinstance(spec, dict):
                raise _fail(
                    doc,
                    at,
                    f"argument '{argument}' of '{function.name}' must be an object with type, "
                    f"description and default, got {_kind_name(spec)}",
                )
            schema, optional = self._argument(doc, at, spec)
            properties[argument] = schema
            explicit = spec.get("required")
            if isinstance(explicit, bool):
                optional = not explicit
            if spec.get("optional") is True or "default" in spec:
                optional = True
            if not optional:
                required.append(argument)
        return {"type": "object", "properties": properties, "required": required}

    def _argument(
        self, doc: CatalogDocument, at: _Where, spec: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        declared = spec.get("type")
        schema: dict[str, Any] = {}
        optional = False
        if isinstance(declared, str):
            try:
                mapped = type_string_schema(declared)
            except TypeExpressionError as exc:
                raise _fail(
                    doc,
                    at.child("type"),
                    f"{exc}; write a Python type such as str, int, float, bool, List[str], "
                    "Dict[str, Any] or Optional[int]",
                ) from None
            schema, optional = dict(mapped.schema), mapped.optional
        elif declared is not None:
            raise _fail(
                doc,
                at.child("type"),
                f'\'type\' must be a string such as "str" or "List[int]", got '
                f"{_kind_name(declared)}",
            )
        for key in _XLAM_KEPT_KEYS:
            if key in spec:
                schema[key] = copy.deepcopy(spec[key])
        if isinstance(spec.get("description"), str):
            schema["description"] = spec["description"]
        if "default" in spec:
            schema["default"] = copy.deepcopy(spec["default"])
        return schema, optional


# ---- BFCL ------------------------------------------------------------------------------------


class BfclLoader(_FunctionListLoader):
    """BFCL function docs: JSON-Schema-like with BFCL's own type names."""

    kind = "bfcl"

    def parameters(self, doc: CatalogDocument, function: _Function) -> dict[str, Any]:
        """The parameters with BFCL types mapped to JSON Schema, recursively."""
        if function.parameters is None:
            return {"type": "object", "properties": {}}
        schema = self._schema(doc, function.where.child("parameters"), function.parameters)
        if "type" not in schema and "properties" in schema:
            schema["type"] = "object"
        return schema

    def _schema(self, doc: CatalogDocument, where: _Where, node: Any) -> dict[str, Any]:
        if not isinstance(node, dict):
            raise _fail(doc, where, f"a schema must be an object, got {_kind_name(node)}")
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "type":
                mapped = self._type(doc, where.child("type"), value)
                if mapped is not None:
                    out["type"] = mapped
            elif key == "properties":
                if not isinstance(value, dict):
                    raise _fail(
                        doc,
                        where.child("properties"),
                        f"'properties' must map names to schemas, got {_kind_name(value)}",
                    )
                out["properties"] = {
                    name: self._schema(doc, where.child("properties", name), sub)
                    for name, sub in value.items()
                }
            elif key in ("items", "additionalProperties") and isinstance(value, dict):
                out[key] = self._schema(doc, where.child(key), value)
            elif key == "items" and isinstance(value, list):
                out["prefixItems"] = [
                    self._schema(doc, where.child(key, i), sub) for i, sub in enumerate(value)
                ]
            elif key in ("optional", "required") and isinstance(value, bool):
                continue  # a per-property marker, applied to the parent's required list below
            else:
                out[key] = copy.deepcopy(value)
        if isinstance(node.get("properties"), dict):
            self._apply_markers(node["properties"], out)
        return out

    @staticmethod
    def _apply_markers(properties: dict[str, Any], out: dict[str, Any]) -> None:
        optional = {
            name
            for name, sub in properties.items()
            if isinstance(sub, dict)
            and (sub.get("optional") is True or sub.get("required") is False)
        }
        marked = [
            n for n, s in properties.items() if isinstance(s, dict) and s.get("required") is True
        ]
        required = out.get("required")
        if isinstance(required, list):
            kept = [n for n in required if n not in optional]
            out["required"] = kept + [n for n in marked if n not in kept]
        elif marked:
            out["required"] = marked

    @staticmethod
    def _type(doc: CatalogDocument, where: _Where, value: Any) -> str | list[str] | None:
        names = value if isinstance(value, list) else [value]
        mapped: list[str] = []
        for name in names:
            key = name.lower() if isinstance(name, str) else ""
            if key not in _BFCL_TYPES:
                raise _fail(
                    doc,
                    where,
                    f"type {name!r} is not a BFCL type; use one of dict, integer, float, "
                    "string, boolean, array, tuple or any",
                )
            json_type = _BFCL_TYPES[key]
            if json_type is None:
                return None  # "any": no type constraint
            if json_type not in mapped:
                mapped.append(json_type)
        return mapped[0] if len(mapped) == 1 else mapped


openai_loader = OpenAILoader()
xlam_loader = XlamLoader()
bfcl_loader = BfclLoader()
