"""Salesforce xLAM function-calling rows, as in xlam-function-calling-60k.

A row is `{"id": int|str, "query": str, "tools": "<JSON text>", "answers": "<JSON text>"}`, where
`tools` is a list of `{name, description, parameters: {argument: {type, description, default}}}`
with Python-style type names (`str`, `List[int]`, `int, optional`) and `answers` is a list of
`{name, arguments}`. Files may be JSON Lines or one JSON array; `tools` and `answers` may also be
plain JSON lists.

Import: the tools become JSON Schema through the xLAM catalog loader
(`unified.catalogs.functions.xlam_loader`: an argument is required unless its type says optional
or it has a `default`; tools whose `parameters` already are a JSON Schema object are kept as
given); the answers become one step of tool calls (no step when there are none); the query style
is inferred from the calls. Keys other than the four go to
`meta.extra["xlam_fields"]` and are written back on export, and any type name that the JSON Schema
cannot give back exactly (`Dict[str, Any]`, `int, optional` with a default, ...) is kept in
`meta.extra["xlam_param_types"]`, so an xLAM row survives import and export unchanged.

Export writes `tools` and `answers` as JSON text with `, ` and `: ` separators and every tool
call of every step of the first turn into `answers`. The `id` is always an integer, as in
xlam-function-calling-60k (so exported rows concatenate with its rows: same columns, same
types): `xlam_row_id(sample.id)`, which is the sample id itself when that is a whole number
(imported xLAM rows keep their ids), else the first 53 bits of the SHA-256 of the id's UTF-8
text (a number JSON readers everywhere hold exactly, the same in every export of the sample, far
from the dataset's 0..59999). The sample id is found again by computing `xlam_row_id` of the ids
in the unified export, Parquet export or `actionforge samples` of the same job; a row read back
gets that number as its id.

A multi-turn sample is written as its first turn (the first query and that turn's calls): a
row holds one query, and the first turn is a right answer to it on its own.

What xLAM cannot hold, and so is lost on export: ids that are not whole numbers (see above),
the follow-up turns of a conversation, the task and format instructions, few-shot
examples, thoughts, tool results, final answers, step boundaries, call ids, tool response
schemas and sources, `required` on an argument that has a default, schema keywords an xLAM
argument cannot carry (only its type name, description, default, enum, format, minimum,
maximum, pattern and examples are written), and the metadata other than `meta.extra` (on
import `meta.style` is inferred again and `meta.created` is the time of import).
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from typing import Any

import orjson

from unified.catalogs.base import CatalogDocument
from unified.catalogs.functions import xlam_loader
from unified.errors import CatalogError, RowError
from unified.formats.base import (
    RowObjectFormat,
    infer_style,
    json_text,
    kind_of,
    row_id,
    short,
)
from unified.formats.schema_types import XLAM_ARGUMENT_KEYS, implied_by_type, xlam_type_name
from unified.model import Sample, SampleMeta, Step, Tool, ToolCall

CORE_KEYS = ("id", "query", "tools", "answers")
_INTEGER_ID = re.compile(r"0|[1-9][0-9]{0,17}")
_ID_BITS = 53
_ABSENT = object()


class XlamFormat(RowObjectFormat):
    """xLAM function-calling rows."""

    name = "xlam"

    def sample_from_row(self, row: dict[str, Any], document: str, number: int) -> Sample:
        return sample_from_row(row, document, number)

    def row_from_sample(self, sample: Sample) -> dict[str, Any]:
        return row_from_sample(sample)


def sample_from_row(row: dict[str, Any], document: str, number: int) -> Sample:
    """A unified sample from one xLAM row."""
    query = row.get("query")
    if not isinstance(query, str):
        raise RowError(
            document,
            number,
            f"field 'query' is {kind_of(query)}; write the user's request as a string",
        )
    tools, recorded_types = _tools(_json_list(row, "tools", document, number), document, number)
    calls = [
        _call_from_answer(answer, index, document, number)
        for index, answer in enumerate(_json_list(row, "answers", document, number))
    ]
    extra: dict[str, Any] = {}
    fields = {key: value for key, value in row.items() if key not in CORE_KEYS}
    if fields:
        extra["xlam_fields"] = fields
    if recorded_types:
        extra["xlam_param_types"] = recorded_types
    return Sample(
        id=row_id(row.get("id"), document, number),
        tools=tools,
        query=query,
        steps=[Step(tool_calls=calls)] if calls else [],
        meta=SampleMeta(
            style=infer_style(calls, len(tools)), source=f"xlam:{document}", extra=extra
        ),
    )


def _json_list(row: dict[str, Any], key: str, document: str, number: int) -> list[Any]:
    value = row.get(key)
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise RowError(
                document,
                number,
                f"field '{key}' is a string but not valid JSON ({exc}); "
                "write it as the JSON text of a list",
            ) from None
    if not isinstance(value, list):
        raise RowError(
            document,
            number,
            f"field '{key}' is not a JSON string or list: {short(value)}; "
            "write a list (or its JSON text)",
        )
    return value


def _tools(
    specs: list[Any], document: str, number: int
) -> tuple[list[Tool], dict[str, dict[str, str]]]:
    """The row's tools, normalised by the xLAM catalog loader, and the type names to keep."""
    tools: list[Tool] = []
    recorded: dict[str, dict[str, str]] = {}
    for index, spec in enumerate(specs):
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise RowError(
                document,
                number,
                f"tool {index + 1} in 'tools' is {short(spec)}; "
                "give each tool an object with a string 'name'",
            )
        parameters = spec.get("parameters")
        if isinstance(parameters, dict) and parameters.get("type") == "object":
            tool = Tool(
                name=spec["name"], description=spec.get("description") or "", parameters=parameters
            )
        else:
            tool = _load_xlam_tool(spec, index, document, number)
            types = _types_to_keep(parameters or {}, tool)
            if types:
                recorded[tool.name] = types
        tools.append(tool)
    return tools, recorded


