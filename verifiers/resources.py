"""What each tool of a catalog does to the API's resources: create, read, update or delete one
(or none of these), which of its arguments name a resource, and under which field a created
resource's key is found. The stateful mock (`verifiers.mock_conversation`) goes by it.

Inferred from what the catalog gives, per tool:

- A tool with an HTTP binding (OpenAPI operations) goes by its method and path template. Each
  path parameter names a resource of the kind the literal segment before it names, singular
  (`/users/{userId}/posts/{postId}`: a user, then a post). A path that ends in a parameter is an
  item: GET reads it, PUT/PATCH/POST update it, DELETE deletes it. A path that ends in a literal
  segment is a collection: POST creates one of its kind, unless the segment names an operation
  (`POST /flights/search`, `/login`, `/convert` create nothing); PUT, PATCH and DELETE act on
  the item their body's `id` (or `<kind>Id`) names (Swagger's `PUT /pet`); GET lists or
  searches, which changes nothing.
- Any other tool goes by the verb its name starts with (`create_`, `add`, `get`, `update_`,
  `delete`, `cancel_`, ...; snake, camel or dotted case, the last dotted part first:
  `bookings.update`) and the noun after it, singular (`getPetById`: a pet; `cancel_booking`: a
  booking). The item a read, update or delete acts
  on is its argument `id`, `<noun>_id` or `<noun>Id`, another `..._id` argument, or its only
  required argument (`delete_file(path)`); without one the tool changes nothing.
- Arguments named `<kind>_id`, `<kind>Id` or `<kind>_uuid` anywhere name a resource of that
  kind too (`placeOrder(petId)` orders a pet), except the created kind's own key in a create.

A created resource's key is the first of these fields found in the answer (or, failing that,
the arguments): the name a read, update or delete of its kind takes it by (`/user/{username}`:
`username`), `id`, `<kind>_id`, `<kind>Id`, then any other `..._id` field, whose kind it then
is (`book_flight` answering `booking_id`: a booking). Kinds are lower-case words, so an HTTP
tool and a named function that speak of the same noun meet.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from unified.model import HttpBinding, Tool


class Action(StrEnum):
    """What a call does to a resource."""

    create = "create"
    read = "read"
    update = "update"
    delete = "delete"
    other = "other"


_VERBS = {
    Action.create: (
        "create add new insert register book reserve place schedule open post make submit"
    ),
    Action.read: "get read fetch show retrieve view find lookup describe load",
    Action.update: "update edit modify set patch change rename replace put",
    Action.delete: "delete remove cancel destroy drop erase revoke del",
}
VERB_ACTIONS = {verb: action for action, verbs in _VERBS.items() for verb in verbs.split()}
"""The first word of a tool's name -> what the tool does."""

_OPERATIONS = (
    "search query find lookup login logout convert calculate compute estimate quote validate "
    "verify check preview translate send"
)
_NOT_CREATING = frozenset(_OPERATIONS.split())
"""First words of a collection path's last segment that POST runs, rather than creates
(`POST /flights/search`)."""
_STOP_NOUN = {"by", "with", "for", "from", "in", "of", "on", "to", "using", "and"}
_GENERIC_TAIL = {"id", "ids", "uuid", "details", "detail", "info", "information", "data", "record"}
_KEY_WORDS = {"id", "uuid"}
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_ITEM_METHODS = {"GET": Action.read, "PUT": Action.update, "PATCH": Action.update}
_COLLECTION_METHODS = {"POST": Action.create, "PUT": Action.update, "PATCH": Action.update}


def name_words(name: str) -> list[str]:
    """`getPetById` -> [get, pet, by, id]; `find_pet-by.id` alike."""
    return [word.lower() for word in _WORD.findall(name)]


def singular(word: str) -> str:
    """A crude singular, the same on both sides of every comparison (`pets` -> `pet`)."""
    word = word.lower()
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith(("ss", "us")) and len(word) > 3:
        return word[:-1]
    return word


def key_kind(argument: str) -> str | None:
    """The kind an argument named `<kind>_id` / `<kind>Id` / `<kind>_uuid` refers to; None for
    any other name (`id` itself included: its kind is the tool's)."""
    parts = name_words(argument)
    if len(parts) < 2 or parts[-1] not in _KEY_WORDS:
        return None
    return singular(parts[-2])


