"""The xLAM unified format: tools, calls, steps and samples.

A `Sample` holds the six modules of the xLAM unified format (task instruction, tools, format
instruction, few-shot examples, query, steps) plus metadata. Every importer produces samples,
every exporter renders them, every verifier judges them.

A sample is a conversation: `query` and `steps` are its first turn (the user's message and the
steps that answer it), `turns` the user's follow-up turns, each with the steps that answer it.
A single-turn sample has no `turns`, is written as format 1.0 without the key, exactly as before;
a sample with follow-up turns is written as format 1.1.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)

FORMAT_VERSION = "1.1"
"""The newest version of the unified format: the version of the published JSON Schema, and the
one a multi-turn sample is written with."""
SINGLE_TURN_VERSION = "1.0"
"""The version a sample without follow-up turns is written with (1.0 readers read it as is)."""
MULTI_TURN_VERSION = "1.1"
"""The first version with follow-up turns (`turns`)."""

TOOL_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$"


class QueryStyle(StrEnum):
    """APIGen's query styles, plus general instruction following."""

    simple = "simple"
    multiple = "multiple"
    parallel = "parallel"
    parallel_multiple = "parallel_multiple"
    irrelevance = "irrelevance"
    instruction = "instruction"
    multi_turn = "multi_turn"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class HttpBinding(_Model):
    """Where each argument of an HTTP tool goes: `in_` maps argument name to
    `path`, `query`, `header`, `cookie` or `body` (a property of the JSON body);
    `body_argument` names the argument that carries the whole body when it is not an object;
    `sent_as` maps an argument renamed because two places share a parameter name (`id_query`)
    to the name the request uses for it (`id`)."""

    method: str
    path: str
    servers: list[str] = Field(default_factory=list)
    in_: dict[str, str] = Field(default_factory=dict, alias="in")
    body_argument: str | None = None
    content_type: str | None = None
    sent_as: dict[str, str] | None = None

    def sent_name(self, argument: str) -> str:
        """The name the request uses for `argument`."""
        return (self.sent_as or {}).get(argument, argument)

    def argument_for(self, place: str, name: str) -> str | None:
        """The argument the request sends in `place` under `name`, if the tool has one."""
        for argument, where in self.in_.items():
            if where == place and self.sent_name(argument) == name:
                return argument
        return None


class ToolSource(_Model):
    """Where a tool came from: the loader that read it, the document, and the place in it
    (a JSON pointer, an operation, or `module:function` for Python catalogs)."""

    kind: str
    document: str | None = None
    place: str | None = None
    http: HttpBinding | None = None
    callable: str | None = None


