from collections.abc import Sequence

import pytest

from unified import Sample, Step, Tool, ToolCall
from unified.errors import UnknownNameError
from verifiers import Verdict
from verifiers.stages import STAGES, FormatStage, build_stages, check_stage_names, run_stages

WEATHER = Tool(
    name="get_weather",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)
CLOCK = Tool(name="get_time", parameters={"type": "object", "properties": {}})


def sample(sample_id: str, *calls: ToolCall, tools: list[Tool] | None = None) -> Sample:
    return Sample(id=sample_id, query="q", tools=tools or [], steps=[Step(tool_calls=list(calls))])


class Recording:
    """A stage that rejects the samples whose id is in `reject` and records what it saw."""

    def __init__(self, name: str, reject: set[str]) -> None:
        self.name = name
        self.reject = reject
        self.seen: list[str] = []

    def verify_batch(self, samples: Sequence[Sample], tools: Sequence[Tool]) -> list[Verdict]:
        self.seen += [s.id for s in samples]
        return [
            Verdict.reject(self.name, "nope", f"{s.id} refused")
            if s.id in self.reject
            else Verdict.accept(self.name)
            for s in samples
        ]


def test_stages_run_in_order_and_a_sample_stops_at_its_first_rejection() -> None:
    first, second = Recording("first", {"b"}), Recording("second", {"c"})
    samples = [sample(i) for i in "abcd"]
    verdicts = run_stages([first, second], samples, [])
    assert first.seen == ["a", "b", "c", "d"]
    assert second.seen == ["a", "c", "d"]
    assert [[v.stage for v in vs] for vs in verdicts] == [
        ["first", "second"],
        ["first"],
        ["first", "second"],
        ["first", "second"],
    ]
    assert [vs[-1].accepted for vs in verdicts] == [True, False, False, True]
    assert verdicts[1][-1].detail == "b refused"


def test_later_stages_are_skipped_when_nothing_is_left() -> None:
    everything, never = Recording("all", set("ab")), Recording("never", set())
    verdicts = run_stages([everything, never], [sample("a"), sample("b")], [])
    assert never.seen == []
    assert all(len(vs) == 1 and not vs[0].accepted for vs in verdicts)


def test_no_stages_leave_every_sample_without_verdicts() -> None:
    assert run_stages([], [sample("a")], []) == [[]]


def test_a_stage_returning_the_wrong_number_of_verdicts_is_a_bug_said_plainly() -> None:
    class Short:
        name = "short"

        def verify_batch(self, samples: Sequence[Sample], tools: Sequence[Tool]) -> list[Verdict]:
            return []

    with pytest.raises(RuntimeError, match="stage 'short' returned 0 verdicts for 2 samples"):
        run_stages([Short()], [sample("a"), sample("b")], [])


def test_format_stage_checks_against_the_samples_own_tools_first() -> None:
    stage = FormatStage()
    offered_weather = sample("a", ToolCall(name="get_time"), tools=[WEATHER])
    no_tools = sample("b", ToolCall(name="get_time"))
    bad_args = sample("c", ToolCall(name="get_weather", arguments={}), tools=[WEATHER])
    good = sample("d", ToolCall(name="get_weather", arguments={"city": "Oslo"}), tools=[WEATHER])
    verdicts = stage.verify_batch([offered_weather, no_tools, bad_args, good], [WEATHER, CLOCK])
    assert [(v.accepted, v.reason) for v in verdicts] == [
        (False, "unknown_tool"),
        (True, None),
        (False, "missing_required_argument"),
        (True, None),
    ]
    assert all(v.stage == "format" for v in verdicts)


def test_stages_are_found_by_name() -> None:
    assert "format" in STAGES.names()
    [stage] = build_stages(["format"])
    assert isinstance(stage, FormatStage)
    check_stage_names(["format"])


def test_an_unknown_stage_name_lists_the_known_ones() -> None:
    with pytest.raises(UnknownNameError) as raised:
        check_stage_names(["format", "semantik"])
    assert str(raised.value).startswith("Unknown verification stage 'semantik'. Known: ")
    assert "format" in str(raised.value)
