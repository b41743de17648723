"""The OpenAI server backend's context length and prompt tokens, against small HTTP servers of the
test's own: vLLM's `max_model_len` in GET /v1/models and POST /tokenize, asked once and with at
most `max_concurrency` calls in flight; the `max_model_len` option and the estimate where the
server offers neither."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from tiny_model import cached_tiny_model

from llm.base import BackendConfig
from llm.local_tokens import ChatTokenizer
from llm.openai_server import OpenAIServerBackend
from llm.prompt_tokens import estimate_prompt_tokens
from llm.server_tokens import server_root

PROMPT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]


def words(messages: list[dict[str, str]]) -> int:
    return sum(len(m["content"].split()) for m in messages)


class FakeVllm:
    """What the handler serves and what it saw."""

    def __init__(
        self,
        models: list[dict[str, Any]] | None,
        tokenizes: bool,
        count: Callable[[list[dict[str, str]]], int] | None = None,
    ) -> None:
        self.models = models
        self.tokenizes = tokenizes
        self.count = count or words
        self.paths: list[str] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.lock = threading.Lock()


def handler_for(fake: FakeVllm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            fake.paths.append(self.path)
            if self.path == "/v1/models" and fake.models is not None:
                self._answer(200, {"object": "list", "data": fake.models})
            else:
                self._answer(404, {"error": {"message": "Not Found"}})

        def do_POST(self) -> None:
            fake.paths.append(self.path)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path != "/tokenize" or not fake.tokenizes:
                self._answer(404, {"detail": "Not Found"})
                return
            with fake.lock:
                fake.in_flight += 1
                fake.most_in_flight = max(fake.most_in_flight, fake.in_flight)
            time.sleep(0.05)
            with fake.lock:
                fake.in_flight -= 1
            assert body["add_generation_prompt"] is True
            count = fake.count(body["messages"])
            self._answer(200, {"count": count, "max_model_len": 2048, "tokens": []})

    return Handler


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[ThreadingHTTPServer] = []

    def start(fake: FakeVllm) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(fake))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/v1"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def backend(base_url: str, **more: Any) -> OpenAIServerBackend:
    config = {"backend": "openai", "model": "m", "base_url": base_url, **more}
    return OpenAIServerBackend(BackendConfig.model_validate(config))


def test_vllm_lists_the_context_and_tokenizes_concurrently_within_the_limit(serve: Any) -> None:
    models = [{"id": "other", "max_model_len": 8192}, {"id": "m", "max_model_len": 2048}]
    fake = FakeVllm(models, tokenizes=True)
    server = backend(serve(fake), max_concurrency=3, max_model_len=999)
    assert server.context_length() == 2048
    assert server.context_length() == 2048
    assert fake.paths.count("/v1/models") == 1  # cached
    assert server.count_prompt_tokens([PROMPT] * 9) == [4] * 9
    assert fake.paths.count("/tokenize") == 9
    assert 1 < fake.most_in_flight <= 3


def test_a_server_without_them_falls_back_to_the_option_and_the_estimate(serve: Any) -> None:
    fake = FakeVllm(models=None, tokenizes=False)
    server = backend(serve(fake), max_model_len=4096)
    assert server.context_length() == 4096
    assert server.count_prompt_tokens([PROMPT, PROMPT]) == [estimate_prompt_tokens(PROMPT)] * 2
    assert server.count_prompt_tokens([PROMPT]) == [estimate_prompt_tokens(PROMPT)]
    assert fake.paths.count("/tokenize") <= 2  # no more tries once the route is known missing
    assert backend(serve(FakeVllm(models=[{"id": "m"}], tokenizes=False))).context_length() is None


def test_a_server_that_is_down_leaves_the_context_to_the_option() -> None:
    server = backend("http://127.0.0.1:9/v1", max_model_len=1024, timeout_s=2)
    assert server.context_length() == 1024
    assert server.count_prompt_tokens([PROMPT]) == [estimate_prompt_tokens(PROMPT)]


def test_the_estimate_is_at_least_one_token_per_byte() -> None:
    text = 'Ünïcödé and JSON {"a": 1}'
    estimate = estimate_prompt_tokens([{"role": "user", "content": text}])
    assert estimate >= len(text.encode())


def test_tokenize_lives_beside_the_api_root() -> None:
    assert server_root("http://h:8000/v1/") == "http://h:8000"
    assert server_root("http://h:8000") == "http://h:8000"


PROMPTS = [
    [{"role": "system", "content": f"Tool {n}: " + "word " * n}, {"role": "user", "content": "Go"}]
    for n in range(1, 6)
]


def test_a_local_tokenizer_counts_after_one_check_with_the_server(serve: Any) -> None:
    tiny = cached_tiny_model()
    local = ChatTokenizer.load(tiny)
    fake = FakeVllm(models=None, tokenizes=True, count=lambda p: local.count([p])[0] or 0)
    server = backend(serve(fake), model=str(tiny))
    expected = local.count(PROMPTS)
    for _ in range(3):
        assert server.count_prompt_tokens(PROMPTS) == expected
    assert fake.paths.count("/tokenize") == 1  # the check, on the longest prompt


def test_a_local_tokenizer_the_server_disagrees_with_is_left_off(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeVllm(models=None, tokenizes=True)  # counts words: not the model's tokenizer
    server = backend(serve(fake), model=str(cached_tiny_model()))
    assert server.count_prompt_tokens(PROMPTS) == [words(p) for p in PROMPTS]
    assert server.count_prompt_tokens(PROMPTS) == [words(p) for p in PROMPTS]
    assert fake.paths.count("/tokenize") == 1 + 2 * len(PROMPTS)
    assert "the server counts prompt tokens from now on" in caplog.text


def test_a_server_that_cannot_check_leaves_the_local_count(serve: Any) -> None:
    tiny = cached_tiny_model()
    fake = FakeVllm(models=None, tokenizes=False)
    server = backend(serve(fake), model="served-name", tokenizer=str(tiny))
    assert server.count_prompt_tokens(PROMPTS) == ChatTokenizer.load(tiny).count(PROMPTS)
    assert server.count_prompt_tokens(PROMPTS) == ChatTokenizer.load(tiny).count(PROMPTS)
    assert fake.paths.count("/tokenize") == 1


def test_a_tokenizer_that_is_not_there_leaves_counting_to_the_server(
    serve: Any, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeVllm(models=None, tokenizes=True)
    server = backend(serve(fake), tokenizer=str(tmp_path / "nothing"))
    assert server.count_prompt_tokens(PROMPTS) == [words(p) for p in PROMPTS]
    assert "no tokenizer.json there" in caplog.text
