"""Python type expressions (annotations, docstring and xLAM type strings) as JSON Schema.

Mapping rules, shared by the xLAM and Python-module loaders:

- scalars: ``str`` -> string, ``int`` -> integer, ``float`` -> number, ``bool`` -> boolean,
  ``None`` -> null; ``datetime``/``date``/``time``/``UUID`` -> string with a ``format``;
- containers: ``list[X]``/``List[X]``/``Sequence[X]``/``Iterable[X]`` -> array of X,
  ``set[X]`` -> array of unique X, ``tuple[X, ...]`` -> array of X, ``tuple[A, B]`` -> array of
  exactly A then B, ``dict[K, V]``/``Mapping[K, V]`` -> object whose values are V (JSON keys are
  always strings, so K is not kept); bare ``list``/``dict``/... give the container alone;
- ``Optional[X]``, ``Union[X, None]`` and ``X | None`` mark the value optional; with
  ``nullable=True`` (Python annotations) the schema also admits null, otherwise (xLAM and
  docstring types, where "optional" means "may be left out") it is X's schema;
- ``Union[A, B]``/``A | B`` -> anyOf (or a type list when every member is a plain type);
- ``Literal[...]`` -> enum; ``Annotated[X, ...]``, ``Required[X]``, ``NotRequired[X]`` -> X;
- ``Callable[...]`` -> string: a callable argument is passed as its source text (for instance
  ``"lambda x: x**2"``), as xLAM answers do;
- ``Any`` and any name this module does not know (a class from another package, a type alias)
  -> ``{}``, a permissive schema: an unknown name is not an error, only an expression that cannot
  be a type at all (``List[str``, ``3``, ``f()``) is, and raises `TypeExpressionError`;
- type strings may carry xLAM/NumPy decorations: ``"str, optional"``, ``"optional bool"``,
  ``"int, default 5"``, ``"list of str"``, ``"int or None"``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_STRING = {"type": "string"}
_NAMED: dict[str, dict[str, Any]] = {
    "str": _STRING,
    "string": _STRING,
    "text": _STRING,
    "char": _STRING,
    "bytes": _STRING,
    "path": _STRING,
    "purepath": _STRING,
    "pathlike": _STRING,
    "int": {"type": "integer"},
    "integer": {"type": "integer"},
    "long": {"type": "integer"},
    "float": {"type": "number"},
    "number": {"type": "number"},
    "double": {"type": "number"},
    "decimal": {"type": "number"},
    "bool": {"type": "boolean"},
    "boolean": {"type": "boolean"},
    "none": {"type": "null"},
    "nonetype": {"type": "null"},
    "null": {"type": "null"},
    "list": {"type": "array"},
    "array": {"type": "array"},
    "sequence": {"type": "array"},
    "mutablesequence": {"type": "array"},
    "iterable": {"type": "array"},
    "iterator": {"type": "array"},
    "collection": {"type": "array"},
    "deque": {"type": "array"},
    "tuple": {"type": "array"},
    "set": {"type": "array", "uniqueItems": True},
    "frozenset": {"type": "array", "uniqueItems": True},
    "abstractset": {"type": "array", "uniqueItems": True},
    "mutableset": {"type": "array", "uniqueItems": True},
    "dict": {"type": "object"},
    "object": {"type": "object"},
    "mapping": {"type": "object"},
    "mutablemapping": {"type": "object"},
    "ordereddict": {"type": "object"},
    "defaultdict": {"type": "object"},
    "typeddict": {"type": "object"},
    "json": {},
    "any": {},
    "callable": _STRING,
    "function": _STRING,
    "datetime": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
    "time": {"type": "string", "format": "time"},
    "timedelta": {"type": "string", "format": "duration"},
    "uuid": {"type": "string", "format": "uuid"},
}
_ARRAYS = {"list", "array", "sequence", "mutablesequence", "iterable", "iterator", "collection"}
_ARRAYS |= {"deque"}
_SETS = {"set", "frozenset", "abstractset", "mutableset"}
_MAPPINGS = {"dict", "mapping", "mutablemapping", "ordereddict", "defaultdict"}
_PASS_THROUGH = {"annotated", "required", "notrequired", "readonly", "final", "classvar"}
_JSON_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number", type(None): "null"}


MAX_TYPE_DEPTH = 32


class TypeExpressionError(ValueError):
    """A type annotation or type string that cannot be read as a type at all."""


class TypeTooLarge(TypeExpressionError):
    """A type nested more than `MAX_TYPE_DEPTH` levels (`List[List[...]]`), or a class whose
    schema would grow too large: refused before mapping it. `line` is where it is written."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class MappedType:
    """The JSON Schema of a type, and whether the type itself says the value is optional."""

    schema: dict[str, Any] = field(default_factory=dict)
    optional: bool = False


