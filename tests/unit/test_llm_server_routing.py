"""Who gets the next request (`llm.server_pool.ServerPool`), without sending any: the server with
the fewest outstanding, never past its limit, waiters served in order of arrival, a server taken
out skipped, and, with none up, the one tried longest ago."""

from __future__ import annotations

import asyncio

from llm.concurrency import ConcurrencySettings
from llm.http_session import make_session
from llm.server_pool import ServerPool

# Nothing listens on port 9: the pool's metrics readers find nothing there, which is harmless.
URLS = ["http://127.0.0.1:9/a/v1", "http://127.0.0.1:9/b/v1"]


async def with_pool(test: object, limit: int = 2) -> None:
    session = make_session({}, 16)
    settings = ConcurrencySettings(initial=limit, minimum=1, maximum=limit)
    pool = ServerPool(URLS, session, settings, health_interval_s=3600)
    try:
        await test(pool)  # type: ignore[operator]
    finally:
        await pool.close()
        await session.close()


def test_least_outstanding_first_and_never_past_the_limit() -> None:
    async def test(pool: ServerPool) -> None:
        taken = [(await pool.acquire()).base_url for _ in range(4)]
        assert taken == [URLS[0], URLS[1], URLS[0], URLS[1]]
        waiting = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0.01)
        assert not waiting.done()  # both at their limit of 2
        pool.release(pool.servers[1])
        assert (await asyncio.wait_for(waiting, 1)).base_url == URLS[1]

    asyncio.run(with_pool(test))


def test_waiters_are_served_in_order_of_arrival() -> None:
    async def test(pool: ServerPool) -> None:
        first, _ = await pool.acquire(), await pool.acquire()  # both servers full
        waiters = [asyncio.ensure_future(pool.acquire()) for _ in range(3)]
        await asyncio.sleep(0.01)
        assert not any(w.done() for w in waiters)
        pool.release(first)
        await asyncio.sleep(0.01)
        assert [w.done() for w in waiters] == [True, False, False]

    asyncio.run(with_pool(test, limit=1))


def test_a_server_taken_out_is_skipped_and_with_none_up_the_oldest_tried_is_tried() -> None:
    async def test(pool: ServerPool) -> None:
        a, b = pool.servers
        pool.take_out(a, "ConnectionRefused")
        assert (a.up, a.taken_out, a.last_error) == (False, 1, "ConnectionRefused")
        assert not pool.any_up(besides=b)
        chosen = [await pool.acquire() for _ in range(2)]
        assert chosen == [b, b]
        for server in chosen:
            pool.release(server)
        pool.take_out(b, "HTTP 502")
        # None up: the one tried longest ago (a, never since it was taken out).
        probe = await pool.acquire()
        assert probe is a
        pool.release(probe)
        # An answer from it brings it back in.
        pool.completed(a, seconds=1.0, completion_tokens=10)
        assert a.up and a.last_error is None

    asyncio.run(with_pool(test))
