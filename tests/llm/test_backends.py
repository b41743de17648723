"""Both LLM backends against real vLLM (the in-process engine and the OpenAI-compatible server,
on the tiny random model), and the server backend's retries against real HTTP servers of the
tests' own that misbehave on purpose."""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from llm_fixtures import VllmServer, free_port

from llm import BackendConfig, BackendUnavailable, LLMRequest, LLMResult, load_backend
from llm.base import LLMBackend
from llm.openai_server import RETRY_WAIT_MAX_S, OpenAIServerBackend
from llm.vllm_engine import VllmEngineBackend
from unified.errors import UnknownNameError

pytestmark = [pytest.mark.slow, pytest.mark.llm]

TOOL_CALL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "enum": ["get_weather", "search_hotels"]},
        "arguments": {
            "type": "object",
            "properties": {
                # xgrammar lets raw control characters into free strings, which strict JSON
                # refuses; a pattern keeps this test about the plumbing.
                "city": {"type": "string", "pattern": "^[A-Za-z ]{1,12}$"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 14},
            },
            "required": ["city", "unit", "days"],
            "additionalProperties": False,
        },
    },
    "required": ["name", "arguments"],
    "additionalProperties": False,
}
TOO_LONG = "Find flights from Paris to Berlin. " * 400  # about 3,000 tokens > max_model_len 2048


def ask(text: str, **options: Any) -> LLMRequest:
    """A one-message chat request."""
    return LLMRequest(messages=[{"role": "user", "content": text}], **options)


