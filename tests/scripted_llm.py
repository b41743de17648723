"""A scripted OpenAI-compatible chat server over real HTTP, for testing logic that needs an LLM
to answer in a known way (the semantic judge's decisions, retries, bad answers).

The test gives a `script`: a function from the request body to a `Reply` (content, finish reason,
HTTP status). The server records every request it got.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from service.api.server import BackgroundServer


@dataclass
class Reply:
    """What the scripted server answers to one chat completion request."""

    content: str = ""
    finish_reason: str = "stop"
    status: int = 200


@dataclass
class ScriptedServer:
    """A running scripted server: its OpenAI base URL and the request bodies it received."""

    base_url: str
    requests: list[dict[str, Any]] = field(default_factory=list)


def user_text(body: dict[str, Any]) -> str:
    """The content of the request's last user message."""
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    return str(users[-1]["content"]) if users else ""


@contextmanager
def scripted_llm_server(
    script: Callable[[dict[str, Any]], Reply], model: str = "scripted"
) -> Iterator[ScriptedServer]:
    """Serve `script` at `<base_url>/chat/completions` until the block ends."""
    app = FastAPI()
    received: list[dict[str, Any]] = []

    @app.post("/v1/chat/completions")
    async def complete(request: Request) -> JSONResponse:
        body = await request.json()
        received.append(body)
        reply = script(body)
        if reply.status != 200:
            return JSONResponse({"error": {"message": reply.content}}, status_code=reply.status)
        return JSONResponse(
            {
                "id": f"chatcmpl-{len(received)}",
                "object": "chat.completion",
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply.content},
                        "finish_reason": reply.finish_reason,
                    }
                ],
                "usage": {
                    "prompt_tokens": len(user_text(body).split()),
                    "completion_tokens": max(1, len(reply.content.split())),
                    "total_tokens": len(user_text(body).split()) + len(reply.content.split()),
                },
            }
        )

    with BackgroundServer(app) as server:
        yield ScriptedServer(base_url=f"{server.url}/v1", requests=received)
