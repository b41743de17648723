"""The worker process's LLM backends: loaded on first use, kept across tasks, one per
configuration, so that generation and the semantic judge on the same model share one engine."""

from __future__ import annotations

import threading

from llm.base import BackendConfig, LLMBackend, load_backend

_shared: dict[str, LLMBackend] = {}
_lock = threading.Lock()


def shared_backend(config: BackendConfig) -> LLMBackend:
    """The process's backend for `config`, loaded on first use and kept until
    `close_shared_backends`. Two configurations (a generator model and a judge model, say) are
    two backends held side by side."""
    key = config.model_dump_json()
    with _lock:
        backend = _shared.get(key)
        if backend is None:
            backend = load_backend(config)
            _shared[key] = backend
        return backend


def close_shared_backends() -> None:
    """Close every backend `shared_backend` holds (engines, connections)."""
    with _lock:
        while _shared:
            _, backend = _shared.popitem()
            backend.close()