def call_or_hang(function: Callable[[], Any], seconds: float) -> Any:
    """What `function()` returned or raised; fails the test if it is still running after
    `seconds` (a hang guard, far above the time it needs)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds:.0f} s: it hangs"
    return outcome.get("error", outcome.get("value"))


def give_up_bound(config: BackendConfig) -> float:
    """An upper bound on how long the server backend may try before it gives up, plus slack."""
    tries = config.max_retries + 1
    return tries * (config.timeout_s + RETRY_WAIT_MAX_S) + 30


# --- both backends on the real engine --------------------------------------------------------


@pytest.fixture(params=["vllm", "openai"])
def backend(request: pytest.FixtureRequest, tiny_model_dir: Path) -> Iterator[LLMBackend]:
    """The in-process engine, or the server backend on the shared vLLM server."""
    if request.param == "vllm":
        yield request.getfixturevalue("vllm_engine_backend")
        return
    server = OpenAIServerBackend(
        BackendConfig(
            backend="openai",
            model=str(tiny_model_dir),
            base_url=request.getfixturevalue("vllm_server"),
            timeout_s=120,
        )
    )
    yield server
    server.close()


def test_answers_fit_the_json_schema(backend: LLMBackend) -> None:
    requests = [
        ask("What is the weather in Tokyo? Call a tool.", json_schema=TOOL_CALL_SCHEMA, seed=seed)
        for seed in range(4)
    ]
    results = backend.generate(requests)
    assert len(results) == 4
    for result in results:
        assert result.finish_reason == "stop", result
        jsonschema.validate(json.loads(result.text), TOOL_CALL_SCHEMA)
        assert result.prompt_tokens > 0
        assert result.completion_tokens > 0
        assert result.error is None


def test_tiny_max_tokens_stops_with_length(backend: LLMBackend) -> None:
    (result,) = backend.generate([ask("Call a tool.", json_schema=TOOL_CALL_SCHEMA, max_tokens=3)])
    assert result.finish_reason == "length"
    assert result.completion_tokens == 3
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.text)


def test_results_keep_the_order_of_the_requests(backend: LLMBackend) -> None:
    # Each request's schema allows exactly one answer, {"id": i}, so a swap cannot go unseen;
    # the prompts grow longer, so prompt token counts must grow along the batch.
    requests = [
        ask(
            "Which id? " + "Tell me a joke. " * index,
            json_schema={
                "type": "object",
                "properties": {"id": {"const": index}},
                "required": ["id"],
                "additionalProperties": False,
            },
            seed=100 + index,
            max_tokens=40,
        )
        for index in range(8)
    ]
    results = backend.generate(requests)
    assert [json.loads(result.text) for result in results] == [{"id": i} for i in range(8)]
    prompt_tokens = [result.prompt_tokens for result in results]
    assert prompt_tokens == sorted(prompt_tokens)
    assert len(set(prompt_tokens)) == 8


def test_a_prompt_too_long_fails_alone(backend: LLMBackend) -> None:
    results = backend.generate(
        [
            ask("Call a tool.", json_schema=TOOL_CALL_SCHEMA, seed=1),
            ask(TOO_LONG, json_schema=TOOL_CALL_SCHEMA, seed=2),
            ask("Call another tool.", json_schema=TOOL_CALL_SCHEMA, seed=3),
        ]
    )
    assert [result.finish_reason for result in results] == ["stop", "error", "stop"]
    assert results[1].error is not None
    assert "2048" in results[1].error
    for result in (results[0], results[2]):
        jsonschema.validate(json.loads(result.text), TOOL_CALL_SCHEMA)


def test_a_schema_vllm_cannot_compile_fails_alone(backend: LLMBackend) -> None:
    requests = [ask(f"Call tool {i}.", json_schema=TOOL_CALL_SCHEMA, seed=i) for i in range(5)]
    requests[3] = ask("Call a tool.", json_schema={"type": "no-such-type"})
    results = backend.generate(requests)
    assert [result.finish_reason for result in results] == ["stop"] * 3 + ["error", "stop"]
    assert results[3].error is not None
    assert "no-such-type" in results[3].error


def test_a_seeded_batch_larger_than_one_engine_step(backend: LLMBackend) -> None:
    # About 7,000 prompt tokens: more than vLLM prefills in one step (4,096 on CPU). With
    # chunked prefill, a seeded request cut between steps killed the CPU engine ("CPU Generator
    # does not use offset"), which is why the CPU defaults turn chunked prefill off.
    requests = [
        ask(f"Request {i}. " + "Find flights from Paris to Berlin. " * 40, seed=i, max_tokens=4)
        for i in range(24)
    ]
    results = backend.generate(requests)
    assert [result.finish_reason for result in results] == ["length"] * 24
    assert sum(result.prompt_tokens for result in results) > 4096


def test_stop_strings_end_the_answer(backend: LLMBackend) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"enum": ["get_weather"]}},
        "required": ["name"],
        "additionalProperties": False,
    }
    (result,) = backend.generate([ask("Call a tool.", json_schema=schema, stop=["weather"])])
    assert result.finish_reason == "stop"
    assert result.text == '{"name":"get_'


# --- the server backend when the server misbehaves -------------------------------------------


COMPLETION = {
    "id": "chatcmpl-test",
    "object": "chat.completion",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": '{"name": "get_weather"}'},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
}


class QuietHTTPServer(ThreadingHTTPServer):
    """Says nothing when a client hangs up early (the timeout tests do so on purpose)."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class ScriptedServer:
    """A real HTTP server on 127.0.0.1 answering each POST with the next (status, body, delay)
    of its script; the last entry repeats forever. Counts the POSTs it received."""

    def __init__(self, script: list[tuple[int, dict[str, Any], float]]) -> None:
        self.script = script
        self.posts = 0
        self._lock = threading.Lock()
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with scripted._lock:
                    status, body, delay = scripted.script[min(scripted.posts, len(script) - 1)]
                    scripted.posts += 1
                time.sleep(delay)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def server_backend(base_url: str, **options: Any) -> OpenAIServerBackend:
    """The server backend with test-sized timeouts."""
    settings: dict[str, Any] = {"max_retries": 2, "timeout_s": 2.0, **options}
    return OpenAIServerBackend(
        BackendConfig(backend="openai", model="tiny", base_url=base_url, **settings)
    )


