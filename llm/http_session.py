"""The HTTP client of the server backend: one aiohttp session per process and backend, and one
call that answers with the status and body or says why there was none.

aiohttp rather than httpx here: with hundreds of requests in flight, httpx's connection pool
spent 7 to 20 ms of the client's CPU per request (it walks every pooled connection for each
one), aiohttp 0.2 to 0.5 ms, measured side by side with 256 concurrent requests of 10 kB on
one core. At a few thousand requests a minute that is the difference between a client that
keeps up with a GPU server and one that does not.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

KEEPALIVE_S = 4.0
"""Idle connections are closed before uvicorn's (vLLM's server) 5 s would close them under us."""


class Unreachable(Exception):
    """No answer: the connection was refused, reset or closed, or could not be made in time."""


@dataclass(frozen=True)
class Answer:
    """A server's answer: status, reason phrase and body."""

    status: int
    reason: str
    body: bytes

    def json(self) -> Any:
        """The body as JSON; raises ValueError when it is not."""
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise ValueError(str(exc)) from None

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


def make_session(headers: dict[str, str], connections: int) -> aiohttp.ClientSession:
    """A session for up to `connections` connections at once; call on the loop that uses it."""
    connector = aiohttp.TCPConnector(
        limit=connections, limit_per_host=0, keepalive_timeout=KEEPALIVE_S
    )
    return aiohttp.ClientSession(
        headers=headers,
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None),
        json_serialize=lambda value: orjson.dumps(value).decode(),
    )


async def call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    timeout_s: float,
    body: Any = None,
) -> Answer:
    """One request (a JSON `body` for POST). Raises `Unreachable`, or `TimeoutError` when the
    server took the connection but gave no whole answer within `timeout_s`."""
    data = orjson.dumps(body) if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else None
    try:
        async with asyncio.timeout(timeout_s):
            async with session.request(
                method,
                url,
                data=data,
                headers=headers,
                timeout=aiohttp.ClientTimeout(sock_connect=min(timeout_s, 10.0)),
            ) as response:
                return Answer(response.status, response.reason or "", await response.read())
    except aiohttp.ConnectionTimeoutError as exc:
        raise Unreachable(f"no connection within {min(timeout_s, 10.0):g} s") from exc
    except TimeoutError:
        raise
    except aiohttp.ClientError as exc:  # refused, reset, closed mid-answer, a bad URL
        raise Unreachable(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
