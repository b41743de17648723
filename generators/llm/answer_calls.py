"""Calls in what an LLM answered: each item of a `calls` list as a `ToolCall`."""

from __future__ import annotations

from typing import Any

import orjson

from llm.output import Unparseable
from unified.model import ToolCall


def read_call(item: Any, where: str) -> ToolCall:
    """The call an answer's `calls` item states; `where` names it in the error (`call 2`).

    Arguments that are not a JSON object are kept as text, so that the format verifier (or the
    mock API) rejects the call as `arguments_not_json`."""
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise Unparseable(f"{where} in the output is not an object with a string 'name'")
    arguments = item.get("arguments", {})
    if not isinstance(arguments, dict | str):
        arguments = orjson.dumps(arguments).decode()
    return ToolCall(name=item["name"], arguments=arguments)