def _load_xlam_tool(spec: dict[str, Any], index: int, document: str, number: int) -> Tool:
    try:
        normalised = _normalised_tool(orjson.dumps(spec, option=orjson.OPT_NON_STR_KEYS))
    except CatalogError as exc:
        raise RowError(
            document, number, f"tool {index + 1} in 'tools' ('{spec['name']}'): {exc.message}"
        ) from None
    return Tool.model_validate_json(normalised)


@lru_cache(maxsize=8192)
def _normalised_tool(spec: bytes) -> bytes:
    """The xLAM loader's tool for one tool spec, as JSON; datasets repeat the same tools in many
    rows, so each distinct spec is normalised once (and every row still gets its own `Tool`)."""
    (tool,) = xlam_loader.load(CatalogDocument("xlam row", "", [orjson.loads(spec)], ""))
    return tool.model_copy(update={"source": None}).model_dump_json().encode()


def _types_to_keep(arguments: dict[str, Any], tool: Tool) -> dict[str, str]:
    """The arguments whose type name the JSON Schema does not give back exactly."""
    properties = tool.parameters.get("properties") or {}
    required = set(tool.parameters.get("required") or [])
    kept = {}
    for name, spec in arguments.items():
        original = spec.get("type") if isinstance(spec, dict) else None
        schema = properties.get(name)
        if (
            isinstance(original, str)
            and isinstance(schema, dict)
            and xlam_type_name(schema, name in required) != original
        ):
            kept[name] = original
    return kept


def _call_from_answer(answer: Any, index: int, document: str, number: int) -> ToolCall:
    if not isinstance(answer, dict) or not isinstance(answer.get("name"), str):
        raise RowError(
            document,
            number,
            f"answer {index + 1} in 'answers' is {short(answer)}; "
            'write each answer as {"name": ..., "arguments": {...}}',
        )
    return ToolCall(name=answer["name"], arguments=answer.get("arguments") or {})


def xlam_row_id(sample_id: str) -> int:
    """The integer `id` of the xLAM row of the sample with id `sample_id`: the id itself when it
    is a whole number (at most 18 digits, no sign or leading zero), else the first 53 bits of the
    SHA-256 of its UTF-8 text."""
    if _INTEGER_ID.fullmatch(sample_id):
        return int(sample_id)
    digest = hashlib.sha256(sample_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - _ID_BITS)


def row_from_sample(sample: Sample) -> dict[str, Any]:
    """One xLAM row from a unified sample."""
    recorded = sample.meta.extra.get("xlam_param_types") or {}
    row: dict[str, Any] = {
        "id": xlam_row_id(sample.id),
        "query": sample.query,
        "tools": json_text(
            [_tool_spec(tool, recorded.get(tool.name) or {}) for tool in sample.tools]
        ),
        "answers": json_text(
            [
                {"name": call.name, "arguments": call.arguments}
                for step in sample.steps
                for call in step.tool_calls
            ]
        ),
    }
    for key, value in (sample.meta.extra.get("xlam_fields") or {}).items():
        row.setdefault(key, value)
    return row


def _tool_spec(tool: Tool, recorded: dict[str, str]) -> dict[str, Any]:
    properties = tool.parameters.get("properties")
    required = set(tool.parameters.get("required") or [])
    arguments: dict[str, Any] = {}
    for name, schema in (properties or {}).items():
        arguments[name] = _argument_spec(schema, name in required, recorded.get(name))
    return {"name": tool.name, "description": tool.description, "parameters": arguments}


def _argument_spec(schema: Any, required: bool, recorded: str | None) -> dict[str, Any]:
    if not isinstance(schema, dict):
        return {"type": recorded or "Any"}
    type_name = recorded or xlam_type_name(schema, required)
    implied = implied_by_type(type_name)
    spec: dict[str, Any] = {}
    if "description" in schema:
        spec["description"] = schema["description"]
    spec["type"] = type_name
    for key in XLAM_ARGUMENT_KEYS[1:]:
        if key in schema and implied.get(key, _ABSENT) != schema[key]:
            spec[key] = schema[key]
    return spec


FORMAT = XlamFormat()
