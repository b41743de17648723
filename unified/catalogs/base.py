"""Reading a catalog document, picking its loader, and the checks every loaded tool must pass."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, Field

from unified.catalogs.enum_types import find_enum_mismatch
from unified.catalogs.json_keys import refuse_duplicate_keys
from unified.catalogs.limits import DEFAULT_LIMITS, DocumentLimits, JsonShape, too_deep
from unified.catalogs.safe_yaml import load_yaml
from unified.errors import CatalogError
from unified.model import Tool
from unified.registry import Registry

DEFAULT_MAX_BYTES = 20 * 1024 * 1024

NOT_PARSED: Any = object()
"""`CatalogDocument.data` of a document that is not JSON/YAML (a Python module)."""


@dataclass(frozen=True)
class CatalogDocument:
    """A catalog file as loaders see it: its name (for messages), text, and parsed JSON/YAML,
    the limits it was parsed under, and the warnings its loader gives (`warn`)."""

    name: str
    text: str
    data: Any
    suffix: str
    limits: DocumentLimits = DEFAULT_LIMITS
    warnings: list[str] = field(default_factory=list)

    def warn(self, place: str | None, message: str) -> None:
        """Record something the loader skipped or changed instead of refusing the document."""
        self.warnings.append(f"{place}: {message}" if place else message)


class CatalogLoader(Protocol):
    """Turns one kind of catalog document into tools. `load` raises `CatalogError`."""

    def detect(self, doc: CatalogDocument) -> bool: ...

    def load(self, doc: CatalogDocument) -> list[Tool]: ...


class Catalog(BaseModel):
    """The tools of one catalog document, normalised, with the original document's hash."""

    kind: str
    document: str
    sha256: str
    title: str | None = None
    tools: list[Tool] = Field(default_factory=list)
    warnings: list[str] = Field(
        default_factory=list,
        description="What the loader skipped or renamed, one line each: place, then what.",
    )

    def tool(self, name: str) -> Tool | None:
        return next((t for t in self.tools if t.name == name), None)


LOADERS = Registry(
    "catalog kind",
    {
        "python": "unified.catalogs.pymodule:loader",
        "openapi": "unified.catalogs.openapi:loader",
        "openai": "unified.catalogs.functions:openai_loader",
        "bfcl": "unified.catalogs.functions:bfcl_loader",
        "xlam": "unified.catalogs.functions:xlam_loader",
    },
    "actionforge.catalog_loaders",
)
DETECTION_ORDER = ["python", "openapi", "openai", "bfcl", "xlam"]


