"""OpenAPI / Swagger schemas -> self-contained JSON Schema Draft 2020-12.

Local `$ref`s are inlined; a schema that refers to itself (directly or through others) is kept
once under the root's `$defs` and referred to as `#/$defs/Name`, so conversion always ends.
Dialect fixes (all versions; they are no-ops on proper 3.1 schemas): `nullable`/`x-nullable`
adds "null", boolean `exclusiveMinimum`/`exclusiveMaximum` take the bound's number, `example`
becomes `examples`, `type: file` becomes a binary string, a list under `items` becomes
`prefixItems`; `discriminator`, `xml`, `externalDocs`, `x-*` and identifiers that would move the
base URI (`$id`, `$anchor`, ...) are dropped.

Inlining can multiply a small document (a schema that refers to the next one twice, thirty
times over, is two billion subschemas), so a `SchemaBudget` bounds what conversion builds: the
subschemas of one schema and how deep they nest (over either: `SchemaTooLarge`, and the loader
skips the operation), and the subschemas of the whole document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from unified.catalogs.openapi_refs import LocalRefs, escape_token
from unified.errors import CatalogError

_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "dependentSchemas"})
_SCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
SINGLE_SUBSCHEMA_KEYWORDS = (
    "items",
    "additionalProperties",
    "additionalItems",
    "unevaluatedItems",
    "unevaluatedProperties",
    "not",
    "contains",
    "if",
    "then",
    "else",
    "propertyNames",
    "contentSchema",
)
"""The JSON Schema keywords whose value is one subschema (`items` also takes a list in older
drafts), in a fixed order for walks that report the first problem they meet."""
_SCHEMA_ONE = frozenset(SINGLE_SUBSCHEMA_KEYWORDS)
_DROPPED = frozenset(
    {
        "discriminator",
        "xml",
        "externalDocs",
        "example",
        "nullable",
        "collectionFormat",
        "allowEmptyValue",
        "$id",
        "$schema",
        "$anchor",
        "$dynamicAnchor",
        "$defs",
        "definitions",
    }
)
_ANNOTATIONS = frozenset(
    {"title", "description", "default", "examples", "deprecated", "readOnly", "writeOnly"}
)
_SWAGGER2_PARAMETER_KEYS = (
    "type",
    "format",
    "items",
    "default",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "enum",
    "multipleOf",
    "x-nullable",
)


def swagger2_parameter_schema(parameter: dict[str, Any]) -> dict[str, Any]:
    """The schema keywords written directly on a Swagger 2.0 non-body parameter."""
    return {key: parameter[key] for key in _SWAGGER2_PARAMETER_KEYS if key in parameter}


def nullable(schema: Any) -> Any:
    """`schema` that also accepts null."""
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    if isinstance(kind, str):
        schema["type"] = [kind, "null"] if kind != "null" else kind
    elif isinstance(kind, list):
        schema["type"] = kind if "null" in kind else [*kind, "null"]
    else:
        return {"anyOf": [schema, {"type": "null"}]}
    enum = schema.get("enum")
    if isinstance(enum, list) and None not in enum:
        schema["enum"] = [*enum, None]
    return schema


def _is_nullable(node: dict[str, Any]) -> bool:
    return node.get("nullable") is True or node.get("x-nullable") is True


def _fix_legacy_keywords(out: dict[str, Any], node: dict[str, Any]) -> None:
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        flag = out.get(exclusive)
        if isinstance(flag, bool):
            del out[exclusive]
            if flag and bound in out:
                out[exclusive] = out.pop(bound)
    if out.get("type") == "file":
        out["type"] = "string"
        out["format"] = "binary"
    if "example" in node and "examples" not in out:
        out["examples"] = [node["example"]]
    if "examples" in out and not isinstance(out["examples"], list):
        del out["examples"]
    required = out.get("required")
    if "required" in out and not (
        isinstance(required, list) and all(isinstance(name, str) for name in required)
    ):
        del out["required"]


@dataclass
class SchemaBudget:
    """How many subschemas conversion may build for one schema and for the whole document,
    and how deep they may nest, once `$ref`s are inlined."""

    per_schema: int = 5_000
    per_document: int = 100_000
    max_depth: int = 64
    used: int = 0


class SchemaTooLarge(CatalogError):
    """One schema expands to more subschemas, or nests deeper, than `SchemaBudget` allows."""


class SchemaRoot:
    """Converts the schemas that go into one JSON Schema document (a tool's parameters or its
    response); collects the `$defs` needed for circular references."""

    def __init__(
        self,
        refs: LocalRefs,
        document: str,
        operation: str,
        circular: set[str],
        *,
        ref_siblings_apply: bool,
        budget: SchemaBudget,
    ) -> None:
        self.defs: dict[str, Any] = {}
        self._budget = budget
        self._built = 0
        self._depth = 0
        self._refs = refs
        self._document = document
        self._operation = operation
        self._circular = circular
        self._ref_siblings_apply = ref_siblings_apply
        self._def_names: dict[str, str] = {}
        self._active: set[str] = set()
        self._recursive: set[str] = set()

    def convert(self, node: Any, at: str) -> Any:
        """The 2020-12 form of the schema `node`, found at JSON pointer `at` of the document."""
        self._spend(at)
        self._depth += 1
        try:
            return self._convert(node, at)
        finally:
            self._depth -= 1

    def _spend(self, at: str) -> None:
        budget = self._budget
        self._built += 1
        budget.used += 1
        if self._built > budget.per_schema:
            raise SchemaTooLarge(
                self._document,
                at,
                f"a schema of {self._operation} expands to more than {budget.per_schema:,} "
                "subschemas once its $refs are inlined; simplify it",
            )
        if budget.used > budget.per_document:
            raise CatalogError(
                self._document,
                at,
                f"the document's tools expand to more than {budget.per_document:,} subschemas "
                f"once their $refs are inlined (the last in {self._operation}); split the "
                "catalog or simplify its schemas",
            )
        if self._depth >= budget.max_depth:
            raise SchemaTooLarge(
                self._document,
                at,
                f"a schema of {self._operation} nests more than {budget.max_depth} levels deep "
                "once its $refs are inlined; simplify it",
            )

    def _convert(self, node: Any, at: str) -> Any:
        if isinstance(node, bool):
            return node
        if not isinstance(node, dict):
            raise CatalogError(
                self._document,
                at,
                f"expected a schema (an object), found {type(node).__name__} "
                f"({self._operation}); write a schema object here",
            )
        if "$ref" in node:
            return self._reference(node, at)
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in _DROPPED or key.startswith("x-"):
                continue
            here = f"{at}/{escape_token(key)}"
            if key in _SCHEMA_MAPS and isinstance(value, dict):
                out[key] = {
                    name: self.convert(sub, f"{here}/{escape_token(name)}")
                    for name, sub in value.items()
                }
            elif key in _SCHEMA_LISTS and isinstance(value, list):
                out[key] = [self.convert(sub, f"{here}/{i}") for i, sub in enumerate(value)]
            elif key == "items" and isinstance(value, list):
                out["prefixItems"] = [
                    self.convert(sub, f"{here}/{i}") for i, sub in enumerate(value)
                ]
            elif key in _SCHEMA_ONE and isinstance(value, dict | bool):
                out[key] = self.convert(value, here)
            else:
                out[key] = value
        _fix_legacy_keywords(out, node)
        return nullable(out) if _is_nullable(node) else out

    def with_defs(self, schema: Any) -> Any:
        """`schema` with the collected `$defs` attached, ready to stand alone."""
        if not self.defs:
            return schema
        if not isinstance(schema, dict):
            schema = {"allOf": [schema]}
        return {**schema, "$defs": dict(self.defs)}

    def def_body(self, schema: Any) -> Any:
        """The definition `schema` stands for, when it is only a `#/$defs/...` reference."""
        if isinstance(schema, dict) and set(schema) == {"$ref"}:
            ref = schema["$ref"]
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return self.defs.get(ref.removeprefix("#/$defs/"), schema)
        return schema

    def _reference(self, node: dict[str, Any], at: str) -> Any:
        # The target and the siblings take the place of the `$ref` node, already counted by
        # `convert`: they are converted without a level of their own.
        target, contents = self._refs.resolve(node["$ref"], f"{at}/$ref", self._operation)
        result = self._inline(target, contents, at)
        siblings = {
            key: value
            for key, value in node.items()
            if key not in ("$ref", "nullable") and not key.startswith("x-")
        }
        converted = self._convert(siblings, at) if siblings else {}
        annotations = {key: value for key, value in converted.items() if key in _ANNOTATIONS}
        rest = {key: value for key, value in converted.items() if key not in _ANNOTATIONS}
        if isinstance(result, dict):
            result = {**result, **annotations}
        elif annotations:
            result = {"allOf": [result], **annotations}
        # 3.1 applies a reference's siblings; 3.0 and 2.0 ignore them, but annotations such as
        # a description are kept above since that is what authors mean by them.
        if rest and self._ref_siblings_apply:
            result = {"allOf": [result, rest]}
        return nullable(result) if _is_nullable(node) else result

    def _inline(self, target: str, contents: Any, at: str) -> Any:
        if target in self._active or target in self._def_names:
            self._recursive.add(target)
            return {"$ref": f"#/$defs/{self._def_name(target)}"}
        known_circular = target in self._circular
        if known_circular:
            self._def_name(target)
        self._active.add(target)
        try:
            body = self._convert(contents, target)
        finally:
            self._active.discard(target)
        if not (known_circular or target in self._recursive):
            return body
        self._circular.add(target)
        name = self._def_name(target)
        reference = {"$ref": f"#/$defs/{name}"}
        if body == reference:
            raise CatalogError(
                self._document,
                at,
                f"schema {target} is only a reference back to itself ({self._operation}); "
                "give it a type or properties",
            )
        self.defs[name] = body
        return reference

    def _def_name(self, target: str) -> str:
        name = self._def_names.get(target)
        if name is None:
            last = target.rsplit("/", 1)[-1].replace("~1", "/").replace("~0", "~")
            base = re.sub(r"[^A-Za-z0-9_.\-]", "_", last) or "schema"
            name, n = base, 2
            while name in self._def_names.values():
                name, n = f"{base}_{n}", n + 1
            self._def_names[target] = name
        return name
