"""A Python module of functions as a catalog, read from its source without running it.

The module is parsed with `ast`; nothing in it is imported or executed. Its public top-level
functions become tools: those listed in ``__all__`` when the module defines one (as a literal
list or tuple of names), otherwise those whose names do not start with ``_``. Methods, nested
functions and ``@overload`` stubs are not tools; a function defined twice is read from its last
definition.

For each function:

- description: the docstring's summary and body (Google, NumPy and reST docstrings are read
  with ``docstring_parser``), argument descriptions from its parameter section;
- arguments: positional and keyword-only parameters; ``*args`` and ``**kwargs`` are skipped.
  A parameter with a default is optional, any other is required. A default that is a JSON
  literal (``ast.literal_eval``; tuples and sets become lists) is kept as ``default``; any other
  default (a call, a name) is left out while the argument stays optional;
- types: from the annotation (see `unified.catalogs.pytypes`; ``Optional[X]``/``X | None``
  admit null); an unannotated parameter gets the type its docstring names, or a permissive
  schema when it names none. TypedDicts, dataclasses, NamedTuples and pydantic models defined
  in the same module become object schemas of their annotated fields (a class that refers to
  itself, directly or not, is a plain object there); Enum classes become an enum of their
  literal values. Types imported from elsewhere, and type aliases, are permissive schemas;
- response: the return annotation (or the docstring's return type) when it maps to a schema.

``ToolSource.callable`` is ``"<module>:<function>"`` with the file's stem as the module.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docstring_parser

from unified.catalogs.base import CatalogDocument
from unified.catalogs.pytypes import (
    MAX_TYPE_DEPTH,
    MappedType,
    TypeExpressionError,
    TypeTooLarge,
    annotation_schema,
    type_string_schema,
)
from unified.errors import CatalogError
from unified.model import TOOL_NAME_PATTERN, Tool, ToolSource

_RECORD_BASES = {"TypedDict", "NamedTuple", "BaseModel"}
MAX_CLASS_SCHEMA_NODES = 10_000
_ENUM_BASES = {"Enum", "StrEnum", "IntEnum", "Flag", "IntFlag"}
_SECTION = re.compile(r"^(\s*)(Args|Arguments|Parameters|Params|Returns|Return|Raises|Yields):\s*$")


class PythonModuleLoader:
    """Reads a ``.py`` file's source into tools without importing it."""

    def detect(self, doc: CatalogDocument) -> bool:
        """A Python catalog is recognised by its ``.py`` suffix."""
        return doc.suffix == ".py"

    def load(self, doc: CatalogDocument) -> list[Tool]:
        """The module's public top-level functions as tools."""
        tree = _parse(doc)
        exported = _exported_names(doc, tree)
        functions = _public_functions(tree, exported)
        if not functions:
            raise CatalogError(doc.name, None, _no_functions_message(exported))
        module = Path(doc.name).stem
        try:
            classes = _ClassSchemas(tree)
            return [_tool(doc, node, classes, module) for node in functions]
        except TypeTooLarge as exc:
            where = f"line {exc.line}" if exc.line else None
            raise CatalogError(doc.name, where, f"{exc}; simplify it") from None


def _parse(doc: CatalogDocument) -> ast.Module:
    try:
        return ast.parse(doc.text, filename=doc.name)
    except (MemoryError, RecursionError):  # what CPython's parser raises on extreme nesting
        raise CatalogError(
            doc.name, None, "the module nests too deeply for Python to parse; simplify it"
        ) from None
    except SyntaxError as exc:
        where = f"line {exc.lineno}" if exc.lineno else None
        raise CatalogError(
            doc.name, where, f"Python syntax error: {exc.msg}; fix the module so that it parses"
        ) from None
    except ValueError as exc:  # e.g. a NUL byte in the source
        raise CatalogError(doc.name, None, f"not Python source: {exc}") from None


