"""One simulated conversation of the multi_turn style: where it stands and what happens next.

A conversation follows its blueprint (`generators.llm.blueprint`) one user turn at a time, in
three steps, each one LLM request: the simulated user writes a message asking for the first
blueprint turn whose calls are not all made yet (`user`); the assistant answers it with calls of
the sample's tools, which run at once on the conversation's mock API (`act`); the assistant
answers the user from their results (`answer`). It ends when every call of the blueprint has
been made (`completed`), when the assistant makes a call the blueprint does not (`diverged`),
or at the turn limit with calls still missing (`turn_limit`); the last two are kept but marked
as not following the blueprint. This module holds no LLM: the driver (`generators.llm.
multi_turn`) sends the requests and hands the answers in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from generators.llm.blueprint import Blueprint, BlueprintTurn, call_key, stated_details, unmatched
from generators.tool_api import ToolCaller
from unified.model import Step, ToolCall, Turn

RESULT_CHARS = 300
"""How much of a call's result (as JSON) the prompts show; the sample keeps it whole."""


class Phase(StrEnum):
    """The next request of a conversation."""

    user = "user"
    act = "act"
    answer = "answer"


class End(StrEnum):
    """How a conversation ended."""

    completed = "completed"
    diverged = "diverged"
    turn_limit = "turn_limit"
    failed = "failed"


@dataclass
class Dialogue:
    """A conversation in progress: its blueprint, its mock API, the turns so far."""

    blueprint: Blueprint
    api: ToolCaller
    max_turns: int
    turns: list[Turn] = field(default_factory=list)
    phase: Phase = Phase.user
    end: End | None = None
    not_followed: str | None = None
    """Why the conversation does not follow its blueprint (set when it ends so)."""
    _calls: int = 0

    @property
    def finished(self) -> bool:
        """Whether no request is left to send."""
        return self.end is not None

    def made(self) -> list[ToolCall]:
        """Every call made so far, in order."""
        return [call for turn in self.turns for step in turn.steps for call in step.tool_calls]

    def target(self) -> BlueprintTurn:
        """The blueprint turn the user asks for next: the first with a call not made yet."""
        missing = set(unmatched(self.blueprint.calls(), self.made())[0])
        for turn in self.blueprint.turns:
            if any(call_key(call) in missing for call in turn.calls):
                return turn
        return self.blueprint.turns[-1]

    def user_variables(self) -> dict[str, Any]:
        """The variables of the simulated user's prompt (`user_turn.j2`)."""
        target = self.target()
        return {
            "intent": self.blueprint.intent,
            "request": target.request,
            "details": stated_details(target.calls),
            "history": self.history(),
        }

    def act_variables(self) -> dict[str, Any]:
        """The variables of the assistant's calling prompt (`assistant_turn.j2`, less tools)."""
        return {"history": self.history(done=True), "message": self.turns[-1].query}

    def answer_variables(self) -> dict[str, Any]:
        """The variables of the assistant's answering prompt (`assistant_answer.j2`)."""
        current = self.history()[-1]
        return {
            "history": self.history(done=True),
            "message": current["message"],
            "calls": current["calls"],
        }

    def history(self, done: bool = False) -> list[dict[str, Any]]:
        """The turns so far as prompts show them (`done`: only the finished ones): the user's
        message, the calls with their results cut to RESULT_CHARS, the assistant's answer."""
        turns = self.turns[:-1] if done and self.phase is not Phase.user else self.turns
        shown = []
        for turn in turns:
            calls = [
                {"name": call.name, "arguments": call.arguments, "result": _cut(result)}
                for step in turn.steps
                for call, result in zip(step.tool_calls, step.results, strict=False)
            ]
            answers = [step.answer for step in turn.steps if step.answer is not None]
            shown.append(
                {"message": turn.query, "calls": calls, "answer": answers[-1] if answers else None}
            )
        return shown

    def take_message(self, message: str) -> None:
        """The simulated user's message opens a turn."""
        assert self.phase is Phase.user and not self.finished
        self.turns.append(Turn(query=message))
        self.phase = Phase.act

    def take_calls(self, calls: list[ToolCall]) -> None:
        """The assistant's calls, run in order on the mock API; their results join the turn."""
        assert self.phase is Phase.act and not self.finished
        if calls:
            results = []
            for call in calls:
                results.append(self.api.call(call, self._calls).body)
                self._calls += 1
            self.turns[-1].steps.append(Step(tool_calls=calls, results=results))
        self.phase = Phase.answer

    def take_answer(self, answer: str) -> None:
        """The assistant's answer closes the turn; the conversation ends or goes on."""
        assert self.phase is Phase.answer and not self.finished
        self.turns[-1].steps.append(Step(answer=answer))
        self.phase = Phase.user
        missing, extra = unmatched(self.blueprint.calls(), self.made())
        if extra:
            self.end = End.diverged
            self.not_followed = (
                f"turn {len(self.turns)}: the assistant called {extra[0]}, which is not among "
                "the blueprint's calls left to make"
            )
        elif not missing:
            self.end = End.completed
        elif len(self.turns) >= self.max_turns:
            self.end = End.turn_limit
            self.not_followed = (
                f"after {len(self.turns)} turns (the limit) the blueprint's call {missing[0]} "
                f"was not made ({len(missing)} of its calls missing)"
            )

    def fail(self) -> None:
        """A request of the conversation failed: nothing more is sent."""
        self.end = End.failed


def _cut(result: Any) -> str:
    text = orjson.dumps(result).decode()
    return text if len(text) <= RESULT_CHARS else text[: RESULT_CHARS - 1] + "…"


def conversation_parts(turns: list[Turn]) -> tuple[str, list[Step], list[Turn]]:
    """A conversation's turns as a sample holds them: the first turn's query and steps, and the
    follow-up turns."""
    if not turns:
        return "", [], []
    return turns[0].query, turns[0].steps, turns[1:]
