"""The execution stage: every call of a sample is made, and its result kept in the sample.

Calls of tools read from a Python module (`ToolSource.kind == "python"`, `source.callable` =
`module:function`) run the real function in the sandbox (`verifiers.sandbox`), given the
module's source in the stage context; calls of every other tool are answered by the catalog's
mock API (`verifiers.mock_api.MockApi`). Either way a call is first checked against its tool's
JSON Schema, with the format stage's reason codes. A sample is rejected for its first failed
call (the sandbox's reason codes: execution_error, timeout, memory_limit, output_limit,
result_not_json, sandbox_error); the results of all its calls, error objects included, go into
its steps (`with_observations`), so exports carry them.
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
    with_observations,
)
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

    def call(self, tool_call: ToolCall, index: int | None = None) -> MockResult:
        """The result of one call; `index` is its place in the sample (for messages)."""
        tool = self.mock.by_name.get(tool_call.name)
        target = python_callable(tool) if tool is not None else None
        if target is None:
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


def _failed(tool: str, reason: str, detail: str) -> MockResult:
    return MockResult(FAILED_CALL_STATUS, error_body(reason, detail, tool), reason, detail)


class ExecutionStage(StageBase):
    """Makes every call of each sample against the catalog's tools (the sample's own when the
    context has no catalog) and keeps the results in the sample's steps."""

    name = STAGE

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
            results, verdict = observe_calls(sample, runner.call)
            verdicts.append(verdict)
            observed.append(with_observations(sample, results))
        return StageResult(verdicts, observed)