def test_nothing_listening_raises_backend_unavailable() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    backend = server_backend(url)
    error = call_or_hang(lambda: backend.generate([ask("hi")] * 3), give_up_bound(backend.config))
    assert isinstance(error, BackendUnavailable)
    assert url in str(error)
    assert "3 tries" in str(error)
    assert "Cannot connect to host" in str(error)
    assert "is the vllm server running" in str(error).lower()


def test_retries_503_then_succeeds() -> None:
    unavailable = {"error": {"message": "warming up", "code": 503}}
    with ScriptedServer([(503, unavailable, 0), (503, unavailable, 0), (200, COMPLETION, 0)]) as s:
        results = server_backend(s.base_url).generate([ask("hi")])
        assert s.posts == 3
    assert results == [
        LLMResult(
            text='{"name": "get_weather"}',
            finish_reason="stop",
            prompt_tokens=11,
            completion_tokens=7,
            server=s.base_url,
        )
    ]


def test_429_forever_gives_up_after_max_retries() -> None:
    busy = {"error": {"message": "too many requests", "code": 429}}
    with ScriptedServer([(429, busy, 0)]) as server:
        backend = server_backend(server.base_url, max_retries=3)
        error = call_or_hang(lambda: backend.generate([ask("hi")]), give_up_bound(backend.config))
        assert server.posts == 4
    assert isinstance(error, BackendUnavailable)
    assert server.base_url in str(error)
    assert "HTTP 429: too many requests" in str(error)


def test_a_server_slower_than_timeout_gives_up() -> None:
    with ScriptedServer([(200, COMPLETION, 5.0)]) as server:
        backend = server_backend(server.base_url, timeout_s=0.5, max_retries=1)
        error = call_or_hang(lambda: backend.generate([ask("hi")]), give_up_bound(backend.config))
        assert server.posts == 2
    assert isinstance(error, BackendUnavailable)
    assert "timeout_s=0.5" in str(error)


def test_a_400_fails_only_its_request() -> None:
    refused = {"error": {"message": "prompt too long", "code": 400}}
    with ScriptedServer([(200, COMPLETION, 0), (400, refused, 0), (200, COMPLETION, 0)]) as s:
        results = server_backend(s.base_url, max_concurrency=1).generate([ask("a")] * 3)
        assert s.posts == 3
    assert [result.finish_reason for result in results] == ["stop", "error", "stop"]
    assert results[1].error == "The LLM server answered HTTP 400: prompt too long"


def test_an_unknown_model_stops_the_batch() -> None:
    missing = {"error": {"message": "The model `tiny` does not exist.", "code": 404}}
    with ScriptedServer([(404, missing, 0)]) as server:
        with pytest.raises(BackendUnavailable, match=r"HTTP 404: The model `tiny` does not exist"):
            server_backend(server.base_url).generate([ask("a")] * 4)
        assert 1 <= server.posts <= 4  # no retries: the other requests are cancelled or refused


def test_generate_works_inside_a_running_event_loop() -> None:
    import asyncio

    async def from_async_code() -> list[LLMResult]:
        with ScriptedServer([(200, COMPLETION, 0)]) as server:
            return server_backend(server.base_url).generate([ask("hi")])

    (result,) = asyncio.run(from_async_code())
    assert result.finish_reason == "stop"


def describe(outcome: Any) -> str:
    """A batch's outcome in a line: the error it raised, or its finish reasons and errors."""
    if not isinstance(outcome, list):
        return repr(outcome)
    reasons = sorted({f"{result.finish_reason}: {result.error}" for result in outcome})
    return f"{len(outcome)} results; " + "; ".join(reasons)


def metric(server: VllmServer, name: str) -> float:
    """A gauge from the vLLM server's Prometheus metrics (summed over its label sets)."""
    text = httpx.get(f"{server.root_url}/metrics", timeout=5).text
    values = re.findall(rf"^{re.escape(name)}\{{[^}}]*\}} (\S+)$", text, flags=re.MULTILINE)
    return sum(float(value) for value in values)


