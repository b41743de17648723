from collections.abc import Sequence

import pytest

from unified import Sample, Step, Tool, ToolCall
from unified.errors import ActionForgeError, UnknownNameError
from unified.model import ToolSource
from verifiers import Verdict
from verifiers.stages import (
    STAGES,
    FormatStage,
    StageContext,
    StageResult,
    build_stages,
    check_stage_names,
    check_stage_order,
    run_stages,
)

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

    def verify_batch(self, samples: Sequence[Sample], context: StageContext) -> list[Verdict]:
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
    verdicts = run_stages([first, second], samples, StageContext()).verdicts
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
    verdicts = run_stages([everything, never], [sample("a"), sample("b")], StageContext()).verdicts
    assert never.seen == []
    assert all(len(vs) == 1 and not vs[0].accepted for vs in verdicts)


def test_no_stages_leave_every_sample_without_verdicts() -> None:
    result = run_stages([], [sample("a")], StageContext())
    assert result.verdicts == [[]]
    assert result.changed == [False]
    assert result.survivors() == [0]


def test_a_stage_returning_the_wrong_number_of_verdicts_is_a_bug_said_plainly() -> None:
    class Short:
        name = "short"

        def verify_batch(self, samples: Sequence[Sample], context: StageContext) -> list[Verdict]:
            return []

    with pytest.raises(RuntimeError, match="stage 'short' returned 0 verdicts for 2 samples"):
        run_stages([Short()], [sample("a"), sample("b")], StageContext())


def test_format_stage_checks_against_the_samples_own_tools_first() -> None:
    stage = FormatStage()
    offered_weather = sample("a", ToolCall(name="get_time"), tools=[WEATHER])
    no_tools = sample("b", ToolCall(name="get_time"))
    bad_args = sample("c", ToolCall(name="get_weather", arguments={}), tools=[WEATHER])
    good = sample("d", ToolCall(name="get_weather", arguments={"city": "Oslo"}), tools=[WEATHER])
    batch = [offered_weather, no_tools, bad_args, good]
    verdicts = stage.verify_batch(batch, StageContext([WEATHER, CLOCK]))
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


def test_the_catalog_can_take_the_place_of_the_samples_own_tools() -> None:
    offered_weather = sample("a", ToolCall(name="get_time"), tools=[WEATHER])
    own_first = FormatStage().verify_batch([offered_weather], StageContext([WEATHER, CLOCK]))
    catalog = StageContext([WEATHER, CLOCK], catalog_only=True)
    assert [v.reason for v in own_first] == ["unknown_tool"]
    assert [v.accepted for v in FormatStage().verify_batch([offered_weather], catalog)] == [True]


class Renaming:
    """A stage that accepts everything and gives each sample it sees a new query."""

    name = "renaming"

    def verify_batch(self, samples: Sequence[Sample], context: StageContext) -> StageResult:
        return StageResult(
            [Verdict.accept(self.name) for _ in samples],
            [s.model_copy(update={"query": s.query + "!"}) for s in samples],
        )


def test_later_stages_see_the_samples_as_earlier_stages_left_them() -> None:
    gate, after = Recording("gate", {"b"}), Recording("after", set())
    seen: list[str] = []

    class Watching(Recording):
        def verify_batch(self, samples: Sequence[Sample], context: StageContext) -> list[Verdict]:
            seen.extend(s.query for s in samples)
            return super().verify_batch(samples, context)

    watching = Watching("watching", set())
    result = run_stages(
        [gate, Renaming(), watching, after], [sample("a"), sample("b")], StageContext()
    )
    assert seen == ["q!"]
    assert [s.query for s in result.samples] == ["q!", "q"]
    assert result.changed == [True, False]
    assert result.survivors() == [0]
    assert [[v.stage for v in vs] for vs in result.verdicts] == [
        ["gate", "renaming", "watching", "after"],
        ["gate"],
    ]


def test_a_stage_returning_the_wrong_number_of_samples_is_a_bug_said_plainly() -> None:
    class Lossy:
        name = "lossy"

        def verify_batch(self, samples: Sequence[Sample], context: StageContext) -> StageResult:
            return StageResult([Verdict.accept(self.name) for _ in samples], [])

    with pytest.raises(RuntimeError, match="stage 'lossy' returned 0 samples for 1"):
        run_stages([Lossy()], [sample("a")], StageContext())


def test_execution_and_dedup_are_registered_under_their_stage_names() -> None:
    from verifiers.dedup import STAGE as DEDUP
    from verifiers.dedup import DedupStage
    from verifiers.execution import ExecutionStage
    from verifiers.mock_api import STAGE as EXECUTION

    stages = build_stages([EXECUTION, DEDUP])
    assert [type(stage) for stage in stages] == [ExecutionStage, DedupStage]
    assert [stage.name for stage in stages] == ["execution", "dedup"]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["format", "dedup", "format"], "stage 'format' is listed more than once; list each"),
        (
            ["format", "dedup", "execution"],
            "stage 'dedup' must come last (it compares the samples that passed every other "
            "stage); move it after 'execution'",
        ),
    ],
)
def test_stage_orders_that_cannot_run_say_what_to_change(names: list[str], message: str) -> None:
    with pytest.raises(ActionForgeError) as raised:
        check_stage_order(names)
    assert str(raised.value).startswith(message)


def test_stage_orders_that_can_run_pass() -> None:
    for names in ([], ["dedup"], ["format", "execution", "dedup"], ["execution", "format"]):
        check_stage_order(names)


def test_a_python_catalogs_context_holds_its_module_source() -> None:
    python_tool = Tool(
        name="add", source=ToolSource(kind="python", document="calc.py", callable="calc:add")
    )
    context = StageContext.for_catalog([python_tool, WEATHER], "def add(a, b): ...")
    assert context.modules == {"calc": "def add(a, b): ..."}
    assert StageContext.for_catalog([python_tool]).modules == {}
    assert StageContext.for_catalog([WEATHER], "text").modules == {}
