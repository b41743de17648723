"""`actionforge mock CATALOG`: serve a mock API of a catalog's tools on a port."""

from __future__ import annotations

import socket
from contextlib import suppress
from pathlib import Path
from typing import Annotated

import typer

from service.cli.console import err_console, fail, readable_errors
from unified.catalogs import DEFAULT_MAX_BYTES, load_catalog


def mock(
    catalog: Annotated[
        Path, typer.Argument(help="OpenAPI/Swagger document, JSON function list or Python module.")
    ],
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8080,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="Catalog kind; detected from the content when omitted."),
    ] = None,
    max_bytes: Annotated[
        int, typer.Option("--max-bytes", help="Refuse catalog files larger than this.")
    ] = DEFAULT_MAX_BYTES,
) -> None:
    """Serve a mock API of the catalog: checked arguments, answers from response schemas;
    requests with the same X-Conversation-Id header share one conversation's state."""
    import uvicorn

    from service.mock_http import mock_app
    from verifiers.mock_api import MockApi

    with readable_errors():
        tools = load_catalog(catalog, kind=kind, max_bytes=max_bytes).tools
    app = mock_app(MockApi(tools))
    sock = _listen(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    routes = sum(1 for t in tools if t.source is not None and t.source.http is not None)
    err_console.print(
        f"mock API of {catalog.name} ({len(tools)} tools, {routes} documented routes) at "
        f"http://{bound_host}:{bound_port}: POST /tools/{{name}} with a JSON object of "
        "arguments; GET /tools lists the tools; requests with the same X-Conversation-Id "
        "header share one conversation's state (created items kept, deleted ones gone)",
        highlight=False,
        soft_wrap=True,
    )
    server = uvicorn.Server(uvicorn.Config(app, log_level="info"))
    with suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    sock.close()


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this: answers are not held back waiting for an ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        fail(
            f"cannot listen on {host}:{port} ({exc.strerror}); "
            "pick another --port or stop what is using it"
        )
    return sock
