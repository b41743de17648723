"""A `MockApi` served over HTTP (Starlette): the documented routes of OpenAPI tools, and
`POST /tools/{name}` with a JSON object of arguments for every tool.

A documented route is matched by method and path template, also under the path of each of the
document's servers (`/v1/pets` as well as `/pets`); a concrete path wins over a templated one.
Arguments are read from where the tool's HTTP binding puts them: path, query, header and cookie
values are strings, converted to the argument schema's type (integer, number, boolean, null,
JSON for objects; an array from repeated query parameters or one comma-separated value); the
body is JSON (its properties, or the whole of it for a `body_argument`) or a form. A renamed
argument (`id_query`) is read from the name the request uses (`sent_as`: `id`). Query
parameters the tool does not declare become arguments too, so the check rejects them.
Answers: 200 with the response as JSON; 404 or 422 with `{"error": {"reason", "detail", "tool"}}`.
`GET /tools` lists the tools in the OpenAI tools format.

Requests that carry the same `X-Conversation-Id` header are one conversation: they are answered
in its state (`MockConversation(api)`: an item one request created is there for the next, one it
deleted answers 404 `resource_not_found`). The app keeps the last `CONVERSATIONS_KEPT`
conversations it saw, least recently used first out. A request without the header is answered on
its own, the same answer for the same call, as before.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlparse

import orjson
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from unified.model import HttpBinding, Tool, ToolCall
from verifiers.mock_api import MockApi, MockResult, error_body
from verifiers.mock_conversation import MockConversation
from verifiers.verdict import Reason

_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
_TEMPLATE = re.compile(r"\{([^{}]+)\}")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
CONVERSATION_HEADER = "X-Conversation-Id"
CONVERSATIONS_KEPT = 1024
"""Conversations whose state the app keeps at once (a long-running mock serves many)."""


class _Caller(Protocol):
    def call(self, tool_call: ToolCall, index: int | None = None) -> MockResult: ...


@dataclass(frozen=True)
class _Route:
    tool: Tool
    http: HttpBinding
    pattern: re.Pattern[str]
    names: tuple[str, ...]

    @property
    def specificity(self) -> tuple[int, int]:
        return (len(self.names), -len(self.pattern.pattern))


def _compile(template: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    names: list[str] = []
    parts: list[str] = []
    last = 0
    for match in _TEMPLATE.finditer(template):
        parts.append(re.escape(template[last : match.start()]))
        parts.append(f"(?P<p{len(names)}>[^/]+)")
        names.append(match.group(1))
        last = match.end()
    parts.append(re.escape(template[last:]))
    return re.compile("".join(parts).rstrip("/") + "/?$"), tuple(names)


def _server_prefixes(http: HttpBinding) -> list[str]:
    prefixes = {""}
    for server in http.servers:
        path = urlparse(server).path.rstrip("/")
        if "{" not in path:
            prefixes.add(path)
    return sorted(prefixes)


def _routes(tools: list[Tool]) -> list[_Route]:
    routes = []
    for tool in tools:
        http = tool.source.http if tool.source is not None else None
        if http is None:
            continue
        for prefix in _server_prefixes(http):
            pattern, names = _compile(prefix + http.path)
            routes.append(_Route(tool, http, pattern, names))
    return sorted(routes, key=lambda route: route.specificity)


def _types(schema: Any) -> list[str]:
    if not isinstance(schema, dict):
        return []
    declared = schema.get("type")
    if isinstance(declared, str):
        return [declared]
    if isinstance(declared, list):
        return [t for t in declared if isinstance(t, str)]
    found: list[str] = []
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in schema.get(key) or []:
            found += _types(branch)
    return found


def coerce(text: str, schema: Any) -> Any:
    """A string from a URL, header or form as the type its schema wants; unchanged if it is
    none of them (the argument check then says what is wrong)."""
    types = _types(schema)
    if not types or "string" in types:
        return text
    for kind in types:
        try:
            if kind == "integer":
                return int(text)
            if kind == "number" and any(c in text for c in ".eE"):
                number = float(text)
                if math.isfinite(number):
                    return number
            if kind == "number":
                return int(text)
            if kind == "boolean" and text.lower() in ("true", "false"):
                return text.lower() == "true"
            if kind == "null" and text in ("", "null"):
                return None
            if kind in ("object", "array"):
                return orjson.loads(text)
        except (ValueError, orjson.JSONDecodeError):
            continue
    return text


def _coerce_many(values: list[str], schema: Any) -> Any:
    if "array" not in _types(schema):
        return coerce(values[-1], schema)
    if len(values) == 1:
        if values[0].startswith("["):
            return coerce(values[0], schema)
        values = values[0].split(",") if values[0] else []
    items = schema.get("items") if isinstance(schema, dict) else None
    return [coerce(value, items) for value in values]


def _json(status: int, body: Any) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _answer(result: MockResult) -> Response:
    return _json(result.status, result.body)


class MockRouter:
    """Turns HTTP requests into calls of a `MockApi` and its results into responses."""

    def __init__(self, api: MockApi) -> None:
        self.api = api
        self._routes = _routes(api.tools)
        self._conversations: OrderedDict[str, MockConversation] = OrderedDict()

    def caller(self, request: Request) -> _Caller:
        """What answers the request's call: its conversation, or the API on its own."""
        conversation_id = request.headers.get(CONVERSATION_HEADER)
        if conversation_id is None:
            return self.api
        conversation = self._conversations.get(conversation_id)
        if conversation is None:
            conversation = self._conversations[conversation_id] = MockConversation(self.api)
            if len(self._conversations) > CONVERSATIONS_KEPT:
                self._conversations.popitem(last=False)
        else:
            self._conversations.move_to_end(conversation_id)
        return conversation

    async def handle(self, request: Request) -> Response:
        """Answer one request (the one endpoint of the app)."""
        path = str(request.scope["path"])
        method = request.method.upper()
        segments = path.strip("/").split("/")
        generic = len(segments) == 2 and segments[0] == "tools" and method == "POST"
        if generic and segments[1] in self.api.by_name:
            return await self._generic(request, segments[1])
        matched = [(route, m) for route in self._routes if (m := route.pattern.match(path))]
        for route, match in matched:
            if route.http.method.upper() == method:
                return await self._documented(request, route, match)
        if matched:
            allowed = sorted({route.http.method.upper() for route, _ in matched})
            detail = f"{method} {path}: this route takes {', '.join(allowed)}"
            return _json(405, error_body(Reason.unknown_tool.value, detail))
        if method == "GET" and path.rstrip("/") == "/tools":
            return _json(200, [tool.openai() for tool in self.api.tools])
        if generic:
            return _answer(self.caller(request).call(ToolCall(name=segments[1], arguments={})))
        detail = (
            f"{method} {path}: no tool at this route; call POST /tools/{{name}} "
            "or a documented route (GET /tools lists the tools)"
        )
        return _json(404, error_body(Reason.unknown_tool.value, detail))

    async def _generic(self, request: Request, name: str) -> Response:
        raw = await request.body()
        try:
            arguments = orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError as exc:
            return self._not_json(name, f"the request body is not JSON: {exc}")
        if not isinstance(arguments, dict):
            return self._not_json(name, "the request body must be a JSON object of arguments")
        return _answer(self.caller(request).call(ToolCall(name=name, arguments=arguments)))

    @staticmethod
    def _not_json(name: str, detail: str) -> Response:
        return _json(422, error_body(Reason.arguments_not_json.value, detail, name))

    async def _documented(self, request: Request, route: _Route, match: re.Match[str]) -> Response:
        tool, http = route.tool, route.http
        properties = tool.parameters.get("properties")
        schemas: dict[str, Any] = properties if isinstance(properties, dict) else {}
        arguments: dict[str, Any] = {}
        for index, sent in enumerate(route.names):
            name = http.argument_for("path", sent) or sent
            arguments[name] = coerce(match.group(f"p{index}"), schemas.get(name))
        for sent in request.query_params:
            declared = http.argument_for("query", sent)
            if declared is None and sent in http.in_:
                continue  # the name of an argument sent elsewhere
            name = declared or sent  # an undeclared one: the argument check rejects it
            values = request.query_params.getlist(sent)
            arguments[name] = _coerce_many(values, schemas.get(name))
        for name, place in http.in_.items():
            source = request.headers if place == "header" else request.cookies
            sent = http.sent_name(name)
            if place in ("header", "cookie") and sent in source:
                arguments[name] = coerce(source[sent], schemas.get(name))
        if "body" in http.in_.values():
            body = await self._body(request, tool.name, http, schemas)
            if isinstance(body, Response):
                return body
            arguments.update(body)
        call = ToolCall(name=tool.name, arguments=arguments)
        return _answer(self.caller(request).call(call))

    async def _body(
        self, request: Request, tool_name: str, http: HttpBinding, schemas: dict[str, Any]
    ) -> dict[str, Any] | Response:
        name = http.body_argument
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type in _FORM_TYPES:
            form = await request.form()
            found: dict[str, Any] = {}
            for sent in form:
                key = http.argument_for("body", sent) or sent
                values = [await _form_text(v) for v in form.getlist(sent)]
                found[key] = _coerce_many(values, schemas.get(key))
            return found
        raw = await request.body()
        if not raw.strip():
            return {}
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return self._not_json(tool_name, f"the request body is not JSON: {exc}")
        if name is not None:
            return {name: body}
        if not isinstance(body, dict):
            detail = "the request body must be a JSON object of the body's properties"
            return self._not_json(tool_name, detail)
        return body


async def _form_text(value: str | UploadFile) -> str:
    if isinstance(value, UploadFile):
        return (await value.read()).decode("utf-8", "replace")
    return value


def mock_app(api: MockApi) -> Starlette:
    """The HTTP app of a mock API: one endpoint that routes every request through `api`."""
    router = MockRouter(api)
    app = Starlette(routes=[Route("/{path:path}", router.handle, methods=_METHODS)])
    app.state.mock_api = api
    return app
