"""What a mock API answers to a good call: a value sampled from the tool's response schema,
the same for the same tool and arguments.

The random generator of a call is seeded from a BLAKE2b hash of the tool's name and the
canonical JSON of its arguments (sorted keys), so re-running a call, in this process or
another, gives the same answer. Values come from the project's schema sampler
(`unified.values.schema_values`); a sampled value that does not pass the response schema is sampled
again, up to `RESPONSE_ATTEMPTS` times. Top-level response properties named like an argument take
the argument's value where the schema allows it (`GET /pets/{id}` answers the pet with that id).

`overlay` sets the fields of a resource a conversation created or updated on an answer
(`verifiers.mock_conversation`).

A tool without a response schema answers `{"status": "ok", "tool": NAME, "result": {"id": ID,
...the arguments}}`, where ID is a UUID drawn from the same seed.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from unified.model import Tool
from unified.values.fakes import Fakes
from unified.values.schema_values import SchemaSampler, Unsatisfiable
from verifiers.schema_fast_path import FastCheck, fast_check

RESPONSE_ATTEMPTS = 8
"""Draws of a response before the last one is answered even though it fails the schema."""


def call_seed(tool_name: str, arguments: dict[str, Any]) -> int:
    """The seed of a call's answer: a stable hash of the tool's name and its arguments."""
    canonical = orjson.dumps(arguments, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    digest = hashlib.blake2b(tool_name.encode() + b"\0" + canonical, digest_size=8).digest()
    return int.from_bytes(digest, "big")


class ResponseMaker:
    """Makes the answers of one tool: its response schema's sampler and validator, compiled once."""

    def __init__(self, tool: Tool) -> None:
        self.tool = tool
        schema = tool.response
        self._schema = schema if isinstance(schema, dict) and schema else None
        self._sampler = SchemaSampler(self._schema) if self._schema is not None else None
        self._validator: Draft202012Validator | None = None
        self._fast: FastCheck | None = None
        if self._schema is not None:
            try:
                Draft202012Validator.check_schema(self._schema)
            except SchemaError:
                pass
            else:
                self._validator = Draft202012Validator(
                    self._schema, format_checker=Draft202012Validator.FORMAT_CHECKER
                )
                self._fast = fast_check(self._schema)
        properties = self._schema.get("properties") if self._schema is not None else None
        self._echoed = frozenset(properties) if isinstance(properties, dict) else frozenset()

    def answer(self, arguments: dict[str, Any], draw: int = 0) -> Any:
        """The answer to a call with these (already validated) arguments; `draw` > 0 gives
        another answer to the same call (a second item created by the same call)."""
        fakes = Fakes(random.Random(call_seed(self.tool.name, arguments) + draw))
        if self._sampler is None or self._schema is None:
            return self._plain_answer(arguments, fakes)
        value: Any = None
        sampled = False
        for _ in range(RESPONSE_ATTEMPTS):
            try:
                value = self._sampler.value(self._schema, "", fakes, depth=0, refs=0)
            except Unsatisfiable:
                continue
            sampled = True
            value = self._echo(value, arguments)
            if self._passes(value):
                return value
        return value if sampled else self._plain_answer(arguments, fakes)

    def _passes(self, value: Any) -> bool:
        if self._validator is None:
            return True
        if self._fast is not None and self._fast(value):
            return True
        try:
            return bool(self._validator.is_valid(value))
        except Exception:  # a schema the validator cannot apply, e.g. a broken $ref
            return True

    def _echo(self, value: Any, arguments: dict[str, Any]) -> Any:
        """`value` with top-level properties named like an argument set to the argument's value,
        unless that breaks the schema."""
        if not isinstance(value, dict):
            return value
        for name in arguments:
            if (name in value or name in self._echoed) and value.get(name) != arguments[name]:
                echoed = {**value, name: arguments[name]}
                if self._passes(echoed):
                    value = echoed
        return value

    def overlay(self, value: Any, fields: dict[str, Any]) -> Any:
        """`value` (an answer of this tool) with the fields of a resource the conversation
        knows set on it, each one unless that breaks the response schema. A plain answer
        (no response schema) carries them in its `result`."""
        if not isinstance(value, dict):
            return value
        if self._sampler is None:
            result = value.get("result")
            if value.get("tool") == self.tool.name and isinstance(result, dict):
                return {**value, "result": {**result, **fields}}
            return value
        merged = {**value, **fields}
        if merged == value or self._passes(merged):
            return merged
        for name, field in fields.items():
            if value.get(name) != field:
                changed = {**value, name: field}
                if self._passes(changed):
                    value = changed
        return value

    def _plain_answer(self, arguments: dict[str, Any], fakes: Fakes) -> dict[str, Any]:
        return {
            "status": "ok",
            "tool": self.tool.name,
            "result": {"id": fakes.uuid(), **arguments},
        }
