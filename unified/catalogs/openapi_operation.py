"""One OpenAPI operation -> a tool's arguments (one JSON Schema object), where each argument
goes in the HTTP request, and the schema of its successful response.

Arguments are the path, query, header and cookie parameters (path-level ones overridden by
operation-level ones of the same name and place) plus the request body. Parameters of one name
in two places become two arguments: the path parameter (else the first declared) keeps the
name, the other is suffixed with its place (`id_query`), sent under its own name (`sent_as`),
and a warning says so. A JSON or form body
that is a plain object has its properties merged in as arguments; any other body, or one whose
property names clash with a parameter, becomes one argument (`body`, or the Swagger 2.0 body
parameter's name) recorded as `body_argument`. A body that is optional contributes no required
arguments. The response is the first 2xx response with a JSON schema; `default` is used only
when the operation declares no 2xx response at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from unified.catalogs.openapi_media import (
    FORM_TYPES,
    Body,
    base_media_type,
    is_json,
    object_properties,
    pick_media_type,
)
from unified.catalogs.openapi_refs import LocalRefs, escape_token
from unified.catalogs.openapi_schema import SchemaBudget, SchemaRoot, swagger2_parameter_schema
from unified.errors import CatalogError

_V3_LOCATIONS = ("path", "query", "header", "cookie")
_V2_LOCATIONS = ("path", "query", "header", "body", "formData")
# OpenAPI: header parameters with these names are ignored; the client sets them.
_CLIENT_HEADERS = frozenset({"accept", "content-type", "authorization"})
_SUCCESS = re.compile(r"^2(\d\d|XX)$", re.IGNORECASE)
_LABELS = {
    "path": "path parameter",
    "query": "query parameter",
    "header": "header",
    "cookie": "cookie",
    "body": "form field",
}


@dataclass(frozen=True)
class Operation:
    """An operation of the document: its path and method, the operation and path item objects,
    where they are (JSON pointers) and the place it is listed at under `paths`."""

    path: str
    method: str
    node: dict[str, Any]
    at: str
    path_item: dict[str, Any]
    path_item_at: str
    place: str

    @property
    def label(self) -> str:
        """How messages name the operation."""
        return f"operation {self.method.upper()} {self.path}"


@dataclass
class Arguments:
    """A tool's arguments: the parameters schema and where each argument goes."""

    properties: dict[str, Any] = field(default_factory=dict)
    required: list[str] = field(default_factory=list)
    places: dict[str, str] = field(default_factory=dict)
    sent_as: dict[str, str] = field(default_factory=dict)
    declared_at: dict[str, str] = field(default_factory=dict)
    body_argument: str | None = None
    content_type: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, schema: Any, place: str, required: bool) -> None:
        """Add the argument `name`, sent in `place` of the request."""
        self.properties[name] = schema
        self.places[name] = place
        if required:
            self.required.append(name)

    def has(self, place: str, sent_name: str) -> bool:
        """Whether an argument is sent in `place` under `sent_name`."""
        return any(
            where == place and self.sent_as.get(name, name) == sent_name
            for name, where in self.places.items()
        )

    def distinct_name(self, name: str, place: str) -> str:
        """A name for a `place` parameter called `name` that no argument has yet."""
        base = candidate = f"{name}_{place}"
        n = 2
        while candidate in self.places:
            candidate, n = f"{base}_{n}", n + 1
        return candidate

    def rename(self, old: str, new: str) -> None:
        """Give the argument `old` the name `new`; it keeps its place and is still sent as
        before."""
        self.properties = {new if k == old else k: v for k, v in self.properties.items()}
        self.places = {new if k == old else k: v for k, v in self.places.items()}
        self.required = [new if k == old else k for k in self.required]
        self.sent_as[new] = self.sent_as.pop(old, old)
        if old in self.declared_at:
            self.declared_at[new] = self.declared_at.pop(old)


def _annotated(schema: Any, parameter: dict[str, Any]) -> Any:
    if schema is True:
        schema = {}
    if not isinstance(schema, dict):
        return schema
    schema = dict(schema)
    description = parameter.get("description")
    if isinstance(description, str) and description.strip():
        schema["description"] = description
    if parameter.get("deprecated") is True:
        schema["deprecated"] = True
    if "example" in parameter and "examples" not in schema:
        schema["examples"] = [parameter["example"]]
    return schema


