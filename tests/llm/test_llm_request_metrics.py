"""The `openai` backend counts every try against a real HTTP server: answers with their tokens,
503s that a retry follows, a 400 answered as an error, a refused key, and a server that is not
there, each under its kind and the server's base_url."""

from __future__ import annotations

import pytest
from llm_fixtures import free_port
from prometheus_client import REGISTRY
from scripted_llm import Reply, scripted_llm_server, user_text

from llm.base import BackendConfig, BackendUnavailable, LLMRequest
from llm.metrics import server_label
from llm.openai_server import OpenAIServerBackend


def counted(name: str, base_url: str, **labels: str) -> float:
    labels = {"base_url": server_label(base_url), **labels}
    return REGISTRY.get_sample_value(name, labels) or 0.0


def backend(base_url: str, **options: object) -> OpenAIServerBackend:
    config = BackendConfig(backend="openai", model="scripted", base_url=base_url, **options)
    return OpenAIServerBackend(config)


def ask(text: str) -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": text}], max_tokens=8)


def test_answers_retries_and_errors_are_counted_per_try() -> None:
    tries: list[str] = []

    def script(body: dict[str, object]) -> Reply:
        text = user_text(body)
        tries.append(text)
        if text == "busy" and tries.count(text) == 1:
            return Reply(content="warming up", status=503)
        if text == "too long":
            return Reply(content="prompt too long", status=400)
        return Reply(content="two words")

    with scripted_llm_server(script) as server:
        url = server.base_url
        results = backend(url).generate([ask("busy now"), ask("busy"), ask("too long")])
    assert [result.finish_reason for result in results] == ["stop", "stop", "error"]
    assert counted("actionforge_llm_requests_total", url, outcome="stop") == 2
    assert counted("actionforge_llm_requests_total", url, outcome="failed") == 1
    assert counted("actionforge_llm_requests_total", url, outcome="error") == 1
    assert counted("actionforge_llm_errors_total", url, kind="http_status") == 1
    assert counted("actionforge_llm_errors_total", url, kind="answer_error") == 1
    # The scripted server reports a prompt's words as its prompt tokens.
    assert counted("actionforge_llm_tokens_total", url, kind="prompt") == 3
    assert counted("actionforge_llm_tokens_total", url, kind="completion") == 4
    assert counted("actionforge_llm_request_duration_seconds_count", url) == len(tries) == 4


def test_a_refused_key_and_a_server_that_is_not_there_are_counted() -> None:
    with scripted_llm_server(lambda _: Reply(content="bad key", status=401)) as server:
        with pytest.raises(BackendUnavailable):
            backend(server.base_url).generate([ask("hi")])
        assert counted("actionforge_llm_errors_total", server.base_url, kind="refused") == 1
    nowhere = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(BackendUnavailable):
        backend(nowhere, max_retries=1).generate([ask("hi")])
    assert counted("actionforge_llm_errors_total", nowhere, kind="connection") == 2
    assert counted("actionforge_llm_requests_total", nowhere, outcome="failed") == 2
