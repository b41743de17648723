"""Calls written as Python, the way BFCL's prompted models answer:
`[get_weather(city="Oslo", days=3), math.hcf(number1=36, number2=24)]` (or one call without
brackets). Read with `ast`, never evaluated: argument values must be literals.
"""

from __future__ import annotations

import ast
from typing import Any

Call = tuple[str, dict[str, Any]]


def read_python_calls(text: str) -> list[Call] | None:
    """The calls in `text`, or None when it is not a list of Python calls with literal keyword
    arguments. Code fences around the text are ignored."""
    source = text.strip().removeprefix("```python").removeprefix("```").removesuffix("```")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return None
    body = tree.body
    nodes = body.elts if isinstance(body, ast.List | ast.Tuple) else [body]
    calls = []
    for node in nodes:
        call = _call(node)
        if call is None:
            return None
        calls.append(call)
    return calls


def _call(node: ast.expr) -> Call | None:
    if not isinstance(node, ast.Call) or node.args:
        return None
    name = _dotted_name(node.func)
    if name is None:
        return None
    arguments: dict[str, Any] = {}
    for keyword in node.keywords:
        if keyword.arg is None:  # **kwargs
            return None
        try:
            arguments[keyword.arg] = _literal(ast.literal_eval(keyword.value))
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None
    return name, arguments


def _dotted_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        owner = _dotted_name(node.value)
        return None if owner is None else f"{owner}.{node.attr}"
    return None


def _literal(value: Any) -> Any:
    """Tuples as lists, as they would be after a JSON round trip."""
    if isinstance(value, tuple | list):
        return [_literal(item) for item in value]
    if isinstance(value, dict):
        return {key: _literal(item) for key, item in value.items()}
    return value