def annotation_schema(
    node: ast.expr,
    *,
    classes: Mapping[str, dict[str, Any]] | None = None,
    nullable: bool = True,
) -> MappedType:
    """Map a type annotation's AST to JSON Schema; `classes` names types defined alongside."""
    if _ast_depth(node) > 2 * MAX_TYPE_DEPTH:  # `X[Y]` is two AST levels
        raise TypeTooLarge(
            f"the type annotation nests more than {MAX_TYPE_DEPTH} levels deep",
            getattr(node, "lineno", None),
        )
    return _Mapper(classes or {}, nullable=nullable, object_is_any=True).map(node)


def _ast_depth(node: ast.AST) -> int:
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(current))
    return deepest


def _text_depth(text: str) -> int:
    """An upper bound of how deep a type string nests: its deepest bracket plus every "of"."""
    deepest = depth = 0
    for char in text:
        if char in "[(":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "])":
            depth -= 1
    return deepest + len(re.findall(r"\bof\b", text, flags=re.IGNORECASE))


def type_string_schema(
    text: str,
    *,
    classes: Mapping[str, dict[str, Any]] | None = None,
    nullable: bool = False,
) -> MappedType:
    """Map a type written as text (``"List[int]"``, ``"str, optional"``) to JSON Schema."""
    if _text_depth(text) > MAX_TYPE_DEPTH:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise TypeTooLarge(f"type {shown!r} nests more than {MAX_TYPE_DEPTH} levels deep")
    cleaned, optional = _strip_decorations(text)
    if not cleaned:
        raise TypeExpressionError(f"type {text!r} is empty")
    mapper = _Mapper(classes or {}, nullable=nullable, object_is_any=False)
    alternatives = _split_top_level(cleaned, " or ")
    if len(alternatives) > 1:
        union = mapper.union([mapper.map(_parse(part, text)) for part in alternatives])
        return MappedType(union.schema, union.optional or optional)
    of_match = re.fullmatch(r"(\w+)\s+of\s+(.+)", cleaned, flags=re.IGNORECASE)
    if of_match and of_match.group(1).lower() in _ARRAYS | _SETS | {"tuple"}:
        container = dict(_NAMED[of_match.group(1).lower()])
        container["items"] = type_string_schema(of_match.group(2), classes=classes).schema
        return MappedType(_compact(container), optional)
    single = mapper.map(_parse(cleaned, text))
    return MappedType(single.schema, single.optional or optional)


def _parse(expression: str, original: str) -> ast.expr:
    try:
        return ast.parse(expression.strip(), mode="eval").body
    except SyntaxError as exc:
        raise TypeExpressionError(
            f"type {original!r} is not a type expression ({exc.msg})"
        ) from None


def _strip_decorations(text: str) -> tuple[str, bool]:
    """Drop ``optional``/``default ...`` decorations; a default also makes the value optional."""
    optional = False
    pieces = _split_top_level(text.strip(), ",")
    kept = [pieces[0].strip()]
    for piece in pieces[1:]:
        word = piece.strip().lower()
        if word in ("optional", "(optional)") or word.startswith("default"):
            optional = True
        else:
            kept.append(piece.strip())
    core = ", ".join(kept).strip()
    for marker in ("(optional)", "optional"):
        if core.lower().endswith(" " + marker):
            core, optional = core[: -len(marker) - 1].strip(), True
    if core.lower().startswith("optional "):
        core, optional = core[len("optional ") :].strip(), True
    return core, optional


def _split_top_level(text: str, separator: str) -> list[str]:
    """Split at `separator` where it is outside brackets and quotes."""
    parts: list[str] = []
    depth, quote, start, i = 0, "", 0, 0
    while i < len(text):
        char = text[i]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0 and text.startswith(separator, i):
            parts.append(text[start:i])
            i += len(separator)
            start = i
            continue
        i += 1
    parts.append(text[start:])
    return parts


