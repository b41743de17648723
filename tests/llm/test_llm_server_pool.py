"""The server backend's call policy against real servers: a batch spread over two vLLM servers
(CPU build, tiny model), one killed mid-batch taken out while the batch finishes on the other,
and used again once it is back on its port; a URL with nothing listening left out; and the
in-flight limit lowered by 503s, 429s and by the queue a server reports at /metrics (small real
HTTP servers of the test's own)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from llm_fixtures import VllmServer, free_port, start_vllm_server

from llm import BackendConfig, LLMRequest, LLMResult
from llm.openai_server import OpenAIServerBackend

pytestmark = [pytest.mark.slow, pytest.mark.llm]

COMPLETION = {
    "id": "chatcmpl-test",
    "object": "chat.completion",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 20, "total_tokens": 25},
}


def requests(count: int, max_tokens: int = 64, long: bool = False) -> list[LLMRequest]:
    """`count` seeded requests; `long` ones cannot end before max_tokens (the schema asks for
    more characters than max_tokens can hold)."""
    schema = {"type": "string", "minLength": 4000} if long else None
    return [
        LLMRequest(
            messages=[{"role": "user", "content": f"Request {i}: write."}],
            json_schema=schema,
            max_tokens=max_tokens,
            seed=i,
        )
        for i in range(count)
    ]


def backend_for(model: Path, urls: list[str], **more: Any) -> OpenAIServerBackend:
    config = {"backend": "openai", "model": str(model), "base_url": urls, "timeout_s": 120, **more}
    return OpenAIServerBackend(BackendConfig.model_validate(config))


def running(server: VllmServer) -> float | None:
    """The requests the server runs now; None when it is too busy to answer within 10 s (on a
    shared core a server filling its batch can be: then it runs the test's requests)."""
    try:
        text = httpx.get(f"{server.root_url}/metrics", timeout=10).text
    except httpx.TimeoutException:
        return None
    lines = [line for line in text.splitlines() if line.startswith("vllm:num_requests_running{")]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


def in_thread(function: Any) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_two_servers_share_a_batch_one_that_dies_is_left_out_and_used_again_once_back(
    vllm_server: str, fresh_vllm_server: VllmServer, tiny_model_dir: Path, tmp_path: Path
) -> None:
    dying = fresh_vllm_server
    backend = backend_for(tiny_model_dir, [dying.base_url, vllm_server], max_retries=2)
    try:
        # Least outstanding first: a batch is spread over both.
        answered = Counter(result.server for result in backend.generate(requests(64)))
        assert set(answered) == {dying.base_url, vllm_server}
        assert min(answered.values()) >= 16, answered

        thread, outcome = in_thread(lambda: backend.generate(requests(48, 300, long=True)))
        deadline = time.monotonic() + 120
        while running(dying) == 0:
            assert thread.is_alive() and time.monotonic() < deadline, "the batch never started"
            time.sleep(0.05)
        dying.kill()
        thread.join(300)
        assert not thread.is_alive(), "the batch hangs after one of its servers died"
        results: list[LLMResult] = outcome.get("value") or pytest.fail(repr(outcome))
        # Every request is answered: those the dead server held went to the other one.
        assert [r.finish_reason for r in results] == ["length"] * 48
        assert Counter(r.server for r in results)[vllm_server] >= 24
        dead = backend.pool().servers[0]
        assert (dead.base_url, dead.up, dead.taken_out) == (dying.base_url, False, 1)

        back = start_vllm_server(tiny_model_dir, tmp_path / "back.log", port=dying.port)
        try:
            deadline = time.monotonic() + 60
            while not dead.up:  # the health check finds it within its interval (at most 10 s)
                assert time.monotonic() < deadline, "the server that came back is still out"
                time.sleep(0.2)
            answered = Counter(result.server for result in backend.generate(requests(32)))
            assert answered[dying.base_url] >= 8, answered
        finally:
            back.stop()
    finally:
        backend.close()


def test_a_server_with_nothing_listening_is_taken_out_and_the_other_answers(
    vllm_server: str, tiny_model_dir: Path
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/v1"
    backend = backend_for(tiny_model_dir, [nowhere, vllm_server], max_retries=1)
    try:
        results = backend.generate(requests(24))
        assert {r.server for r in results} == {vllm_server}
        assert all(r.finish_reason in ("stop", "length") for r in results)
        gone = backend.pool().servers[0]
        assert not gone.up and "Cannot connect to host" in (gone.last_error or "")
    finally:
        backend.close()


# --- small real HTTP servers that answer 503, 429, or report a long queue ---------------------


class Listening(ThreadingHTTPServer):
    """Takes as many connections at once as the backend opens (the default backlog is 5)."""

    request_queue_size = 256
    daemon_threads = True


class BusyServer:
    """Answers chat completions after `delay` s; the first `refusals` POSTs get `status`.
    Serves /metrics with `waiting` requests queued. Counts what it saw."""

    def __init__(self, status: int = 503, refusals: int = 0, delay: float = 0.2) -> None:
        self.status, self.refusals, self.delay = status, refusals, delay
        self.waiting = 0
        self.posts = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self.lock = threading.Lock()
        busy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path == "/metrics":
                    page = (
                        f'vllm:num_requests_running{{engine="0"}} 4.0\n'
                        f'vllm:num_requests_waiting{{engine="0"}} {busy.waiting}.0\n'
                    )
                    self._send(200, page.encode(), "text/plain")
                else:
                    self._send(200, b"{}")

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with busy.lock:
                    busy.posts += 1
                    refuse = busy.posts <= busy.refusals
                    busy.in_flight += 1
                    busy.most_in_flight = max(busy.most_in_flight, busy.in_flight)
                try:
                    if refuse:
                        error = {"error": {"message": "server busy", "code": busy.status}}
                        self._send(busy.status, json.dumps(error).encode())
                        return
                    time.sleep(busy.delay)
                    self._send(200, json.dumps(COMPLETION).encode())
                finally:
                    with busy.lock:
                        busy.in_flight -= 1

        self.httpd = Listening(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def busy_server(request: pytest.FixtureRequest) -> Iterator[BusyServer]:
    server = BusyServer(**getattr(request, "param", {}))
    yield server
    server.close()


@pytest.mark.parametrize(
    "busy_server", [{"status": 503, "refusals": 20}, {"status": 429, "refusals": 20}], indirect=True
)
def test_503_and_429_lower_the_limit_and_the_requests_are_answered_after_backing_off(
    busy_server: BusyServer,
) -> None:
    backend = backend_for(Path("tiny"), [busy_server.base_url], initial_concurrency=32)
    try:
        started = time.monotonic()
        results = backend.generate(requests(32))
        assert [r.finish_reason for r in results] == ["stop"] * 32
        assert busy_server.posts == 32 + 20  # each refusal tried again
        # The retries waited (at least the first wait, 0.5 s) instead of hammering.
        assert time.monotonic() - started >= 0.5
        limit = backend.pool().servers[0].limit
        # A burst of refusals is one signal: one decrease (32 -> 24).
        assert limit.decreases == 1 and limit.value < 32
        assert f"HTTP {busy_server.status}: server busy" in (limit.last_reason or "")
    finally:
        backend.close()


def test_a_long_queue_at_the_server_lowers_the_limit_and_holds_requests_back(
    busy_server: BusyServer,
) -> None:
    busy_server.waiting = 500
    busy_server.delay = 2.5  # past two readings of /metrics (one a second)
    backend = backend_for(Path("tiny"), [busy_server.base_url], initial_concurrency=16)
    try:
        results = backend.generate(requests(40))
        assert [r.finish_reason for r in results] == ["stop"] * 40
        limit = backend.pool().servers[0].limit
        assert limit.value < 16 and limit.last_reason == "server_queue"
        assert busy_server.most_in_flight == 16  # never above the limit it started at
    finally:
        backend.close()
