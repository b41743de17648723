"""What a generator needs of a mock API to know a call's result while it drafts a conversation.

Generators and verifiers never import each other, so the mock API (`verifiers.mock_api.MockApi`,
which has this shape) is handed to a generator from above: the job engine gives it to every
generator that has a `use_tool_api(factory)` method. A follow-up turn that takes a value out of
an earlier result ("delete the one you just created") needs that result; without a tool API a
generator makes only the follow-ups that do not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from unified.model import Tool, ToolCall


class ToolAnswer(Protocol):
    """The outcome of one call."""

    @property
    def ok(self) -> bool:
        """Whether the call was answered (a refused call has an error body)."""
        ...

    @property
    def body(self) -> Any:
        """What the API answered."""
        ...


class ToolApi(Protocol):
    """A catalog's tools, callable: the same call gets the same answer."""

    def call(self, tool_call: ToolCall, index: int | None = None) -> ToolAnswer:
        """Answer the call; `index` is its place in the sample."""
        ...


ToolApiFactory = Callable[[Sequence[Tool]], ToolApi]
"""Makes the tool API of a catalog's tools (called once per catalog and generator)."""