def _compact(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop ``items``/``additionalProperties`` that say nothing (``{}``)."""
    return {
        k: v for k, v in schema.items() if not (k in ("items", "additionalProperties") and v == {})
    }


def _with_null(schema: dict[str, Any]) -> dict[str, Any]:
    if not schema:
        return schema
    kind = schema.get("type")
    if "anyOf" in schema and len(schema) == 1:
        return {"anyOf": [*schema["anyOf"], {"type": "null"}]}
    if isinstance(kind, str) and "enum" not in schema:
        return {**schema, "type": [kind, "null"]}
    if isinstance(kind, list) and "enum" not in schema:
        return {**schema, "type": [*kind, "null"]} if "null" not in kind else schema
    if "enum" in schema and set(schema) <= {"enum", "type"}:
        types = schema.get("type")
        widened: dict[str, Any] = {"enum": [*schema["enum"], None]}
        if isinstance(types, str):
            widened["type"] = [types, "null"]
        return widened
    return {"anyOf": [schema, {"type": "null"}]}


class _Mapper:
    def __init__(
        self, classes: Mapping[str, dict[str, Any]], *, nullable: bool, object_is_any: bool
    ) -> None:
        self.classes = classes
        self.nullable = nullable
        self.object_is_any = object_is_any

    def map(self, node: ast.expr) -> MappedType:
        if isinstance(node, ast.Constant):
            return self._constant(node)
        if isinstance(node, ast.Name | ast.Attribute):
            return MappedType(self._named(_dotted_tail(node)))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return self.union([self.map(node.left), self.map(node.right)])
        if isinstance(node, ast.Subscript):
            return self._subscript(node)
        raise TypeExpressionError(f"{ast.unparse(node)!r} is not a type")

    def _constant(self, node: ast.Constant) -> MappedType:
        if node.value is None:
            return MappedType({"type": "null"}, optional=True)
        if isinstance(node.value, str):
            # A forward reference: the annotation written as a string.
            return self.map(_parse(node.value, node.value))
        if node.value is Ellipsis:
            return MappedType({})
        raise TypeExpressionError(f"{node.value!r} is not a type")

    def _named(self, name: str) -> dict[str, Any]:
        if name in self.classes:
            return dict(self.classes[name])
        if name == "object" and self.object_is_any:
            return {}
        return dict(_NAMED.get(name.lower(), {}))

    def union(self, members: list[MappedType]) -> MappedType:
        optional = any(m.optional for m in members)
        schemas: list[dict[str, Any]] = []
        for member in members:
            if member.schema == {"type": "null"}:
                optional = True
                continue
            if member.schema not in schemas:
                schemas.append(member.schema)
        if not schemas:
            return MappedType({"type": "null"}, optional=True)
        if any(s == {} for s in schemas):
            merged: dict[str, Any] = {}
        elif len(schemas) == 1:
            merged = schemas[0]
        elif all(set(s) == {"type"} and isinstance(s["type"], str) for s in schemas):
            merged = {"type": [s["type"] for s in schemas]}
        else:
            merged = {"anyOf": schemas}
        if optional and self.nullable:
            merged = _with_null(merged)
        return MappedType(merged, optional)

    def _subscript(self, node: ast.Subscript) -> MappedType:
        base = (
            _dotted_tail(node.value).lower()
            if isinstance(node.value, ast.Name | ast.Attribute)
            else ""
        )
        args = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
        if base == "optional":
            return self.union([self.map(args[0]), MappedType({"type": "null"}, optional=True)])
        if base == "union":
            return self.union([self.map(arg) for arg in args])
        if base == "literal":
            return MappedType(_literal_enum(args))
        if base in _PASS_THROUGH:
            return self.map(args[0])
        if base in ("callable", "type"):
            return MappedType(dict(self._named(base)))
        if base in _ARRAYS or base in _SETS:
            schema = dict(_NAMED[base])
            schema["items"] = self.map(args[0]).schema
            return MappedType(_compact(schema))
        if base == "tuple":
            return MappedType(self._tuple(args))
        if base in _MAPPINGS:
            schema = {"type": "object", "additionalProperties": self.map(args[-1]).schema}
            return MappedType(_compact(schema))
        for arg in args:
            if not isinstance(arg, ast.List):
                self.map(arg)  # reject nonsense inside an unknown generic, e.g. Foo[3]
        return MappedType(self._named(base) if base else {})

    def _tuple(self, args: list[ast.expr]) -> dict[str, Any]:
        if len(args) == 2 and isinstance(args[1], ast.Constant) and args[1].value is Ellipsis:
            return _compact({"type": "array", "items": self.map(args[0]).schema})
        if len(args) == 1 and isinstance(args[0], ast.Tuple) and not args[0].elts:
            return {"type": "array", "maxItems": 0}
        return {
            "type": "array",
            "prefixItems": [self.map(arg).schema for arg in args],
            "minItems": len(args),
            "maxItems": len(args),
        }


def _dotted_tail(node: ast.Name | ast.Attribute) -> str:
    return node.id if isinstance(node, ast.Name) else node.attr


def _literal_enum(args: list[ast.expr]) -> dict[str, Any]:
    values: list[Any] = []
    for arg in args:
        try:
            value = ast.literal_eval(arg)
        except ValueError:
            raise TypeExpressionError(
                f"Literal value {ast.unparse(arg)!r} is not a literal"
            ) from None
        if type(value) not in _JSON_TYPES:
            raise TypeExpressionError(f"Literal value {value!r} is not a JSON value")
        values.append(value)
    kinds = {_JSON_TYPES[type(v)] for v in values}
    schema: dict[str, Any] = {"enum": values}
    if len(kinds) == 1:
        schema = {"type": kinds.pop(), "enum": values}
    return schema
