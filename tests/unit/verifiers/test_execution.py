"""The execution stage: calls answered by the catalog's mock API or run in the real sandbox,
their results kept in the samples, and a reason for the first call that fails."""

from __future__ import annotations

from pathlib import Path

from generators.base import GenerationRequest
from generators.template.generator import TemplateGenerator
from unified.catalogs import load_catalog, load_catalog_bytes
from unified.model import Sample, Step, Tool, ToolCall, Turn
from verifiers.execution import ExecutionStage
from verifiers.mock_api import MockApi
from verifiers.stages import StageContext, build_stages, python_callable, run_stages

ROOT = Path(__file__).resolve().parents[3]
TRAVEL = load_catalog(ROOT / "examples" / "travel_api.yaml").tools
CALCULATOR = '''"""A small calculator."""

import math


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def divide(a: float, b: float) -> float:
    """Divide a by b."""
    return a / b


def square_root(x: float) -> float:
    """The square root of x."""
    return math.sqrt(x)
'''
CALCULATOR_TOOLS = load_catalog_bytes(CALCULATOR.encode(), "calc.py").tools


def calling(sample_id: str, *steps: list[ToolCall]) -> Sample:
    return Sample(id=sample_id, query="q", steps=[Step(tool_calls=calls) for calls in steps])


def call(name: str, **arguments: object) -> ToolCall:
    return ToolCall(name=name, arguments=dict(arguments))


def test_every_template_call_gets_the_mock_apis_answer_in_its_step() -> None:
    samples = TemplateGenerator().generate(TRAVEL, GenerationRequest(n=60, seed=4))
    result = ExecutionStage().verify_batch(samples, StageContext.for_catalog(TRAVEL))
    assert result.samples is not None
    assert all(v.accepted and v.stage == "execution" for v in result.verdicts)
    api = MockApi(TRAVEL)
    for before, after in zip(samples, result.samples, strict=True):
        assert after.id == before.id
        for old, new in zip(before.steps, after.steps, strict=True):
            assert new.tool_calls == old.tool_calls
            assert new.results == [api.call(c).body for c in old.tool_calls]
    without_calls = [s for s, a in zip(samples, result.samples, strict=True) if not s.tool_calls()]
    assert without_calls, "the template mix has irrelevance samples"
    assert all(a is s for s, a in zip(samples, result.samples, strict=True) if not s.tool_calls())


def test_the_first_failed_call_rejects_the_sample_and_every_result_is_kept() -> None:
    good = call("get_weather", city="Oslo")
    bad = call("get_weather", city="Oslo", colour="blue")
    sample = calling("s", [good], [bad, call("no_such_tool")])
    result = ExecutionStage().verify_batch([sample], StageContext.for_catalog(TRAVEL))
    [verdict] = result.verdicts
    assert (verdict.accepted, verdict.stage, verdict.reason) == (
        False,
        "execution",
        "unexpected_argument",
    )
    assert result.samples is not None
    steps = result.samples[0].steps
    assert steps[0].results == [MockApi(TRAVEL).call(good).body]
    assert steps[1].results[0]["error"]["reason"] == "unexpected_argument"
    assert steps[1].results[1]["error"]["reason"] == "unknown_tool"


def test_without_a_catalog_the_samples_own_tools_answer() -> None:
    sample = calling("s", [call("get_weather", city="Lima")]).model_copy(update={"tools": TRAVEL})
    result = ExecutionStage().verify_batch([sample], StageContext())
    assert result.verdicts[0].accepted
    assert result.samples is not None
    assert result.samples[0].steps[0].results == [
        MockApi(TRAVEL).call(call("get_weather", city="Lima")).body
    ]


def test_python_tools_run_the_real_function_in_the_sandbox() -> None:
    assert [python_callable(t) for t in CALCULATOR_TOOLS] == [
        "calc:add",
        "calc:divide",
        "calc:square_root",
    ]
    samples = [
        calling("sum", [call("add", a=2, b=40)], [call("square_root", x=16)]),
        calling("zero", [call("divide", a=1, b=0)]),
        calling("typed", [call("add", a="two", b=1)]),
        calling("nan", [call("square_root", x=-1)]),
    ]
    context = StageContext.for_catalog(CALCULATOR_TOOLS, CALCULATOR)
    result = run_stages(build_stages(["format", "execution"]), samples, context)
    outcomes = [(vs[-1].stage, vs[-1].reason) for vs in result.verdicts]
    assert outcomes == [
        ("execution", None),
        ("execution", "execution_error"),
        ("format", "argument_type_mismatch"),
        ("execution", "execution_error"),
    ]
    assert [step.results for step in result.samples[0].steps] == [[42], [4.0]]
    assert result.changed == [True, True, False, True]
    zero = result.verdicts[1][-1].detail or ""
    assert zero.startswith("tool 'divide': ZeroDivisionError")
    error = result.samples[1].steps[0].results[0]["error"]
    assert (error["reason"], error["tool"]) == ("execution_error", "divide")
    assert "math domain error" in (result.verdicts[3][-1].detail or "")


def test_a_python_tool_without_its_module_source_is_a_sandbox_error() -> None:
    sample = calling("s", [call("add", a=1, b=2)])
    result = ExecutionStage().verify_batch([sample], StageContext.for_catalog(CALCULATOR_TOOLS))
    [verdict] = result.verdicts
    assert (verdict.accepted, verdict.reason) == (False, "sandbox_error")
    assert verdict.detail == (
        "tool 'add': the source of module 'calc' is not stored with the catalog, so its "
        "function cannot run; upload the catalog again"
    )


def test_tools_that_do_not_come_from_python_are_never_sandboxed() -> None:
    assert all(python_callable(tool) is None for tool in TRAVEL)
    plain = Tool(name="add", parameters={"type": "object", "properties": {}})
    assert python_callable(plain) is None


def test_a_conversations_python_calls_run_in_the_sandbox_turn_by_turn() -> None:
    talk = calling("talk", [call("add", a=2, b=40)]).model_copy(
        update={
            "turns": [
                Turn(
                    query="And its square root?",
                    steps=[Step(tool_calls=[call("square_root", x=42)])],
                ),
                Turn(
                    query="Divide it by zero.", steps=[Step(tool_calls=[call("divide", a=42, b=0)])]
                ),
            ]
        }
    )
    context = StageContext.for_catalog(CALCULATOR_TOOLS, CALCULATOR)
    result = run_stages(build_stages(["execution"]), [talk], context)
    (verdict,) = result.verdicts[0]
    assert (verdict.reason, (verdict.detail or "")[:38]) == (
        "execution_error",
        "turn 3, tool 'divide': ZeroDivisionErr",
    )
    made = result.samples[0]
    assert [turn.steps[0].results for turn in made.conversation()][:2] == [[42], [42**0.5]]
    assert made.turns[1].steps[0].results[0]["error"]["reason"] == "execution_error"