def start_long_batch(backend: LLMBackend) -> tuple[threading.Thread, dict[str, Any]]:
    """Start a batch of minutes in a thread: 64 answers the schema makes long (a random model
    cannot end them early; ~900 tokens each, 118 s on the in-process engine on 2 CPUs). The
    thread puts what `generate` returned or raised under 'value' of the dict."""
    long_answer = {"type": "string", "minLength": 3000}
    requests = [ask("Write.", json_schema=long_answer, max_tokens=1900, seed=i) for i in range(64)]
    outcome: dict[str, Any] = {}
    worker = threading.Thread(
        target=lambda: outcome.update(value=call_or_hang(lambda: backend.generate(requests), 600)),
        daemon=True,
    )
    worker.start()
    return worker, outcome


def test_server_killed_mid_batch_raises_backend_unavailable(
    fresh_vllm_server: VllmServer, tiny_model_dir: Path
) -> None:
    backend = OpenAIServerBackend(
        BackendConfig(
            backend="openai",
            model=str(tiny_model_dir),
            base_url=fresh_vllm_server.base_url,
            max_retries=2,
            timeout_s=120,
        )
    )
    worker, outcome = start_long_batch(backend)
    deadline = time.monotonic() + 120
    while metric(fresh_vllm_server, "vllm:num_requests_running") == 0:
        assert worker.is_alive(), (
            f"the batch ended before the server was killed: {describe(outcome.get('value'))}\n"
            f"server log:\n{fresh_vllm_server.log_tail()}"
        )
        assert time.monotonic() < deadline, "the server never started the batch"
        time.sleep(0.05)
    fresh_vllm_server.kill()
    worker.join(give_up_bound(backend.config))
    assert not worker.is_alive(), "generate hangs after the server died"
    error = outcome["value"]
    assert isinstance(error, BackendUnavailable), error
    assert fresh_vllm_server.base_url in str(error)


def test_engine_killed_mid_batch_raises_and_close_cleans_up(tiny_model_dir: Path) -> None:
    import psutil  # a dependency of vLLM

    me = psutil.Process()
    before = {child.pid for child in me.children(recursive=True)}
    backend = VllmEngineBackend(
        BackendConfig(
            backend="vllm", model=str(tiny_model_dir), engine_options={"max_model_len": 2048}
        )
    )
    engine = [
        child
        for child in me.children(recursive=True)
        if child.pid not in before and child.name().startswith("VLLM::")
    ]
    assert engine, "the engine runs in processes of its own (VLLM::EngineCore, VLLM::Worker)"
    worker, outcome = start_long_batch(backend)
    time.sleep(1.5)
    assert worker.is_alive(), (
        f"the batch ended before the engine was killed: {describe(outcome.get('value'))}"
    )
    for process in engine:
        process.kill()
    worker.join(120)
    assert not worker.is_alive(), "generate hangs after the engine died"
    assert isinstance(outcome["value"], BackendUnavailable), outcome["value"]
    assert "stopped" in str(outcome["value"])

    backend.close()

    def alive(process: psutil.Process) -> bool:
        # A killed process whose parent died too stays a zombie until init reaps it.
        try:
            return process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    assert not [process for process in engine if alive(process)]
    with pytest.raises(BackendUnavailable, match="closed"):
        backend.generate([ask("hi")])


# --- choosing and loading backends -----------------------------------------------------------


def test_unknown_backend_name_lists_the_known_ones() -> None:
    with pytest.raises(
        UnknownNameError, match=r"Unknown LLM backend 'nope'. Known: .*openai.*vllm"
    ):
        load_backend(BackendConfig(backend="nope", model="m"))


def test_openai_backend_without_base_url_says_what_to_set() -> None:
    with pytest.raises(Exception, match=r"needs base_url"):
        load_backend(BackendConfig(backend="openai", model="m"))


def test_vllm_backend_without_vllm_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` now raises ImportError
    with pytest.raises(BackendUnavailable, match=r"pip install 'actionforge\[vllm\]'"):
        VllmEngineBackend(BackendConfig(backend="vllm", model="m"))
