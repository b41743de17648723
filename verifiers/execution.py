"""The execution stage: every call of a sample is made, and its result kept in the sample.

Calls of tools read from a Python module (`ToolSource.kind == "python"`, `source.callable` =
`module:function`) run the real function in the sandbox (`verifiers.sandbox`), given the
module's source in the stage context; calls of every other tool are answered by the catalog's
mock API (`verifiers.mock_api.MockApi`). Either way a call is first checked against its tool's
JSON Schema, with the format stage's reason codes. A sample is rejected for its first failed
call (the sandbox's reason codes: execution_error, timeout, memory_limit, output_limit,
result_not_json, sandbox_error); the results of all its calls, error objects included, go into
its steps (`with_observations`), so exports carry them.

A conversation (a sample with follow-up turns) is played turn by turn, every call in order
against one conversation state of the mock API (`verifiers.mock_conversation`: what a call
created is there for the later calls, what it deleted is gone, `resource_not_found`); each
turn's results go into that turn's steps, and a rejection names the turn. The results made
replace the recorded ones, so a later call's value taken from an earlier result as recorded
may be in none of them now: a conversation whose values all come from its user turns or its
recorded results (the grounding stage's rule, `verifiers.grounding.ungrounded`) but not from
the results made is rejected with `value_not_in_results`, naming the turn, the call and the
value (its recorded results are not what this catalog's API answers; a conversation made
against this mock, as the generators make theirs, passes). A single-turn sample is run as
before: each call on its own, the same answer for the same call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from unified.model import Sample, Tool, ToolCall
from verifiers.mock_api import (
    STAGE,
    MockApi,
    MockResult,
    error_body,
    observe_calls,
    observe_conversation,
    with_observations,
    with_turn_observations,
)
from verifiers.mock_conversation import MockConversation
from verifiers.sandbox import Sandbox, SandboxInputError, SandboxLimits
from verifiers.stages import StageBase, StageContext, StageResult, python_callable
from verifiers.verdict import Reason, Verdict

FAILED_CALL_STATUS = 500


class ToolRunner:
    """Answers the calls of one set of tools: Python-module functions in the sandbox (each
    call in a fresh sandboxed process), every other tool from its mock API."""

    def __init__(
        self, tools: Sequence[Tool], modules: dict[str, str], limits: SandboxLimits | None = None
    ) -> None:
        self.mock = MockApi(tools)
        self.modules = modules
        self.limits = limits or SandboxLimits()
        self._sandbox: Sandbox | None = None

    def call(
        self,
        tool_call: ToolCall,
        index: int | None = None,
        conversation: MockConversation | None = None,
    ) -> MockResult:
        """The result of one call; `index` is its place in the sample (for messages). A mock
        tool answers in `conversation`'s state when one is given."""
        tool = self.mock.by_name.get(tool_call.name)
        target = python_callable(tool) if tool is not None else None
        if target is None:
            if conversation is not None:
                return conversation.call(tool_call, index)
            return self.mock.call(tool_call, index)
        refused = self.mock.check(tool_call, index)
        if refused is not None:
            return refused
        assert isinstance(tool_call.arguments, dict)  # the check rejects anything else
        return self._run(tool_call.name, target, tool_call.arguments)

    def _run(self, name: str, target: str, arguments: dict[str, Any]) -> MockResult:
        module = target.partition(":")[0]
        if module not in self.modules:
            return _failed(
                name,
                Reason.sandbox_error,
                f"tool '{name}': the source of module '{module}' is not stored with the "
                "catalog, so its function cannot run; upload the catalog again",
            )
        try:
            if self._sandbox is None:
                self._sandbox = Sandbox(dict(self.modules), self.limits)
            result = self._sandbox.call(target, arguments)
        except SandboxInputError as exc:
            return _failed(name, Reason.sandbox_error, f"tool '{name}': {exc}")
        if result.ok:
            return MockResult(status=200, body=result.value)
        reason = result.reason or Reason.execution_error.value
        return _failed(name, reason, f"tool '{name}': {result.detail or reason}")


class RunnerConversation:
    """The calls of one conversation through a `ToolRunner`: mock tools in one conversation
    state, Python-module tools in the sandbox."""

    def __init__(self, runner: ToolRunner) -> None:
        self.runner = runner
        self.mock = MockConversation(runner.mock)

    @property
    def turn(self) -> int | None:
        return self.mock.turn

    @turn.setter
    def turn(self, number: int | None) -> None:
        self.mock.turn = number

    def call(self, tool_call: ToolCall, index: int | None = None) -> MockResult:
        return self.runner.call(tool_call, index, self.mock)


def _failed(tool: str, reason: str, detail: str) -> MockResult:
    return MockResult(FAILED_CALL_STATUS, error_body(reason, detail, tool), reason, detail)


class ExecutionStage(StageBase):
    """Makes every call of each sample against the catalog's tools (the sample's own when the
    context has no catalog) and keeps the results in the sample's steps."""

    name = STAGE
    judges_conversations = True

    def verify_batch(self, samples: Sequence[Sample], context: StageContext) -> StageResult:
        """One verdict per sample, and the samples with the results of their calls."""
        modules = dict(context.modules)
        # The catalog's runner (its compiled schemas and response samplers) serves every batch
        # judged with this context.
        shared = (
            context.state(self.name, lambda: ToolRunner(context.tools, modules))
            if context.tools
            else None
        )
        verdicts: list[Verdict] = []
        observed: list[Sample] = []
        for sample in samples:
            if not sample.tool_calls():
                verdicts.append(Verdict.accept(STAGE))
                observed.append(sample)
                continue
            runner = shared or ToolRunner(sample.tools, modules)
            if sample.is_multi_turn():
                per_turn, verdict = observe_conversation(sample, RunnerConversation(runner))
                made = with_turn_observations(sample, per_turn)
                if verdict.accepted:
                    verdict = _held_together(sample, made, context.tools_for(sample))
            else:
                results, verdict = observe_calls(sample, runner.call)
                made = with_observations(sample, results)
            verdicts.append(verdict)
            observed.append(made)
        return StageResult(verdicts, observed)


def _held_together(recorded: Sample, made: Sample, tools: Sequence[Tool]) -> Verdict:
    """Reject a conversation whose values all come from its user turns or its recorded results
    but not once its calls are made (`value_not_in_results`)."""
    pairs = zip(recorded.all_steps(), made.all_steps(), strict=True)
    if all(not was.results or was.results == now.results for was, now in pairs):
        # Every recorded result is what the call gave: the results made hold all they held.
        return Verdict.accept(STAGE)
    from verifiers.grounding import NOT_STATED, ungrounded  # loaded only for conversations

    if ungrounded(recorded, tools) is not None:
        return Verdict.accept(STAGE)  # values from nowhere: the grounding stage's to judge
    why = ungrounded(made, tools)
    if why is None:
        return Verdict.accept(STAGE)
    recorded_only = (
        "comes from an earlier result as recorded, and the results of making the calls do not "
        "hold it: the recorded results are not what this catalog's API answers"
    )
    return Verdict.reject(
        STAGE, Reason.value_not_in_results, why.replace(NOT_STATED, recorded_only)
    )