def _exported_names(doc: CatalogDocument, tree: ast.Module) -> list[str] | None:
    """The names in ``__all__``, or None when the module does not define it."""
    names: list[str] | None = None
    for node in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets, value = [node.target], node.value
        if value is None or not any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            continue
        try:
            listed = ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            listed = None
        if not isinstance(listed, list | tuple) or not all(isinstance(n, str) for n in listed):
            raise CatalogError(
                doc.name,
                f"line {node.lineno}",
                "__all__ must be a literal list of function names (the module is not run, so "
                "a computed __all__ cannot be read); write the names out",
            )
        names = [*(names or []), *listed] if isinstance(node, ast.AugAssign) else list(listed)
    return names


def _is_overload(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name == "overload":
            return True
    return False


def _public_functions(
    tree: ast.Module, exported: list[str] | None
) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    found: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not _is_overload(node):
            found[node.name] = node
    if exported is not None:
        return [node for name, node in found.items() if name in exported]
    return [node for name, node in found.items() if not name.startswith("_")]


def _no_functions_message(exported: list[str] | None) -> str:
    if exported is not None:
        listed = ", ".join(exported) or "nothing"
        return (
            f"no functions to load: __all__ lists {listed}, none of which is a function defined "
            "at the top level of this module; list the functions to expose in __all__"
        )
    return (
        "no public functions found: a Python catalog needs at least one function defined at the "
        "top level of the module whose name does not start with '_' (methods and nested "
        "functions are not tools); add one or list it in __all__"
    )


# ---- docstrings --------------------------------------------------------------------------------


def _parse_docstring(text: str) -> docstring_parser.Docstring:
    parsed = _safe_parse(text)
    if not parsed.params and any(_SECTION.match(line) for line in text.splitlines()):
        # Google sections whose entries are not indented below the header ("Args:\nx (int): ..")
        reindented = _safe_parse(_indent_sections(text), docstring_parser.DocstringStyle.GOOGLE)
        if reindented.params:
            return reindented
    return parsed


def _safe_parse(
    text: str, style: docstring_parser.DocstringStyle = docstring_parser.DocstringStyle.AUTO
) -> docstring_parser.Docstring:
    try:
        return docstring_parser.parse(text, style)
    except docstring_parser.ParseError:
        return docstring_parser.Docstring()


def _indent_sections(text: str) -> str:
    lines = text.splitlines()
    out: list[str] = []
    header_indent: str | None = None
    for line in lines:
        match = _SECTION.match(line)
        if match:
            header_indent = match.group(1)
            out.append(line)
        elif header_indent is not None and line.strip() and _indent_of(line) == header_indent:
            out.append("    " + line)
        else:
            out.append(line)
    return "\n".join(out)


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _description(parsed: docstring_parser.Docstring) -> str:
    return "\n\n".join(p for p in (parsed.short_description, parsed.long_description) if p)


# ---- classes defined in the module --------------------------------------------------------------


def _base_names(node: ast.ClassDef) -> set[str]:
    names = set()
    for base in node.bases:
        target = base.value if isinstance(base, ast.Subscript) else base
        if isinstance(target, ast.Attribute):
            names.add(target.attr)
        elif isinstance(target, ast.Name):
            names.add(target.id)
    return names


def _is_dataclass(node: ast.ClassDef) -> bool:
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name == "dataclass":
            return True
    return False


class _ClassSchemas(dict[str, dict[str, Any]]):
    """Schemas of the record and enum classes defined at the top level of the module."""

    def __init__(self, tree: ast.Module) -> None:
        super().__init__()
        self._nodes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
        self._building: set[str] = set()
        self._sizes = _ExpandedSizes()
        for name in self._nodes:
            self._resolve(name)

    def _resolve(self, name: str) -> dict[str, Any] | None:
        if name in self:
            return self[name]
        if name in self._building:
            return {"type": "object"}  # a class that refers to itself
        node = self._nodes[name]
        if len(self._building) >= MAX_TYPE_DEPTH:
            raise TypeTooLarge(
                f"class {name} is nested more than {MAX_TYPE_DEPTH} classes deep in the "
                "fields of others",
                node.lineno,
            )
        bases = _base_names(node)
        if bases & _ENUM_BASES:
            schema = _enum_schema(node)
        elif bases & _RECORD_BASES or _is_dataclass(node):
            self._building.add(name)
            try:
                known: dict[str, dict[str, Any]] = {}
                for referenced in _names_in_fields(node) & set(self._nodes):
                    found = self._resolve(referenced)
                    if found is not None:
                        known[referenced] = found
                schema = _record_schema(node, bases, known)
            finally:
                self._building.discard(name)
            nodes, levels = self._sizes.of(schema)
            if nodes > MAX_CLASS_SCHEMA_NODES:
                raise TypeTooLarge(
                    f"class {name} expands to more than {MAX_CLASS_SCHEMA_NODES:,} schema "
                    "nodes through the classes of its fields",
                    node.lineno,
                )
            if levels > 2 * MAX_TYPE_DEPTH:  # each class is two levels: itself, its fields
                raise TypeTooLarge(
                    f"class {name} nests more than {MAX_TYPE_DEPTH} levels of classes and "
                    "types in its fields",
                    node.lineno,
                )
        else:
            return None
        self[name] = schema
        return schema


class _ExpandedSizes:
    """How large and how deep a schema (its dicts, lists and values) is once written out.
    Class schemas are shared between the classes that use them, so a module of a few lines
    can stand for a schema of billions of nodes; each shared part is measured once."""

    def __init__(self) -> None:
        # id -> (the object, kept alive so that its id is not reused; nodes; levels)
        self._known: dict[int, tuple[Any, int, int]] = {}

    def of(self, schema: Any) -> tuple[int, int]:
        """The nodes and the levels of dicts and lists of `schema`, written out."""
        stack: list[tuple[Any, bool]] = [(schema, False)]
        while stack:
            value, children_done = stack.pop()
            if not isinstance(value, dict | list) or id(value) in self._known:
                continue
            children = list(value.values() if isinstance(value, dict) else value)
            if children_done:
                measured = [self._measure(child) for child in children]
                nodes = 1 + sum(n for n, _ in measured)
                levels = 1 + max((depth for _, depth in measured), default=0)
                self._known[id(value)] = (value, nodes, levels)
            else:
                stack.append((value, True))
                stack.extend((child, False) for child in children)
        return self._measure(schema)

    def _measure(self, value: Any) -> tuple[int, int]:
        if not isinstance(value, dict | list):
            return 1, 0
        _, nodes, levels = self._known[id(value)]
        return nodes, levels


def _names_in_fields(node: ast.ClassDef) -> set[str]:
    """Every name used in the annotations of the class's fields, forward references included."""
    names: set[str] = set()
    pending: list[ast.AST] = [s.annotation for s in node.body if isinstance(s, ast.AnnAssign)]
    while pending:
        for sub in ast.walk(pending.pop()):
            if isinstance(sub, ast.Name):
                names.add(sub.id)
            elif isinstance(sub, ast.Attribute):
                names.add(sub.attr)
            elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                try:
                    pending.append(ast.parse(sub.value, mode="eval"))
                except SyntaxError:
                    continue
    return names


def _record_schema(
    node: ast.ClassDef, bases: set[str], known: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    total = not any(
        k.arg == "total" and isinstance(k.value, ast.Constant) and k.value.value is False
        for k in node.keywords
    )
    for statement in node.body:
        if not (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)):
            continue
        field = statement.target.id
        properties[field] = _safe_annotation(statement.annotation, known).schema
        wrapper = _wrapper_name(statement.annotation)
        if "TypedDict" in bases:
            needed = wrapper == "Required" or (total and wrapper != "NotRequired")
        else:
            needed = statement.value is None
        if needed:
            required.append(field)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _wrapper_name(annotation: ast.expr) -> str:
    if isinstance(annotation, ast.Subscript):
        value = annotation.value
        if isinstance(value, ast.Attribute):
            return value.attr
        if isinstance(value, ast.Name):
            return value.id
    return ""


def _enum_schema(node: ast.ClassDef) -> dict[str, Any]:
    values: list[Any] = []
    for statement in node.body:
        if isinstance(statement, ast.Assign):
            literal = _json_literal(statement.value)
            if literal is not _MISSING:
                values.append(literal)
    kinds = {type(v) for v in values}
    schema: dict[str, Any] = {"enum": values}
    if kinds == {str}:
        schema = {"type": "string", "enum": values}
    elif kinds == {int}:
        schema = {"type": "integer", "enum": values}
    return schema if values else {}


# ---- functions ---------------------------------------------------------------------------------

_MISSING: Any = object()


def _json_value(value: Any) -> Any:
    """`value` as JSON data, or `_MISSING` when it has no JSON form."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else _MISSING
    if isinstance(value, list | tuple | set | frozenset):
        items = [_json_value(v) for v in value]
        if any(i is _MISSING for i in items):
            return _MISSING
        if isinstance(value, set | frozenset):
            try:
                items = sorted(items)
            except TypeError:
                return _MISSING
        return items
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            return _MISSING
        converted = {k: _json_value(v) for k, v in value.items()}
        return _MISSING if any(v is _MISSING for v in converted.values()) else converted
    return _MISSING


def _json_literal(node: ast.expr) -> Any:
    try:
        return _json_value(ast.literal_eval(node))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _MISSING


def _safe_annotation(node: ast.expr, classes: dict[str, dict[str, Any]]) -> MappedType:
    try:
        return annotation_schema(node, classes=classes)
    except TypeTooLarge:
        raise
    except TypeExpressionError:
        return MappedType()  # an annotation that is not a type says nothing about the value


def _docstring_type(type_name: str | None, classes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if not type_name:
        return {}
    try:
        return dict(type_string_schema(type_name, classes=classes).schema)
    except TypeExpressionError:
        return {}


def _parameters(
    node: ast.FunctionDef | ast.AsyncFunctionDef,
) -> Iterator[tuple[ast.arg, ast.expr | None]]:
    """Each positional and keyword-only parameter with its default (``*args``/``**kwargs`` left
    out)."""
    arguments = node.args
    positional = [*arguments.posonlyargs, *arguments.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(arguments.defaults))
    defaults += list(arguments.defaults)
    yield from zip(positional, defaults, strict=True)
    yield from zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)


def _tool(
    doc: CatalogDocument,
    node: ast.FunctionDef | ast.AsyncFunctionDef,
    classes: _ClassSchemas,
    module: str,
) -> Tool:
    place = f"function {node.name} (line {node.lineno})"
    if not re.match(TOOL_NAME_PATTERN, node.name):
        raise CatalogError(
            doc.name,
            place,
            f"function name '{node.name}' cannot be a tool name: a name starts with an ASCII "
            "letter or '_', then up to 127 ASCII letters, digits, '_', '.' or '-'; rename it",
        )
    raw_docstring = ast.get_docstring(node)
    parsed = _parse_docstring(raw_docstring) if raw_docstring else docstring_parser.Docstring()
    documented = {p.arg_name.lstrip("*"): p for p in parsed.params}
    properties: dict[str, Any] = {}
    required: list[str] = []
    for argument, default in _parameters(node):
        param_doc = documented.get(argument.arg)
        if argument.annotation is not None:
            schema = dict(_safe_annotation(argument.annotation, classes).schema)
        else:
            schema = _docstring_type(param_doc.type_name if param_doc else None, classes)
        if param_doc and param_doc.description:
            schema["description"] = param_doc.description
        if default is None:
            required.append(argument.arg)
        else:
            literal = _json_literal(default)
            if literal is not _MISSING:
                schema["default"] = literal
        properties[argument.arg] = schema
    return Tool(
        name=node.name,
        description=_description(parsed),
        parameters={"type": "object", "properties": properties, "required": required},
        response=_response(node, parsed, classes),
        source=ToolSource(
            kind="python", document=doc.name, place=place, callable=f"{module}:{node.name}"
        ),
    )


def _response(
    node: ast.FunctionDef | ast.AsyncFunctionDef,
    parsed: docstring_parser.Docstring,
    classes: _ClassSchemas,
) -> dict[str, Any] | None:
    returns = parsed.returns
    if node.returns is not None:
        schema = dict(_safe_annotation(node.returns, classes).schema)
    else:
        schema = _docstring_type(returns.type_name if returns else None, classes)
    if not schema or schema == {"type": "null"}:
        return None
    if returns and returns.description:
        schema["description"] = returns.description
    return schema


loader = PythonModuleLoader()
