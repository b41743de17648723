"""The OpenAPI 3.x / Swagger 2.0 catalog loader: one tool per operation.

A tool is named after the operation's `operationId` (made to fit `TOOL_NAME_PATTERN`), or after
its method and path (`GET /pets/{petId}` -> `get_pets_by_petId`); its description is the
summary and description (or `GET /path` when it has neither). Its parameters and response are
self-contained JSON Schema 2020-12 (see `openapi_operation` and `openapi_schema`), and
`source.http` says how to call it. Only local `$ref`s are followed. What makes a document fatal
is described in `openapi_validation`; an operation whose schema expands too far once its
`$ref`s are inlined is skipped with a warning. Webhooks and callbacks are calls the API makes, not
tools, and are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson

from unified.catalogs.base import CatalogDocument
from unified.catalogs.openapi_operation import Operation, OperationReader
from unified.catalogs.openapi_refs import LocalRefs, json_pointer
from unified.catalogs.openapi_schema import SchemaBudget, SchemaTooLarge
from unified.catalogs.openapi_validation import (
    find_problems,
    in_operations,
    in_targets,
    raise_first,
)
from unified.errors import CatalogError
from unified.model import HttpBinding, Tool, ToolSource

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_MAX_NAME = 128


_SUPPORTED = ("3.0", "3.1", "3.2")
SUPPORTED_VERSIONS = "Swagger 2.0 and OpenAPI 3.0.x, 3.1.x and 3.2.x"


def declared_version(data: Any) -> tuple[str, str] | None:
    """("OpenAPI", "4.0.0") or ("Swagger", "1.2"): the version a document declares, supported
    or not; None when it declares neither `openapi` nor `swagger`."""
    if not isinstance(data, dict):
        return None
    for key, label in (("openapi", "OpenAPI"), ("swagger", "Swagger")):
        value = data.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return label, str(value)
    return None


def openapi_version(data: Any) -> str | None:
    """ "2.0", "3.0", "3.1", ... for a supported Swagger 2.0 / OpenAPI 3.x document, else None."""
    declared = declared_version(data)
    if declared is None:
        return None
    label, value = declared
    if label == "Swagger":
        return "2.0" if value == "2.0" else None
    minor = ".".join(value.split(".")[:2])
    return minor if minor in _SUPPORTED else None


def tool_name(operation_id: Any, method: str, path: str) -> str:
    """A valid tool name: the operationId, or else the method and path, with other characters
    replaced by `_` (`get /pets/{petId}` -> `get_pets_by_petId`)."""
    if isinstance(operation_id, str) and operation_id.strip():
        text = operation_id.strip()
    else:
        segments = [re.sub(r"\{([^{}]*)\}", r"by_\1", s) for s in path.split("/") if s]
        text = "_".join([method.lower(), *segments])
    name = re.sub(r"[^A-Za-z0-9_.\-]+", "_", text)
    if not re.match(r"[A-Za-z_]", name):
        name = "_" + name
    return name[:_MAX_NAME]


def _description(op: Operation) -> str:
    summary, description = (
        text.strip() if isinstance(text, str) else ""
        for text in (op.node.get("summary"), op.node.get("description"))
    )
    if summary and description and not description.startswith(summary):
        return f"{summary}\n\n{description}"
    return description or summary or f"{op.method.upper()} {op.path}"


def _server_url(server: Any) -> str | None:
    if not isinstance(server, dict) or not isinstance(server.get("url"), str):
        return None
    variables = server.get("variables")
    variables = variables if isinstance(variables, dict) else {}

    def default(match: re.Match[str]) -> str:
        variable = variables.get(match[1])
        if isinstance(variable, dict) and "default" in variable:
            return str(variable["default"])
        return match[0]

    return re.sub(r"\{([^{}]+)\}", default, server["url"])


def _servers(data: dict[str, Any], op: Operation, version: str) -> list[str]:
    if version == "2.0":
        host, base = data.get("host"), data.get("basePath")
        base = base if isinstance(base, str) else ""
        if not isinstance(host, str) or not host:
            return [base] if base else []
        schemes = op.node.get("schemes") or data.get("schemes") or ["https"]
        return [f"{s}://{host}{base}" for s in schemes if isinstance(s, str)]
    for owner in (op.node, op.path_item, data):
        servers = owner.get("servers")
        if isinstance(servers, list):
            urls = [url for url in map(_server_url, servers) if url]
            if urls:
                return urls
    return []


def _json_data(doc: CatalogDocument) -> dict[str, Any]:
    # YAML gives integer keys (`200:`) and dates; make the document plain JSON.
    try:
        data: dict[str, Any] = orjson.loads(orjson.dumps(doc.data, option=orjson.OPT_NON_STR_KEYS))
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise CatalogError(
            doc.name,
            None,
            f"holds a value JSON cannot represent ({exc}); use plain JSON values only",
        ) from None
    return data


def _operations(data: dict[str, Any], refs: LocalRefs, document: str) -> Iterator[Operation]:
    paths = data.get("paths")
    if paths is None:
        return
    if not isinstance(paths, dict):
        raise CatalogError(
            document,
            "/paths",
            f"paths must be an object of path items, found {type(paths).__name__}; "
            "map each path to its operations",
        )
    for path, item in paths.items():
        if path.startswith("x-"):
            continue
        item_at = json_pointer("paths", path)
        if isinstance(item, dict) and "$ref" in item:
            item_at, item = refs.resolve(item["$ref"], f"{item_at}/$ref", f"path {path}")
        if not isinstance(item, dict):
            raise CatalogError(
                document,
                item_at,
                f"path item of {path} must be an object, found {type(item).__name__}; "
                "map the path to its operations (get, post, ...)",
            )
        for method, node in item.items():
            if method not in _METHODS:
                continue
            place = json_pointer("paths", path, method)
            if not isinstance(node, dict):
                raise CatalogError(
                    document,
                    place,
                    f"operation {method.upper()} {path} must be an object, "
                    f"found {type(node).__name__}; write an operation object",
                )
            yield Operation(path, method, node, f"{item_at}/{method}", item, item_at, place)


class OpenApiLoader:
    """Loads OpenAPI 3.x and Swagger 2.0 documents (JSON or YAML): one tool per operation."""

    def detect(self, doc: CatalogDocument) -> bool:
        """Whether the document declares an `openapi` or `swagger` version (an unsupported
        one is then refused by `load`, naming it)."""
        return declared_version(doc.data) is not None

    def load(self, doc: CatalogDocument) -> list[Tool]:
        """The tools of the document's operations; raises `CatalogError`."""
        version = openapi_version(doc.data)
        if version is None:
            raise _unsupported(doc)
        data = _json_data(doc)
        problems = find_problems(data, version)
        raise_first(in_operations(problems), doc.name, version)
        refs = LocalRefs(data, doc.name)
        budget = SchemaBudget(doc.limits.max_schema_size, doc.limits.max_schemas)
        reader = OperationReader(doc.name, data, version, refs, doc.warn, budget)
        tools: list[Tool] = []
        skipped: list[SchemaTooLarge] = []
        for op in _operations(data, refs, doc.name):
            try:
                tools.append(self._tool(doc, data, version, reader, op))
            except SchemaTooLarge as exc:
                skipped.append(exc)
                doc.warn(op.place, f"skipped: {exc.message}")
        if skipped and not tools:
            raise skipped[0]
        if not tools:
            webhooks = (
                " (webhooks are calls the API makes, not tools)" if data.get("webhooks") else ""
            )
            raise CatalogError(
                doc.name,
                "/paths",
                f"no operations under paths{webhooks}; add a path with at least one "
                "operation (get, post, ...)",
            )
        raise_first(in_targets(problems, refs.used), doc.name, version)
        return tools

    def _tool(
        self,
        doc: CatalogDocument,
        data: dict[str, Any],
        version: str,
        reader: OperationReader,
        op: Operation,
    ) -> Tool:
        args = reader.arguments(op)
        http = HttpBinding(
            method=op.method.upper(),
            path=op.path,
            servers=_servers(data, op, version),
            **{"in": args.places},
            body_argument=args.body_argument,
            content_type=args.content_type,
            sent_as=args.sent_as or None,
        )
        return Tool(
            name=tool_name(op.node.get("operationId"), op.method, op.path),
            description=_description(op),
            parameters=args.parameters,
            response=reader.response(op),
            source=ToolSource(kind="openapi", document=doc.name, place=op.place, http=http),
        )


def _unsupported(doc: CatalogDocument) -> CatalogError:
    declared = declared_version(doc.data)
    if declared is None:
        return CatalogError(
            doc.name,
            None,
            'not an OpenAPI document: expected a top-level `openapi: "3.x"` or '
            '`swagger: "2.0"`; add it, or load the file as another catalog kind',
        )
    label, value = declared
    return CatalogError(
        doc.name,
        f"/{label.lower()}",
        f"{label} {value} is not supported: ActionForge reads {SUPPORTED_VERSIONS}; "
        "convert the document to one of them",
    )


loader = OpenApiLoader()
