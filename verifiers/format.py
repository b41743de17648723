"""The format stage: every tool call names a known tool and its arguments satisfy the tool's
JSON Schema. Never raises on bad model output; validators are compiled once per tool schema.
Arguments are checked first by a fast validator (`verifiers.schema_fast_path`) that only ever
lets through what `jsonschema` accepts; every rejection comes from `jsonschema`."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError
from jsonschema.protocols import Validator

from unified.model import Sample, Tool, ToolCall
from verifiers.schema_fast_path import FastCheck, fast_check
from verifiers.verdict import Reason, Verdict

STAGE = "format"

_REASON_BY_KEYWORD = {
    "required": Reason.missing_required_argument,
    "dependentRequired": Reason.missing_required_argument,
    "type": Reason.argument_type_mismatch,
    "enum": Reason.enum_violation,
    "const": Reason.enum_violation,
    "additionalProperties": Reason.unexpected_argument,
    "unevaluatedProperties": Reason.unexpected_argument,
}
_PRIORITY = [
    Reason.unexpected_argument,
    Reason.missing_required_argument,
    Reason.argument_type_mismatch,
    Reason.enum_violation,
    Reason.schema_violation,
]


class _CompiledTool:
    __slots__ = ("declared", "fast", "open_ended", "validator")

    def __init__(self, parameters: dict[str, Any]) -> None:
        Draft202012Validator.check_schema(parameters)
        self.validator: Validator = Draft202012Validator(
            parameters, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        properties = parameters.get("properties")
        self.declared = frozenset(properties) if isinstance(properties, dict) else frozenset()
        extra = parameters.get("additionalProperties", False)
        self.open_ended = extra is not False or "patternProperties" in parameters
        self.fast: FastCheck | None = fast_check(parameters)


def _argument_path(error: ValidationError) -> str:
    path = list(error.absolute_path)
    if not path:
        return "arguments"
    head, *rest = path
    return f"argument '{head}'" + "".join(f"[{p!r}]" for p in rest)


def _rule(error: ValidationError) -> str:
    pointer = "/".join(str(p) for p in error.absolute_schema_path)
    return f"{error.validator} at /{pointer}"


def _classify(error: ValidationError) -> Reason:
    return _REASON_BY_KEYWORD.get(str(error.validator), Reason.schema_violation)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class FormatVerifier:
    """Checks samples' tool calls against tool schemas.

    Keep one instance per worker: compiled validators are cached by tool name and schema.
    """

    def __init__(self, cache_size: int = 4096) -> None:
        self._cache: OrderedDict[bytes, _CompiledTool | SchemaError] = OrderedDict()
        self._cache_size = cache_size
        # By the parameters object itself: samples read from one file share their tools
        # (unified.sample_json), so most calls find theirs without serialising the schema.
        # The entry keeps the object, so its id is not reused while it is there.
        self._by_identity: dict[int, tuple[object, _CompiledTool | SchemaError]] = {}

    def _compiled(self, tool: Tool) -> _CompiledTool | SchemaError:
        parameters = tool.parameters
        seen = self._by_identity.get(id(parameters))
        if seen is not None and seen[0] is parameters:
            return seen[1]
        compiled = self._compiled_by_schema(tool)
        if len(self._by_identity) >= self._cache_size:
            self._by_identity.clear()
        self._by_identity[id(parameters)] = (parameters, compiled)
        return compiled

    def _compiled_by_schema(self, tool: Tool) -> _CompiledTool | SchemaError:
        key = orjson.dumps(tool.parameters, option=orjson.OPT_SORT_KEYS)
        compiled = self._cache.get(key)
        if compiled is not None:
            self._cache.move_to_end(key)
            return compiled
        try:
            compiled = _CompiledTool(tool.parameters)
        except SchemaError as exc:
            compiled = exc
        self._cache[key] = compiled
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return compiled

    def verify(self, sample: Sample, tools: Sequence[Tool] | None = None) -> Verdict:
        """Accept the sample, or reject it naming the first bad call, argument and rule.

        `tools` defaults to the sample's own tools. A sample that calls nothing is accepted. Every
        call of every turn is checked; in a conversation the detail names the turn (1-based)
        and the call's place in it.
        """
        by_name = {tool.name: tool for tool in (sample.tools if tools is None else tools)}
        if not sample.is_multi_turn():
            for index, call in enumerate(sample.tool_calls()):
                verdict = self.verify_call(call, by_name, index)
                if verdict is not None:
                    return verdict
            return Verdict.accept(STAGE)
        for number, turn in enumerate(sample.conversation(), 1):
            calls = [call for step in turn.steps for call in step.tool_calls]
            for index, call in enumerate(calls):
                verdict = self.verify_call(call, by_name, index)
                if verdict is not None:
                    return verdict.model_copy(update={"detail": f"turn {number}, {verdict.detail}"})
        return Verdict.accept(STAGE)

    def verify_call(
        self, call: ToolCall, tools: dict[str, Tool], index: int | None = None
    ) -> Verdict | None:
        """The rejection of one call by the tools keyed by name, or None when it passes;
        `index` is its place in its sample, named in the detail when given."""
        where = f"call {index} ({call.name!r})" if index is not None else f"call of {call.name!r}"
        tool = tools.get(call.name)
        if tool is None:
            known = ", ".join(sorted(tools)[:20]) or "none"
            return Verdict.reject(
                STAGE, Reason.unknown_tool, f"{where}: no tool named {call.name!r}; known: {known}"
            )
        arguments = call.arguments
        if not isinstance(arguments, dict):
            return Verdict.reject(
                STAGE,
                Reason.arguments_not_json,
                f"{where}: arguments are not a JSON object: {_short(arguments)}",
            )
        compiled = self._compiled(tool)
        if isinstance(compiled, SchemaError):
            return Verdict.reject(
                STAGE,
                Reason.invalid_tool_schema,
                f"{where}: the tool's parameters are not valid JSON Schema: {compiled.message}",
            )
        if not compiled.open_ended:
            for name in arguments:
                if name not in compiled.declared:
                    declared = ", ".join(sorted(compiled.declared)) or "none"
                    return Verdict.reject(
                        STAGE,
                        Reason.unexpected_argument,
                        f"{where}: argument {name!r} is not declared by the tool's schema "
                        f"(declared: {declared})",
                    )
        if compiled.fast is not None and compiled.fast(arguments):
            return None
        try:
            errors = list(compiled.validator.iter_errors(arguments))
        except Exception as exc:  # a schema the validator cannot apply, e.g. a broken $ref
            return Verdict.reject(
                STAGE,
                Reason.invalid_tool_schema,
                f"{where}: the tool's schema cannot be applied: {type(exc).__name__}: {exc}",
            )
        if not errors:
            return None
        error = min(errors, key=lambda e: (_PRIORITY.index(_classify(e)), len(e.absolute_path)))
        return Verdict.reject(
            STAGE,
            _classify(error),
            f"{where}: {_argument_path(error)}: {error.message} (rule: {_rule(error)})",
        )
