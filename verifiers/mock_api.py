"""Mock APIs from a catalog: every call's arguments are checked against the tool's JSON Schema
(the format stage's checks and reason codes) and good calls are answered from the tool's
response schema (`verifiers.mock_responses`), the same answer for the same call.

`MockApi` runs calls in-process, each on its own; `MockConversation(api)` runs the calls of one
conversation against its state (an item a call created is there for the later calls, one it
deleted is gone: `verifiers.mock_conversation`). `service.mock_http.mock_app` serves the same
object over HTTP. `observe` runs a single-turn sample's calls and gives their results and an
"execution" verdict, `with_observations` puts those results into the sample;
`observe_conversation` and `with_turn_observations` do the same turn by turn for a conversation.
The execution stage (`verifiers.execution`) runs them, Python-module tools in a sandbox.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

from unified.model import Sample, Step, Tool, ToolCall
from verifiers.format import FormatVerifier
from verifiers.mock_responses import ResponseMaker
from verifiers.resources import Resources
from verifiers.verdict import Reason, Verdict

STAGE = "execution"

_STATUS_BY_REASON = {Reason.unknown_tool.value: 404}
_REJECTED_STATUS = 422


@dataclass(frozen=True)
class MockResult:
    """The outcome of one call: HTTP status, and for a rejected call its reason code and detail;
    `body` is what the API answers (the response value, or the error object)."""

    status: int
    body: Any
    reason: str | None = None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the call was answered (2xx)."""
        return 200 <= self.status < 300


def error_body(reason: str, detail: str, tool: str | None = None) -> dict[str, Any]:
    """The JSON object a rejected call gets."""
    return {"error": {"reason": reason, "detail": detail, "tool": tool}}


class MockApi:
    """A mock of a catalog's tools, callable in-process; one instance serves many calls."""

    def __init__(self, tools: Sequence[Tool]) -> None:
        self.tools = list(tools)
        self.by_name = {tool.name: tool for tool in self.tools}
        self._verifier = FormatVerifier()
        self._makers = {tool.name: ResponseMaker(tool) for tool in self.tools}

    def check(self, tool_call: ToolCall, index: int | None = None) -> MockResult | None:
        """The error a call gets when its tool is unknown or its arguments do not fit the
        tool's schema; None for a call that can be answered."""
        verdict = self._verifier.verify_call(tool_call, self.by_name, index)
        if verdict is None:
            return None
        reason = verdict.reason or Reason.schema_violation.value
        detail = verdict.detail or ""
        status = _STATUS_BY_REASON.get(reason, _REJECTED_STATUS)
        body = error_body(reason, detail, tool_call.name)
        return MockResult(status=status, body=body, reason=reason, detail=detail)

    def call(self, tool_call: ToolCall, index: int | None = None) -> MockResult:
        """Validate the call's arguments and answer it; `index` is its place in a sample."""
        refused = self.check(tool_call, index)
        if refused is not None:
            return refused
        arguments = tool_call.arguments
        assert isinstance(arguments, dict)  # the format check rejects anything else
        return MockResult(status=200, body=self._makers[tool_call.name].answer(arguments))

    def maker(self, name: str) -> ResponseMaker:
        """The answers of the tool `name` (a tool the API has)."""
        return self._makers[name]

    @cached_property
    def resources(self) -> Resources:
        """What each tool does to which resources (for conversations)."""
        return Resources(self.tools)

    def observe(self, sample: Sample) -> tuple[list[Any], Verdict]:
        """Run every call of the sample, in order: their results (error objects for rejected
        calls), and an execution verdict that names the first rejected call."""
        return observe_calls(sample, self.call)


def observe_calls(
    sample: Sample, call: Callable[[ToolCall, int], MockResult]
) -> tuple[list[Any], Verdict]:
    """Make every call of the sample with `call`, in order: their results (error objects for
    failed calls), and an execution verdict that names the first failed call."""
    results: list[Any] = []
    verdict: Verdict | None = None
    for index, tool_call in enumerate(sample.tool_calls()):
        result = call(tool_call, index)
        results.append(result.body)
        if verdict is None and not result.ok:
            verdict = Verdict.reject(
                STAGE, result.reason or Reason.schema_violation.value, result.detail or ""
            )
    return results, verdict if verdict is not None else Verdict.accept(STAGE)


class ConversationCaller(Protocol):
    """Makes the calls of one conversation, in order, in its state; `turn` is the turn being
    played (1-based)."""

    turn: int | None

    def call(self, tool_call: ToolCall, index: int | None = None) -> MockResult: ...


def observe_conversation(
    sample: Sample, caller: ConversationCaller
) -> tuple[list[list[Any]], Verdict]:
    """Make every call of every turn with `caller`, in order: each turn's results (error objects
    for failed calls), and an execution verdict naming the turn and call of the first failure."""
    per_turn: list[list[Any]] = []
    verdict: Verdict | None = None
    for number, turn in enumerate(sample.conversation(), 1):
        caller.turn = number
        results: list[Any] = []
        calls = [tool_call for step in turn.steps for tool_call in step.tool_calls]
        for index, tool_call in enumerate(calls):
            result = caller.call(tool_call, index)
            results.append(result.body)
            if verdict is None and not result.ok:
                reason = result.reason or Reason.schema_violation.value
                verdict = Verdict.reject(STAGE, reason, f"turn {number}, {result.detail or ''}")
        per_turn.append(results)
    return per_turn, verdict if verdict is not None else Verdict.accept(STAGE)


def with_turn_observations(sample: Sample, per_turn: Sequence[Sequence[Any]]) -> Sample:
    """A copy of the conversation whose steps carry each turn's results (as
    `observe_conversation` gives them), turn by turn and step by step."""
    first, *later = per_turn
    turns = [
        turn.model_copy(update={"steps": _observed_steps(turn.steps, results)})
        for turn, results in zip(sample.turns, later, strict=True)
    ]
    return sample.model_copy(update={"steps": _observed_steps(sample.steps, first), "turns": turns})


def _observed_steps(steps: Sequence[Step], results: Sequence[Any]) -> list[Step]:
    remaining = list(results)
    observed: list[Step] = []
    for step in steps:
        taken, remaining = remaining[: len(step.tool_calls)], remaining[len(step.tool_calls) :]
        observed.append(step.model_copy(update={"results": taken}))
    return observed


def with_observations(sample: Sample, results: Sequence[Any]) -> Sample:
    """A copy of the sample whose steps carry `results` (as `observe` returns them) as the
    results of their calls, step by step."""
    return sample.model_copy(update={"steps": _observed_steps(sample.steps, results)})
