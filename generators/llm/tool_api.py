"""What the multi_turn style runs calls on: a mock of the catalog's API, given to the generator.

Generators do not import verifiers (the layers stand side by side), so the LLM generator takes
the mock as a factory: `tools -> ToolApi`, one fresh API per conversation (a stateful mock keeps
one conversation's state). `verifiers.mock_api.MockApi` is such a factory, and the service gives
it to the generator; a generator made without one cannot make multi_turn samples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from unified.model import Tool, ToolCall


class ToolAnswer(Protocol):
    """The outcome of one call: answered or refused, what the API returned, and for a refused
    call its reason code and detail."""

    @property
    def ok(self) -> bool: ...

    @property
    def body(self) -> Any: ...

    @property
    def reason(self) -> str | None: ...

    @property
    def detail(self) -> str | None: ...


class ToolApi(Protocol):
    """Answers calls in order; `index` is the call's place in the conversation."""

    def call(self, tool_call: ToolCall, index: int | None = None) -> ToolAnswer: ...


ToolApiFactory = Callable[[Sequence[Tool]], ToolApi]
"""Makes the API of a conversation's tools."""
