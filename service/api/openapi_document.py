"""The published OpenAPI document: FastAPI's, with its event-stream operations rewritten in
what OpenAPI 3.1 has.

FastAPI describes a Server-Sent Events response with `itemSchema`, which only OpenAPI 3.2 knows
(a 3.1 validator refuses the document), and gives that operation's error responses the
`text/event-stream` media type although their bodies are JSON.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

EVENT_STREAM = "text/event-stream"
JSON = "application/json"


def publish_openapi_31(app: FastAPI) -> None:
    """Make `app.openapi()` give the rewritten document (built once, then cached)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        first = app.openapi_schema is None
        document = build()
        if first:
            rewrite_event_streams(document)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def rewrite_event_streams(document: dict[str, Any]) -> None:
    """In each operation that answers an event stream: describe the stream as a string
    (the description of the response says what its events hold) and its other responses as
    the JSON they are."""
    for item in document.get("paths", {}).values():
        for operation in item.values():
            responses = operation.get("responses") if isinstance(operation, dict) else None
            if not responses:
                continue
            for status, response in responses.items():
                content = response.get("content", {})
                if EVENT_STREAM not in content:
                    continue
                if status.startswith("2"):
                    content[EVENT_STREAM] = {"schema": {"type": "string"}}
                else:
                    content[JSON] = content.pop(EVENT_STREAM)
