"""Tools described as text, in the formats prompt-format augmentation switches between: JSON
Schema (the OpenAI function list), Python signatures with docstrings, and plain text."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from unified.model import Tool

_PYTHON_TYPES = {
    "string": "str",
    "integer": "int",
    "number": "float",
    "boolean": "bool",
    "null": "None",
    "object": "dict[str, Any]",
    "array": "list[Any]",
}


def tools_json_schema(tools: Sequence[Tool]) -> str:
    """The tools as a JSON list of `{name, description, parameters}`."""
    entries = [
        {"name": tool.name, "description": tool.description, "parameters": tool.parameters}
        for tool in tools
    ]
    return json.dumps(entries, ensure_ascii=False, indent=2)


def tools_python(tools: Sequence[Tool]) -> str:
    """The tools as Python function stubs: typed signature and a docstring with the arguments."""
    return "\n\n".join(_python_stub(tool) for tool in tools)


def tools_text(tools: Sequence[Tool]) -> str:
    """The tools as plain text: one paragraph per tool, one line per argument."""
    return "\n\n".join(_text_entry(tool) for tool in tools)


TOOL_FORMATS: dict[str, Callable[[Sequence[Tool]], str]] = {
    "json_schema": tools_json_schema,
    "python": tools_python,
    "text": tools_text,
}
"""Tool-description formats by name."""


def _properties(tool: Tool) -> tuple[dict[str, Any], set[str]]:
    properties = tool.parameters.get("properties")
    required = tool.parameters.get("required")
    return (
        properties if isinstance(properties, dict) else {},
        {name for name in required if isinstance(name, str)}
        if isinstance(required, list)
        else set(),
    )


def python_type(schema: Any) -> str:
    """A Python type annotation for a JSON Schema (`Literal[...]` for enums, `X | None`)."""
    if not isinstance(schema, dict):
        return "Any"
    if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
        return f"Literal[{', '.join(json.dumps(v, ensure_ascii=False) for v in schema['enum'])}]"
    if "const" in schema:
        return f"Literal[{json.dumps(schema['const'], ensure_ascii=False)}]"
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            return " | ".join(dict.fromkeys(python_type(sub) for sub in schema[key])) or "Any"
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    names = [_one_type(k, schema) for k in kinds if isinstance(k, str)]
    return " | ".join(dict.fromkeys(names)) if names else "Any"


def _one_type(kind: str, schema: dict[str, Any]) -> str:
    if kind == "array" and isinstance(schema.get("items"), dict):
        return f"list[{python_type(schema['items'])}]"
    return _PYTHON_TYPES.get(kind, "Any")


def _python_stub(tool: Tool) -> str:
    properties, required = _properties(tool)
    ordered = sorted(properties, key=lambda name: name not in required)
    arguments = []
    for name in ordered:
        annotation = f"{name}: {python_type(properties[name])}"
        if name in required:
            arguments.append(annotation)
        else:
            default = (
                properties[name].get("default") if isinstance(properties[name], dict) else None
            )
            arguments.append(f"{annotation} = {_python_literal(default)}")
    lines = [f"def {tool.name}({', '.join(arguments)}) -> Any:", '    """']
    if tool.description:
        lines.append(f"    {tool.description.strip()}")
    if ordered:
        lines += ["", "    Args:"]
        for name in ordered:
            schema = properties[name] if isinstance(properties[name], dict) else {}
            lines.append(f"        {name}: {schema.get('description', '').strip()}".rstrip())
    lines.append('    """')
    return "\n".join(lines)


def _python_literal(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def _text_entry(tool: Tool) -> str:
    properties, required = _properties(tool)
    head = f"{tool.name}: {tool.description.strip()}" if tool.description else tool.name
    lines = [head]
    if not properties:
        lines.append("  (no arguments)")
    for name, schema in properties.items():
        schema = schema if isinstance(schema, dict) else {}
        facts = [_type_words(schema), "required" if name in required else "optional"]
        if isinstance(schema.get("enum"), list):
            facts.append("one of " + ", ".join(json.dumps(v) for v in schema["enum"]))
        if "default" in schema:
            facts.append(f"default {json.dumps(schema['default'], ensure_ascii=False)}")
        if isinstance(schema.get("format"), str):
            facts.append(f"format {schema['format']}")
        text = f"  - {name} ({'; '.join(facts)})"
        description = str(schema.get("description", "")).strip()
        lines.append(f"{text}: {description}" if description else text)
    return "\n".join(lines)


def _type_words(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    if kind == "array" and isinstance(schema.get("items"), dict):
        return f"array of {_type_words(schema['items'])}"
    return str(kind) if isinstance(kind, str) else "any"