def is_key_name(argument: str) -> bool:
    """`id`, `uuid`, or `<kind>_id` and the like."""
    parts = name_words(argument)
    return bool(parts) and parts[-1] in _KEY_WORDS


def resource_key(value: Any) -> str | None:
    """A value as a resource key: strings and integers (`42` and `"42"` are one key, as in a
    URL); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int | str) and str(value) != "":
        return str(value)
    return None


@dataclass(frozen=True)
class ToolShape:
    """What one tool does: `action` on a resource of `kind`; `key` is the argument that names
    the item a read, update or delete acts on; `references` maps every argument naming a
    resource (the key included) to its kind."""

    action: Action = Action.other
    kind: str | None = None
    key: str | None = None
    references: dict[str, str] = field(default_factory=dict)


def _properties(tool: Tool) -> dict[str, Any]:
    properties = tool.parameters.get("properties")
    return properties if isinstance(properties, dict) else {}


def _http_shape(tool: Tool, http: HttpBinding) -> ToolShape:
    method = http.method.upper()
    references: dict[str, str] = {}
    previous: str | None = None
    last_kind: str | None = None
    ends_in_parameter = False
    for segment in [part for part in http.path.split("/") if part]:
        if segment.startswith("{") and segment.endswith("}"):
            sent = segment[1:-1]
            argument = http.argument_for("path", sent) or sent
            last_kind = singular(previous) if previous else singular(sent)
            references[argument] = last_kind
            ends_in_parameter = True
        else:
            previous = segment
            ends_in_parameter = False
    if ends_in_parameter:
        action = Action.delete if method == "DELETE" else _ITEM_METHODS.get(method, Action.update)
        if method in ("HEAD", "OPTIONS"):
            action = Action.other
        item_key = next(reversed(references))
        return _with_key_arguments(tool, ToolShape(action, last_kind, item_key, references))
    kind = singular(previous) if previous else None
    action = Action.delete if method == "DELETE" else _COLLECTION_METHODS.get(method, Action.other)
    operation = next(iter(name_words(previous)), None) if previous else None
    if action is Action.create and operation in _NOT_CREATING:
        action = Action.other
    shape = ToolShape(action, kind, None, references)
    if action in (Action.update, Action.delete):
        key = _own_key_argument(tool, kind)
        if key is None:
            return _with_key_arguments(tool, ToolShape(Action.other, kind, None, references))
        shape = ToolShape(action, kind, key, {**references, key: kind or key})
    return _with_key_arguments(tool, shape)


def _own_key_argument(tool: Tool, kind: str | None) -> str | None:
    """The argument that names the tool's own item: `id`, then `<kind>_id` / `<kind>Id`."""
    properties = _properties(tool)
    for name in properties:
        if name_words(name) in (["id"], ["uuid"]):
            return name
    for name in properties:
        if kind is not None and key_kind(name) == kind:
            return name
    return None


def _with_key_arguments(tool: Tool, shape: ToolShape) -> ToolShape:
    """The shape with every `<kind>_id` argument as a reference too (not the created kind's
    own key in a create: that is the new item's)."""
    references = dict(shape.references)
    for name in _properties(tool):
        if name in references:
            continue
        kind = key_kind(name)
        if kind is None and name_words(name) in (["id"], ["uuid"]):
            kind = shape.kind
        if kind is None or (shape.action is Action.create and kind == shape.kind):
            continue
        references[name] = kind
    return ToolShape(shape.action, shape.kind, shape.key, references)


def _verb_and_noun(name: str) -> tuple[Action, list[str]] | None:
    """The action a name's verb says and the words of its noun: `get_pet_by_id` (verb first),
    `bookings.update` and `database.create_backup` (the last dotted part's verb, its noun or the
    part before it)."""
    *heads, last = name.split(".")
    words = name_words(last)
    if words and words[0] in VERB_ACTIONS:
        rest = words[1:] or (name_words(heads[-1]) if heads else [])
        return VERB_ACTIONS[words[0]], rest
    words = name_words(name)
    if words and words[0] in VERB_ACTIONS:
        return VERB_ACTIONS[words[0]], words[1:]
    return None


