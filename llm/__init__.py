"""LLM backends: one interface over vLLM's in-process engine and OpenAI-compatible servers."""

from llm.base import (
    BACKENDS,
    BackendConfig,
    BackendUnavailable,
    LLMBackend,
    LlmDefaults,
    LLMRequest,
    LLMResult,
    load_backend,
)

__all__ = [
    "BACKENDS",
    "BackendConfig",
    "BackendUnavailable",
    "LLMBackend",
    "LLMRequest",
    "LLMResult",
    "LlmDefaults",
    "load_backend",
]