class OperationReader:
    """Reads the operations of one document into arguments and response schemas."""

    def __init__(
        self,
        document: str,
        data: dict[str, Any],
        version: str,
        refs: LocalRefs,
        warn: Callable[[str | None, str], None],
        budget: SchemaBudget,
    ) -> None:
        self._document = document
        self._warn = warn
        self._data = data
        self._refs = refs
        self._swagger2 = version == "2.0"
        self._ref_siblings_apply = version not in ("2.0", "3.0")
        self._circular: set[str] = set()
        self._budget = budget

    def arguments(self, op: Operation) -> Arguments:
        """The operation's arguments as one object schema, with where each one goes."""
        root = self._schema_root(op)
        args = Arguments()
        body: Body | None = None
        form: list[tuple[dict[str, Any], str]] = []
        for param, at in self._declared_parameters(op):
            name, place = param["name"], param["in"]
            if place == "body":
                body = self._swagger2_body(param, at, op, root)
            elif place == "formData":
                form.append((param, at))
            elif not (place == "header" and name.lower() in _CLIENT_HEADERS):
                required = place == "path" or param.get("required") is True
                schema = self._parameter_schema(param, at, root)
                self._add(args, name, schema, place, required, at, op)
        for name in re.findall(r"\{([^{}]+)\}", op.path):
            if not args.has("path", name):
                self._add(args, name, {"type": "string"}, "path", True, op.at, op)
        if form:
            args.content_type = self._form_content_type(op, form)
            for param, at in form:
                schema = self._parameter_schema(param, at, root)
                self._add(
                    args, param["name"], schema, "body", param.get("required") is True, at, op
                )
        if not self._swagger2:
            body = self._request_body(op, root)
        if body is not None:
            self._add_body(args, body, root, op)
        parameters: dict[str, Any] = {"type": "object", "properties": args.properties}
        if args.required:
            parameters["required"] = args.required
        args.parameters = root.with_defs(parameters)
        return args

    def response(self, op: Operation) -> dict[str, Any] | None:
        """The JSON schema of the operation's successful response, if it declares one."""
        responses = op.node.get("responses")
        if not isinstance(responses, dict):
            return None
        codes = sorted(
            (code for code in responses if _SUCCESS.match(code)), key=lambda c: c.upper()
        )
        if not codes and "default" in responses:
            codes = ["default"]
        for code in codes:
            at = f"{op.at}/responses/{escape_token(code)}"
            response, at = self._deref(responses[code], at, op)
            node, node_at = self._response_schema(response, at)
            if node is None:
                continue
            root = self._schema_root(op)
            schema = root.convert(node, node_at)
            if isinstance(schema, bool):
                schema = {} if schema else {"not": {}}
            result: dict[str, Any] = root.with_defs(schema)
            return result
        return None

    def _schema_root(self, op: Operation) -> SchemaRoot:
        return SchemaRoot(
            self._refs,
            self._document,
            op.label,
            self._circular,
            ref_siblings_apply=self._ref_siblings_apply,
            budget=self._budget,
        )

    def _deref(self, node: Any, at: str, op: Operation) -> tuple[Any, str]:
        seen: set[str] = set()
        while isinstance(node, dict) and "$ref" in node:
            target, node = self._refs.resolve(node["$ref"], f"{at}/$ref", op.label)
            if target in seen:
                raise CatalogError(
                    self._document,
                    at,
                    f"$ref loops back to {target} ({op.label}); "
                    "point one of the references at a definition",
                )
            seen.add(target)
            at = target
        return node, at

    def _declared_parameters(self, op: Operation) -> list[tuple[dict[str, Any], str]]:
        merged: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
        for owner, owner_at in ((op.path_item, op.path_item_at), (op.node, op.at)):
            listed = owner.get("parameters")
            if listed is None:
                continue
            at = f"{owner_at}/parameters"
            if not isinstance(listed, list):
                raise CatalogError(
                    self._document,
                    at,
                    f"parameters must be a list, found {type(listed).__name__} ({op.label}); "
                    "write a list of parameter objects",
                )
            for i, raw in enumerate(listed):
                param, param_at = self._deref(raw, f"{at}/{i}", op)
                self._check_parameter(param, param_at, op)
                merged[(param["in"], param["name"])] = (param, param_at)
        return list(merged.values())

    def _check_parameter(self, param: Any, at: str, op: Operation) -> None:
        if not isinstance(param, dict):
            raise CatalogError(
                self._document,
                at,
                f"a parameter must be an object, found {type(param).__name__} ({op.label}); "
                "write a parameter object with name and in",
            )
        name = param.get("name")
        if not isinstance(name, str) or not name:
            raise CatalogError(
                self._document, at, f"parameter has no name ({op.label}); give it a name"
            )
        allowed = _V2_LOCATIONS if self._swagger2 else _V3_LOCATIONS
        if param.get("in") not in allowed:
            raise CatalogError(
                self._document,
                f"{at}/in",
                f"parameter '{name}' has in: {param.get('in')!r} ({op.label}); "
                f"use one of {', '.join(allowed)}",
            )

    def _add(
        self,
        args: Arguments,
        name: str,
        schema: Any,
        place: str,
        required: bool,
        at: str,
        op: Operation,
    ) -> None:
        other = args.places.get(name)
        if other is None:
            args.add(name, schema, place, required)
            args.declared_at[name] = at
            return
        if place == "path":
            # The path keeps the plain name: it is what the route template calls it.
            renamed = args.distinct_name(name, other)
            args.rename(name, renamed)
            args.add(name, schema, place, required)
            args.declared_at[name] = at
            renamed_at, renamed_place, kept_place = args.declared_at[renamed], other, place
        else:
            renamed = args.distinct_name(name, place)
            args.add(renamed, schema, place, required)
            args.sent_as[renamed] = name
            args.declared_at[renamed] = at
            renamed_at, renamed_place, kept_place = at, place, other
        label = _LABELS[renamed_place]
        self._warn(
            renamed_at,
            f"{label} '{name}' has the same name as a {_LABELS[kept_place]} ({op.label}); "
            f"its argument is named '{renamed}' and is still sent as {label} '{name}'",
        )

    def _parameter_schema(self, param: dict[str, Any], at: str, root: SchemaRoot) -> Any:
        if self._swagger2:
            return _annotated(root.convert(swagger2_parameter_schema(param), at), param)
        node, node_at = param.get("schema"), f"{at}/schema"
        content = param.get("content")
        if node is None and isinstance(content, dict) and content:
            media_type, media = next(iter(content.items()))
            if isinstance(media, dict):
                node = media.get("schema")
                node_at = f"{at}/content/{escape_token(str(media_type))}/schema"
        schema = root.convert(node, node_at) if node is not None else {}
        return _annotated(schema, param)

    def _request_body(self, op: Operation, root: SchemaRoot) -> Body | None:
        raw = op.node.get("requestBody")
        if raw is None:
            return None
        body, at = self._deref(raw, f"{op.at}/requestBody", op)
        content = body.get("content") if isinstance(body, dict) else None
        if not isinstance(content, dict) or not content:
            return None
        media_type = pick_media_type(content, request=True)
        if media_type is None:
            return None
        media = content[media_type]
        node = media.get("schema") if isinstance(media, dict) else None
        base = base_media_type(media_type)
        if node is not None:
            node_at = f"{at}/content/{escape_token(media_type)}/schema"
            schema = root.convert(node, node_at)
        else:
            structured = is_json(base) or base in FORM_TYPES
            schema = {} if structured else {"type": "string"}
        return Body(schema, body.get("required") is True, body.get("description"), base, "body")

    def _swagger2_body(
        self, param: dict[str, Any], at: str, op: Operation, root: SchemaRoot
    ) -> Body:
        node = param.get("schema")
        schema = root.convert(node, f"{at}/schema") if node is not None else {}
        consumes = self._consumes(op)
        content_type = next((c for c in consumes if is_json(c)), consumes[0] if consumes else None)
        return Body(
            schema,
            param.get("required") is True,
            param.get("description"),
            base_media_type(content_type or "application/json"),
            param["name"],
        )

    def _consumes(self, op: Operation) -> list[str]:
        consumes = op.node.get("consumes", self._data.get("consumes"))
        return [c for c in consumes if isinstance(c, str)] if isinstance(consumes, list) else []

    def _form_content_type(self, op: Operation, form: list[tuple[dict[str, Any], str]]) -> str:
        consumes = [base_media_type(c) for c in self._consumes(op)]
        if "multipart/form-data" in consumes or any(p.get("type") == "file" for p, _ in form):
            return "multipart/form-data"
        return "application/x-www-form-urlencoded"

    def _add_body(self, args: Arguments, body: Body, root: SchemaRoot, op: Operation) -> None:
        args.content_type = body.content_type
        found = object_properties(body.schema, root)
        if found is not None and not set(found[0]) & set(args.places):
            properties, required = found
            for name, schema in properties.items():
                args.add(name, schema, "body", body.required and name in required)
            return
        name, n = body.name, 2
        while name in args.places:
            name, n = f"{body.name}_{n}", n + 1
        if name != body.name:
            self._warn(
                op.at,
                f"the request body's argument would be '{body.name}', the name of a "
                f"{_LABELS[args.places[body.name]]} ({op.label}); it is named '{name}'",
            )
        schema = body.schema
        description = body.description
        if isinstance(description, str) and description.strip() and isinstance(schema, dict):
            schema = {"description": description, **schema}
        args.add(name, schema, "body", body.required)
        args.body_argument = name

    def _response_schema(self, response: Any, at: str) -> tuple[Any, str]:
        if not isinstance(response, dict):
            return None, at
        if self._swagger2:
            return response.get("schema"), f"{at}/schema"
        content = response.get("content")
        if not isinstance(content, dict):
            return None, at
        media_type = pick_media_type(content, request=False)
        media = content.get(media_type) if media_type is not None else None
        if not isinstance(media, dict):
            return None, at
        return media.get("schema"), f"{at}/content/{escape_token(media_type or '')}/schema"
