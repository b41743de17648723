"""How long a chat prompt is in tokens, and how long a prompt the model takes.

A backend that knows its model's tokenizer and context length offers `PromptMeasuring`
(vLLM's in-process engine, and the OpenAI-compatible server backend where the server is vLLM).
`PromptMeter` asks the backend where it can and falls back otherwise: to the `max_model_len`
the caller gives, and to `estimate_prompt_tokens`, an upper bound for the tokenizers of today's
models (byte-level BPE, and SentencePiece with byte fallback: no token stands for less than one
byte of text), so a prompt it lets through is never too long, at the price of trimming more
than needed on a model with a real vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

Messages = Sequence[Mapping[str, str]]

TEMPLATE_TOKENS_PER_MESSAGE = 16
"""What a chat template adds around each message (role markers, separators), at most."""
TEMPLATE_TOKENS_PER_PROMPT = 16
"""What it adds once (a begin-of-text token, the assistant's turn opening)."""


def estimate_prompt_tokens(messages: Messages) -> int:
    """At least the number of tokens `messages` take once a chat template has rendered them:
    one token per byte of their text, plus the template's allowance."""
    text_bytes = sum(len(str(message.get("content", "")).encode()) for message in messages)
    return text_bytes + TEMPLATE_TOKENS_PER_MESSAGE * len(messages) + TEMPLATE_TOKENS_PER_PROMPT


@runtime_checkable
class PromptMeasuring(Protocol):
    """A backend that can say how long its model's context is and how long prompts are."""

    def context_length(self) -> int | None:
        """The model's context (prompt plus answer) in tokens, or None when not known."""
        ...

    def count_prompt_tokens(self, prompts: Sequence[Messages]) -> list[int]:
        """The tokens of each chat prompt as the model would see it, in order (an upper
        bound where a prompt cannot be tokenized exactly)."""
        ...


class PromptMeter:
    """The context length and prompt lengths for one backend, with the fallbacks applied."""

    def __init__(self, backend: object, max_model_len: int | None = None) -> None:
        self._measuring = backend if isinstance(backend, PromptMeasuring) else None
        self._fallback_length = max_model_len

    def context_length(self) -> int | None:
        """The backend's answer, else the configured `max_model_len`, else None."""
        known = self._measuring.context_length() if self._measuring is not None else None
        return known if known is not None else self._fallback_length

    def count(self, prompts: Sequence[Messages]) -> list[int]:
        """The tokens of each prompt: the backend's tokenizer where it has one, else the
        estimate."""
        if not prompts:
            return []
        if self._measuring is not None:
            return self._measuring.count_prompt_tokens(prompts)
        return [estimate_prompt_tokens(prompt) for prompt in prompts]
