"""The tool API the job engine hands to generators (`generators.tool_api.ToolApi`): the
catalog's mock API, each call on its own, and a new conversation state of it per conversation
(`verifiers.mock_conversation`), the one the execution stage plays a conversation against."""

from __future__ import annotations

from verifiers.mock_api import MockApi
from verifiers.mock_conversation import MockConversation


class MockToolApi(MockApi):
    """A catalog's mock API, and its conversations for a generator drafting them."""

    def conversation(self) -> MockConversation:
        """The mock API with the state of one new conversation."""
        return MockConversation(self)