def parse_document(
    name: str, raw: bytes, *, suffix: str = "", limits: DocumentLimits = DEFAULT_LIMITS
) -> CatalogDocument:
    """Decode and parse a catalog document: JSON, else JSON Lines, else YAML, except Python
    sources; raises `CatalogError` when its shape is over `limits`."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CatalogError(
            name, None, f"not UTF-8 text (byte {exc.start}); save the catalog as UTF-8"
        ) from None
    if suffix == ".py":
        return CatalogDocument(name, text, NOT_PARSED, suffix, limits)
    shape = JsonShape(name, limits)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as json_exc:
        if str(json_exc).startswith("depth limit exceeded"):
            raise too_deep(
                name, f"line {json_exc.lineno}, column {json_exc.colno}", limits
            ) from None
        rows = _json_lines(text, shape)
        if rows is not None:
            return CatalogDocument(name, text, rows, suffix, limits)
        if suffix == ".json":
            raise CatalogError(
                name, None, f"not valid JSON: {json_exc}; fix the JSON syntax"
            ) from None
        data = load_yaml(text, name, limits)
    else:
        shape.check(data)
        refuse_duplicate_keys(text, name)
    return CatalogDocument(name, text, data, suffix, limits)


def _json_lines(text: str, shape: JsonShape) -> list[Any] | None:
    """The rows of a JSON Lines document (two or more lines, the first a JSON object or list),
    or None when the text is not JSON Lines. A later line that is not JSON is an error."""
    if not text.lstrip().startswith(("{", "[")):
        return None
    lines = [(n, line) for n, line in enumerate(text.split("\n"), start=1) if line.strip()]
    if len(lines) < 2:
        return None
    rows: list[Any] = []
    for n, line in lines:
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            if not rows:
                return None
            raise CatalogError(
                shape.document,
                f"line {n}",
                f"not valid JSON Lines: {exc}; fix the JSON on this line",
            ) from None
        if not rows and not isinstance(row, dict | list):
            return None
        shape.check(row, f"line {n} ")
        refuse_duplicate_keys(line, shape.document, first_line=n)
        rows.append(row)
    return rows


def _describe(data: Any) -> str:
    if isinstance(data, dict):
        keys = ", ".join(list(map(str, data))[:6]) or "no keys"
        return f"an object with keys {keys}"
    if isinstance(data, list):
        return f"a list of {len(data)} items"
    return f"a {type(data).__name__}"


def _detect(doc: CatalogDocument) -> tuple[str, CatalogLoader] | None:
    for name in DETECTION_ORDER + [n for n in LOADERS.names() if n not in DETECTION_ORDER]:
        loader: CatalogLoader = LOADERS.get(name)
        if loader.detect(doc):
            return name, loader
    return None


def pick_loader(doc: CatalogDocument, kind: str | None = None) -> tuple[str, CatalogLoader]:
    """The loader named `kind`, or the first whose `detect` accepts the document.

    A named kind that does not fit a document another loader recognises is refused with both
    kinds named; otherwise the named loader runs and reports what it finds wrong.
    """
    if kind is not None:
        named: CatalogLoader = LOADERS.get(kind)
        if not named.detect(doc):
            detected = _detect(doc)
            if detected is not None and detected[0] != kind:
                raise CatalogError(
                    doc.name,
                    None,
                    f"the document is a {detected[0]!r} catalog, not {kind!r}; "
                    f"drop the kind to detect it, or name {detected[0]!r}",
                )
        return kind, named
    detected = _detect(doc)
    if detected is not None:
        return detected
    found = "Python source" if doc.data is NOT_PARSED else _describe(doc.data)
    raise CatalogError(
        doc.name,
        None,
        "unknown document kind: expected an OpenAPI 3.x or Swagger 2.0 document, a JSON list of "
        "function schemas (OpenAI, xLAM or BFCL style) or a Python module (.py); "
        f"found {found}. Name the kind explicitly if detection is wrong "
        f"(known kinds: {', '.join(LOADERS.names())})",
    )


def _walk_required(schema: Any, pointer: str) -> tuple[str, str] | None:
    """The first `required` entry that names a property the object schema does not define."""
    if isinstance(schema, dict):
        props = schema.get("properties")
        required = schema.get("required")
        extra = schema.get("additionalProperties", False)
        open_ended = extra is not False
        if isinstance(props, dict) and isinstance(required, list) and not open_ended:
            for name in required:
                if name not in props and "patternProperties" not in schema:
                    return f"{pointer}/required", str(name)
        for key, value in schema.items():
            if key in ("enum", "const", "default", "examples", "example"):
                continue
            found = _walk_required(value, f"{pointer}/{_escape(str(key))}")
            if found:
                return found
    elif isinstance(schema, list):
        for i, item in enumerate(schema):
            found = _walk_required(item, f"{pointer}/{i}")
            if found:
                return found
    return None


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def check_tool(tool: Tool, document: str) -> None:
    """Raise `CatalogError` unless the tool's parameters (and response) are valid JSON Schema
    2020-12 and describe an object whose `required` names only defined properties."""
    place = (tool.source.place if tool.source and tool.source.place else None) or tool.name
    params = tool.parameters
    if params.get("type") != "object":
        raise CatalogError(
            document,
            place,
            f'tool \'{tool.name}\': parameters must be a JSON Schema with "type": "object", '
            f"got type {params.get('type')!r}; wrap the arguments in an object schema",
        )
    for label, schema in (("parameters", params), ("response", tool.response)):
        if schema is None:
            continue
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            at = "/" + "/".join(_escape(str(p)) for p in exc.absolute_path)
            raise CatalogError(
                document,
                place,
                f"tool '{tool.name}': {label} is not valid JSON Schema at {at}: {exc.message}",
            ) from None
    mismatch = find_enum_mismatch(params)
    if mismatch is not None:
        raise CatalogError(document, place, f"tool '{tool.name}': {mismatch.message()}")
    missing = _walk_required(params, "")
    if missing:
        at, name = missing
        raise CatalogError(
            document,
            place,
            f"tool '{tool.name}': parameters {at} names '{name}', which is not among the "
            "properties; add the property or remove it from required",
        )


def check_unique_names(tools: list[Tool], document: str) -> None:
    seen: dict[str, Tool] = {}
    for tool in tools:
        first = seen.get(tool.name)
        if first is not None:
            first_place = first.source.place if first.source and first.source.place else "?"
            place = tool.source.place if tool.source and tool.source.place else None
            raise CatalogError(
                document,
                place,
                f"duplicate tool name '{tool.name}' (also at {first_place}); "
                "give each tool a unique name",
            )
        seen[tool.name] = tool


def load_catalog_bytes(
    raw: bytes,
    name: str,
    *,
    kind: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    limits: DocumentLimits = DEFAULT_LIMITS,
) -> Catalog:
    """Load a catalog from the bytes of a document called `name` (used in messages)."""
    if len(raw) > max_bytes:
        raise CatalogError(
            name,
            None,
            f"file is {len(raw):,} bytes, more than the limit of {max_bytes:,}; "
            "split the catalog or raise the limit",
        )
    doc = parse_document(name, raw, suffix=Path(name).suffix.lower(), limits=limits)
    kind_name, loader = pick_loader(doc, kind)
    tools = loader.load(doc)
    check_unique_names(tools, name)
    for tool in tools:
        check_tool(tool, name)
    title = None
    if isinstance(doc.data, dict):
        info = doc.data.get("info")
        if isinstance(info, dict) and isinstance(info.get("title"), str):
            title = info["title"]
    return Catalog(
        kind=kind_name,
        document=name,
        sha256=hashlib.sha256(raw).hexdigest(),
        title=title,
        tools=tools,
        warnings=doc.warnings,
    )


def load_catalog(
    path: str | Path,
    *,
    kind: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    limits: DocumentLimits = DEFAULT_LIMITS,
) -> Catalog:
    """Load the catalog file at `path`; the loader is picked by content unless `kind` names it."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CatalogError(str(path), None, f"cannot read the file: {exc.strerror}") from None
    if size > max_bytes:
        raise CatalogError(
            str(path),
            None,
            f"file is {size:,} bytes, more than the limit of {max_bytes:,}; "
            "split the catalog or raise the limit",
        )
    return load_catalog_bytes(
        path.read_bytes(), str(path), kind=kind, max_bytes=max_bytes, limits=limits
    )
