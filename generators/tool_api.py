"""What a generator needs of a mock API to know a call's result while it drafts a conversation.

Generators and verifiers never import each other, so the mock API (`verifiers.mock_api.MockApi`,
with a conversation's state from `verifiers.mock_conversation.MockConversation`) is handed to a
generator from above: the job engine gives it to every generator that has a
`use_tool_api(factory)` method (`service.pipeline.tool_api`). A follow-up turn that takes a value
out of an earlier result ("delete the one you just created") needs that result; without a tool
API a generator makes only the follow-ups that do not. The calls of one conversation go to one
`conversation()`, so that a read of an item created earlier in it gets the answer the execution
stage will give (which plays each conversation against one mock state).
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

    @property
    def reason(self) -> str | None:
        """For a refused call, its reason code (the format stage's, or the mock's)."""
        ...

    @property
    def detail(self) -> str | None:
        """For a refused call, what was wrong with it."""
        ...


class ToolCaller(Protocol):
    """Answers calls of a catalog's tools."""

    def call(self, tool_call: ToolCall, index: int | None = None) -> ToolAnswer:
        """Answer the call; `index` is its place in the sample (or turn)."""
        ...


class ToolApi(ToolCaller, Protocol):
    """A catalog's tools, callable: each call on its own, the same call gets the same answer."""

    def conversation(self) -> ToolCaller:
        """The tools with the state of one new conversation: what its calls create is there
        for its later calls, what they delete is gone. The same calls in the same order get
        the same answers in every new conversation."""
        ...


ToolApiFactory = Callable[[Sequence[Tool]], ToolApi]
"""Makes the tool API of a catalog's tools (called once per catalog and generator)."""
