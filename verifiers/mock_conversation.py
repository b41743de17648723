"""A catalog's mock API with the state of one conversation: what its calls created, updated and
deleted (`MockConversation(api)`; the execution stage makes one per multi-turn sample, the HTTP
mock one per `X-Conversation-Id`).

What each tool does is inferred from the catalog (`verifiers.resources`: HTTP method and path
template of OpenAPI operations, the verb of other tools' names). Within one conversation:

- A create answers as the stateless mock does (the same answer for the same call) and keeps
  the item under the key its answer (or its arguments) gives, with its fields (the arguments and
  the answer). When the answer's key is taken by an item created earlier in the conversation,
  the answer is drawn again (the same draws every time), so two creates make two items.
- A read of a kept item answers the stateless answer with the item's fields set on it, each
  where the response schema allows: the id a create answered is accepted by the later call and
  returned by it, with the name it was created with.
- An update sets its arguments (but the item's key) on the item, known or not, and answers with
  the item's fields set on its answer; a later read returns them. (Header and cookie values are
  no fields of an item; a whole-body argument gives the fields of its object.)
- A delete answers as before and the item is gone. Any later call that names it, by its key or
  by any argument that names an item of that kind (`/pets/{id}/photos`, `placeOrder(petId)`),
  deleting it again included, is refused: HTTP 404 with `{"error": {"reason":
  "resource_not_found", "detail", "tool"}}`, the detail naming the argument, the item and the
  call that deleted it. The execution stage rejects the sample for it, as for any failed call,
  and keeps the error object as that call's result: a conversation whose assistant reads what it
  deleted is not one to train on. (The catalog's own error schema is not used: a tool keeps only
  its 2xx response schema.)
- Calls about items the conversation never touched answer exactly as the stateless mock, and
  so does everything for a single-turn sample (`MockApi.call`): the same answer for the same
  call. Lists and searches do not gain or lose the items a conversation created or deleted.

Python-module tools are real functions run by the execution stage, each call in a fresh
sandboxed process; state across their calls is theirs to keep, and the sandbox keeps none.
"""

from __future__ import annotations

from typing import Any

from unified.model import ToolCall
from verifiers.mock_api import MockApi, MockResult, error_body
from verifiers.resources import Action, ToolShape, resource_key
from verifiers.verdict import Reason

CREATE_DRAWS = 8
"""Answers a create draws at most while the key each gives is taken by an earlier item."""
NOT_FOUND_STATUS = 404

_NO_SHAPE = ToolShape()


class MockConversation:
    """The calls of one conversation against `api`, in order; `turn` (1-based, set by whoever
    plays the conversation) is named in the detail of a refused call."""

    def __init__(self, api: MockApi) -> None:
        self.api = api
        self.turn: int | None = None
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.gone: dict[tuple[str, str], str] = {}
        """(kind, key) of each deleted item -> which call deleted it, in words."""

    def call(self, tool_call: ToolCall, index: int | None = None) -> MockResult:
        """Validate the call's arguments and answer it in the conversation's state; `index`
        is its place in its turn."""
        refused = self.api.check(tool_call, index)
        if refused is not None:
            return refused
        arguments = tool_call.arguments
        assert isinstance(arguments, dict)  # the check rejects anything else
        shape = self.api.resources.shapes.get(tool_call.name, _NO_SHAPE)
        for argument, kind in shape.references.items():
            key = resource_key(arguments.get(argument))
            if key is not None and (kind, key) in self.gone:
                return self._not_found(tool_call, index, argument, kind, key)
        if shape.action is Action.create:
            return MockResult(status=200, body=self._create(tool_call.name, shape, arguments))
        maker = self.api.maker(tool_call.name)
        answer = maker.answer(arguments)
        key = resource_key(arguments.get(shape.key)) if shape.key is not None else None
        if key is None or shape.kind is None:
            return MockResult(status=200, body=answer)
        item = (shape.kind, key)
        if shape.action is Action.read and item in self.items:
            answer = maker.overlay(answer, self.items[item])
        elif shape.action is Action.update:
            given = self.api.resources.fields(tool_call.name, arguments)
            changes = {name: value for name, value in given.items() if name != shape.key}
            fields = {**self.items.get(item, {}), **changes}
            self.items[item] = fields
            answer = maker.overlay(answer, fields)
        elif shape.action is Action.delete:
            self.items.pop(item, None)
            self.gone[item] = self._deleted_by(tool_call.name, index)
        return MockResult(status=200, body=answer)

    def _create(self, name: str, shape: ToolShape, arguments: dict[str, Any]) -> Any:
        maker = self.api.maker(name)
        given = self.api.resources.fields(name, arguments)
        answer: Any = None
        created: tuple[str, str, str] | None = None
        for draw in range(CREATE_DRAWS):
            answer = maker.answer(arguments, draw)
            created = self.api.resources.created_key(shape.kind, [_fields_of(answer), given])
            if created is None or created[2] in given:
                break  # nothing to keep, or a key the caller chose: that item is replaced
            if (created[0], created[1]) not in self.items:
                break
        if created is not None:
            kind, key, _ = created
            self.items[(kind, key)] = {**given, **_fields_of(answer)}
            self.gone.pop((kind, key), None)
        return answer

    def _deleted_by(self, name: str, index: int | None) -> str:
        call = f"call {index} ({name!r})" if index is not None else f"a call of {name!r}"
        return f"{call} of turn {self.turn}" if self.turn is not None else call

    def _not_found(
        self, tool_call: ToolCall, index: int | None, argument: str, kind: str, key: str
    ) -> MockResult:
        where = (
            f"call {index} ({tool_call.name!r})"
            if index is not None
            else (f"call of {tool_call.name!r}")
        )
        deleted = self.gone[(kind, key)]
        detail = (
            f"{where}: argument {argument!r} names the {kind} {key!r}, deleted by {deleted} "
            "earlier in this conversation; it is gone"
        )
        reason = Reason.resource_not_found.value
        body = error_body(reason, detail, tool_call.name)
        return MockResult(status=NOT_FOUND_STATUS, body=body, reason=reason, detail=detail)


def _fields_of(answer: Any) -> dict[str, Any]:
    """The fields of the item an answer describes: the answer object, or the `result` of a plain
    answer (a tool without a response schema)."""
    if not isinstance(answer, dict):
        return {}
    result = answer.get("result")
    if answer.get("status") == "ok" and isinstance(result, dict) and "tool" in answer:
        return result
    return answer