def _named_shape(tool: Tool) -> ToolShape:
    found = _verb_and_noun(tool.name)
    if found is None:
        return _with_key_arguments(tool, ToolShape())
    action, rest = found
    noun: list[str] = []
    for word in rest:
        if word in _STOP_NOUN:
            break
        noun.append(word)
    while noun and noun[-1] in _GENERIC_TAIL:
        noun.pop()
    kind = singular(noun[-1]) if noun else None
    if action is Action.create or kind is None:
        return _with_key_arguments(tool, ToolShape(action if kind else Action.other, kind))
    key = _own_key_argument(tool, kind) or _sole_key(tool)
    if key is None:
        return _with_key_arguments(tool, ToolShape(Action.other, kind))
    return _with_key_arguments(tool, ToolShape(action, kind, key, {key: kind}))


def _sole_key(tool: Tool) -> str | None:
    """Another `..._id` argument, else the only required argument when it is a string or an
    integer."""
    properties = _properties(tool)
    keyed = [name for name in properties if is_key_name(name)]
    if len(keyed) == 1:
        return keyed[0]
    required = tool.parameters.get("required")
    if isinstance(required, list) and len(required) == 1 and required[0] in properties:
        schema = properties[required[0]]
        if isinstance(schema, dict) and schema.get("type") in ("string", "integer"):
            return str(required[0])
    return None


def tool_shape(tool: Tool) -> ToolShape:
    """What the tool does to which resources."""
    http = tool.source.http if tool.source is not None else None
    return _http_shape(tool, http) if http is not None else _named_shape(tool)


def item_fields(tool: Tool, arguments: dict[str, Any]) -> dict[str, Any]:
    """The fields of an item that a call's arguments give: all of them, but for an HTTP tool
    not its header and cookie values (an API key is no field of a pet), and a whole-body
    argument's object spread into its fields."""
    http = tool.source.http if tool.source is not None else None
    if http is None:
        return dict(arguments)
    fields: dict[str, Any] = {}
    for name, value in arguments.items():
        place = http.in_.get(name)
        if place in ("header", "cookie"):
            continue
        if name == http.body_argument and isinstance(value, dict):
            fields.update(value)
        else:
            fields[name] = value
    return fields


class Resources:
    """The shapes of a catalog's tools, and under which fields each kind's key is found."""

    def __init__(self, tools: Iterable[Tool]) -> None:
        self.tools = {tool.name: tool for tool in tools}
        self.shapes = {name: tool_shape(tool) for name, tool in self.tools.items()}
        fields: dict[str, list[str]] = {}
        for shape in self.shapes.values():
            if shape.kind is not None and shape.key is not None:
                found = fields.setdefault(shape.kind, [])
                if shape.key not in found:
                    found.append(shape.key)
        self._key_fields = fields

    def fields(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """The item fields the arguments of a call of the tool `name` give (`item_fields`)."""
        tool = self.tools.get(name)
        return item_fields(tool, arguments) if tool is not None else dict(arguments)

    def key_fields(self, kind: str) -> list[str]:
        """The fields a created resource of `kind` may carry its key in, most telling first."""
        named = [name for name in self._key_fields.get(kind, []) if not is_key_name(name)]
        keyed = [name for name in self._key_fields.get(kind, []) if is_key_name(name)]
        generic = ["id", f"{kind}_id", f"{kind}Id", "uuid"]
        return list(dict.fromkeys([*named, *keyed, *generic]))

    def created_key(
        self, kind: str | None, sources: Sequence[dict[str, Any]]
    ) -> tuple[str, str, str] | None:
        """(kind, key, field) of what a create made: the first key field of `kind` found in
        `sources` (the answer, then the arguments), else their first other `..._id` field,
        whose kind it is; None when nothing names it."""
        if kind is not None:
            for name in self.key_fields(kind):
                for source in sources:
                    key = resource_key(source.get(name))
                    if key is not None:
                        return kind, key, name
        for source in sources:
            for name, value in source.items():
                other = key_kind(name)
                key = resource_key(value)
                if other is not None and key is not None:
                    return other, key, name
        return None