class Tool(_Model):
    """A callable tool: its name, what it does, its arguments as a JSON Schema object, and the
    schema of its response where known."""

    name: str = Field(pattern=TOOL_NAME_PATTERN)
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    response: dict[str, Any] | None = None
    source: ToolSource | None = None

    def openai(self) -> dict[str, Any]:
        """This tool in the OpenAI tools format."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


class Acceptable(_Model):
    """The values one argument of a reference call may take in a right answer.

    `values` are acceptable as they are; `objects` are acceptable objects given field by field
    (each field with its own acceptable values); `object_lists` acceptable lists of such objects,
    item by item; `omittable` says the argument may be left out."""

    values: list[Any] = Field(default_factory=list)
    objects: list[dict[str, Acceptable]] = Field(default_factory=list)
    object_lists: list[list[dict[str, Acceptable]]] = Field(default_factory=list)
    omittable: bool = False


class ToolCall(_Model):
    """One call of a tool. `arguments` is a JSON object; model output whose arguments are not a
    JSON object is kept verbatim as a string so the format verifier can reject it with a reason.

    `acceptable`, on a reference answer, lists per argument every value a right answer may give
    (`arguments` holds one of them); an argument it does not name must be left out. None: the
    only right answer is `arguments` itself. The calls of one step are parallel: a right answer
    may make them in any order."""

    name: str
    arguments: dict[str, Any] | str = Field(default_factory=dict)
    id: str | None = None
    acceptable: dict[str, Acceptable] | None = None

    @field_validator("arguments", mode="before")
    @classmethod
    def _parse_json_text(cls, value: Any) -> Any:
        if isinstance(value, str | bytes):
            try:
                parsed = orjson.loads(value)
            except orjson.JSONDecodeError:
                return value if isinstance(value, str) else value.decode("utf-8", "replace")
            if isinstance(parsed, dict):
                return parsed
            return value if isinstance(value, str) else value.decode("utf-8", "replace")
        return value


class Step(_Model):
    """One step of a trajectory: an optional thought, the tool calls made, their results
    (aligned with `tool_calls` by position), and an optional final answer."""

    thought: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    results: list[Any] = Field(default_factory=list)
    answer: str | None = None


class Example(_Model):
    """A few-shot example: a query and the steps that answer it."""

    query: str
    steps: list[Step] = Field(default_factory=list)


class Turn(_Model):
    """One turn of a conversation: the user's message and the steps that answer it (calls,
    their results, the answer)."""

    query: str
    steps: list[Step] = Field(default_factory=list)


class SampleMeta(_Model):
    """Where a sample came from and how it was made."""

    style: QueryStyle | None = None
    source: str | None = None
    parent_id: str | None = None
    transformation: str | None = None
    generator: str | None = None
    seed: int | None = None
    created: datetime = Field(default_factory=lambda: datetime.now(UTC))
    extra: dict[str, Any] = Field(default_factory=dict)


class Sample(_Model):
    """One sample in the unified format: a conversation whose first turn is `query` and
    `steps`, followed by the user's follow-up `turns` (none for a single-turn sample)."""

    format_version: str = SINGLE_TURN_VERSION
    id: str
    task_instruction: str = ""
    tools: list[Tool] = Field(default_factory=list)
    format_instruction: str = ""
    examples: list[Example] = Field(default_factory=list)
    query: str
    steps: list[Step] = Field(default_factory=list)
    turns: list[Turn] = Field(
        default_factory=list,
        exclude_if=lambda turns: not turns,
        description="The user's follow-up turns after `query` and `steps`, in order (format "
        "1.1); left out when there are none.",
    )
    meta: SampleMeta = Field(default_factory=SampleMeta)

    @model_validator(mode="after")
    def _multi_turn_version(self) -> Sample:
        if self.turns and self.format_version == SINGLE_TURN_VERSION:
            self.format_version = MULTI_TURN_VERSION
        return self

    @field_serializer("format_version")
    def _written_version(self, version: str) -> str:
        # Also for a copy given follow-up turns after validation (`model_copy(update=...)`).
        return MULTI_TURN_VERSION if self.turns and version == SINGLE_TURN_VERSION else version

    def is_multi_turn(self) -> bool:
        """Whether the user speaks more than once."""
        return bool(self.turns)

    def conversation(self) -> list[Turn]:
        """Every turn in order: the first (`query`, `steps`), then the follow-up turns."""
        return [Turn(query=self.query, steps=self.steps), *self.turns]

    def all_steps(self) -> list[Step]:
        """The steps of every turn, in order."""
        return [*self.steps, *(step for turn in self.turns for step in turn.steps)]

    def tool_calls(self) -> list[ToolCall]:
        """Every tool call of every step of every turn, in order."""
        steps = self.all_steps() if self.turns else self.steps
        return [call for step in steps for call in step.tool_calls]

    def final_answer(self) -> str | None:
        """The conversation's last answer, if any."""
        for step in reversed(self.all_steps() if self.turns else self.steps):
            if step.answer is not None:
                return step.answer
        return None

    def to_json(self) -> str:
        """One line of unified JSON."""
        return self.model_dump_json(by_alias=True, exclude_none=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> Sample:
        return cls.model_validate_json(text)


def unified_json_schema() -> dict[str, Any]:
    """The JSON Schema of a unified sample, as published in docs/."""
    schema = Sample.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://actionforge.dev/schemas/unified-sample-{FORMAT_VERSION}.json"
    schema["title"] = "ActionForge unified sample"
    return schema


def unified_json_schema_text() -> str:
    """`unified_json_schema()` as the indented JSON text published in docs/."""
    return orjson.dumps(unified_json_schema(), option=orjson.OPT_INDENT_2).decode() + "\n"
