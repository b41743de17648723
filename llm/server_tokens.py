"""What an OpenAI-compatible server says about its model's context and prompt lengths.

vLLM's server lists `max_model_len` per model in `GET {base_url}/models` and tokenizes chat
prompts with its chat template at `POST /tokenize` (beside `/v1`, not under it). Other servers
offer neither: the context length is then unknown (None) and prompts get the conservative
`estimate_prompt_tokens`. Both answers are kept for the backend's lifetime; a server that cannot
be reached is asked again next time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiohttp
import httpx

from llm.http_session import Answer, Unreachable, call
from llm.prompt_tokens import Messages, estimate_prompt_tokens

NO_TOKENIZER_STATUSES = frozenset({404, 405, 501})
"""The server has no /tokenize route: estimate from then on."""


def server_root(base_url: str) -> str:
    """The server's root: `base_url` without its `/v1` API prefix."""
    root = base_url.rstrip("/")
    return root.removesuffix("/v1")


Slot = Callable[[], AbstractAsyncContextManager[str]]
"""Gives the base URL of the server to ask, held while the call is in flight."""


class ServerPromptMeasure:
    """Context length and prompt lengths of one model on its servers (which all serve the same
    model), cached."""

    def __init__(
        self, base_urls: Sequence[str], model: str, headers: dict[str, str], timeout_s: float
    ) -> None:
        self.models_urls = [url.rstrip("/") + "/models" for url in base_urls]
        self.model = model
        self._headers = headers
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._context: tuple[int | None] | None = None  # (answer,) once the server answered
        self._tokenizes = True

    def context_length(self) -> int | None:
        """The model's `max_model_len` as the first server that answers lists it, or None."""
        with self._lock:
            for url in self.models_urls:
                if self._context is not None:
                    break
                try:
                    response = httpx.get(url, headers=self._headers, timeout=self._timeout_s)
                except httpx.HTTPError:
                    continue  # the generation requests will say what is wrong with the server
                self._context = (self._listed_length(response),)
            return self._context[0] if self._context is not None else None

    def _listed_length(self, response: httpx.Response) -> int | None:
        if response.status_code != 200:
            return None
        try:
            models: Any = response.json().get("data")
        except (ValueError, AttributeError):
            return None
        for entry in models if isinstance(models, list) else []:
            if isinstance(entry, dict) and entry.get("id") == self.model:
                length = entry.get("max_model_len")
                return length if isinstance(length, int) and length > 0 else None
        return None

    async def count(
        self, client: aiohttp.ClientSession, slot: Slot, prompts: Sequence[Messages]
    ) -> list[int]:
        """The tokens of each prompt, tokenized by a server `slot` gives (held while the call
        is in flight); the estimate where it cannot."""
        counts = await asyncio.gather(
            *(self._count_one(client, slot, prompt) for prompt in prompts)
        )
        return list(counts)

    async def _count_one(self, client: aiohttp.ClientSession, slot: Slot, prompt: Messages) -> int:
        count = await self.exact_count(client, slot, prompt)
        return count if count is not None else estimate_prompt_tokens(prompt)

    @property
    def tokenizes(self) -> bool:
        """False once the server said it has no /tokenize."""
        return self._tokenizes

    async def exact_count(
        self, client: aiohttp.ClientSession, slot: Slot, prompt: Messages
    ) -> int | None:
        """The prompt's tokens as the server counts them, or None where it does not answer."""
        if not self._tokenizes:
            return None
        body = {
            "model": self.model,
            "messages": [dict(message) for message in prompt],
            "add_generation_prompt": True,
        }
        async with slot() as base_url:
            url = server_root(base_url) + "/tokenize"
            try:
                response = await call(client, "POST", url, self._timeout_s, body)
            except (TimeoutError, Unreachable):
                return None
        if response.status in NO_TOKENIZER_STATUSES:
            self._tokenizes = False
        return _count_of(response) if response.status == 200 else None


def _count_of(response: Answer) -> int | None:
    try:
        count = response.json().get("count")
    except (ValueError, AttributeError):
        return None
    return count if isinstance(count, int) and count >= 0 else None
