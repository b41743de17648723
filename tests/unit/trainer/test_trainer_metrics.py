"""Tool-call metrics on hand-computed cases: parsing answers, scoring them, comparing reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from trainer.evaluate import (
    METRICS,
    Counts,
    EvalReport,
    compare,
    judge,
    parse_calls,
    score,
)
from unified.formats import read_samples
from unified.model import Acceptable, QueryStyle, Sample, SampleMeta, Step, Tool, ToolCall
from verifiers.format import FormatVerifier

WEATHER = Tool(
    name="get_weather",
    parameters={
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
    },
)
CONVERT = Tool(
    name="convert_currency",
    parameters={
        "type": "object",
        "properties": {
            "amount": {"type": "number"},
            "from": {"type": "string"},
            "to": {"type": "string"},
        },
        "required": ["amount", "from", "to"],
    },
)
TOOLS = [WEATHER, CONVERT]


def calls_sample(
    sample_id: str, style: QueryStyle, *calls: tuple[str, dict[str, object]]
) -> Sample:
    return Sample(
        id=sample_id,
        query="...",
        tools=TOOLS,
        steps=[Step(tool_calls=[ToolCall(name=n, arguments=a) for n, a in calls])],
        meta=SampleMeta(style=style),
    )


def refusal_sample(sample_id: str) -> Sample:
    return Sample(
        id=sample_id,
        query="Book me a train.",
        tools=TOOLS,
        steps=[Step(answer="I cannot do that.")],
        meta=SampleMeta(style=QueryStyle.irrelevance),
    )


# Six samples, each answer chosen to hit one case; the expected numbers are counted by hand.
REFERENCES = [
    # A: parallel calls, answered in the other order with text around: every metric right.
    calls_sample(
        "A",
        QueryStyle.parallel,
        ("get_weather", {"city": "Oslo", "unit": "celsius"}),
        ("get_weather", {"city": "Rome"}),
    ),
    # B: irrelevance, answered in plain text: a correct refusal.
    refusal_sample("B"),
    # C: right tool, one argument value wrong: name right, call wrong, format passes.
    calls_sample(
        "C", QueryStyle.simple, ("convert_currency", {"amount": 5, "from": "EUR", "to": "USD"})
    ),
    # D: wrong tool name (unknown to the sample): everything wrong, format fails.
    calls_sample("D", QueryStyle.simple, ("get_weather", {"city": "Paris"})),
    # E: answer cut off mid-JSON: unparseable, everything wrong.
    calls_sample(
        "E",
        QueryStyle.multiple,
        ("convert_currency", {"amount": 1.5, "from": "GBP", "to": "JPY"}),
    ),
    # F: irrelevance, but the model calls a tool: a wrong refusal.
    refusal_sample("F"),
]
ANSWERS = [
    'Sure. [{"name": "get_weather", "arguments": {"city": "Rome"}}, '
    '{"name": "get_weather", "arguments": {"unit": "celsius", "city": "Oslo"}}] Done.',
    "Sorry, none of my tools can book trains.",
    '[{"name": "convert_currency", "arguments": {"amount": 5.0, "from": "EUR", "to": "GBP"}}]',
    '[{"name": "get_forecast", "arguments": {"city": "Paris"}}]',
    '[{"name": "convert_currency", "arguments": {"amount": 1.5, "from": "GB',
    '[{"name": "get_weather", "arguments": {"city": "Berlin"}}]',
]


def test_the_hand_computed_case_overall() -> None:
    overall = score(ANSWERS, REFERENCES).overall
    assert overall == Counts(
        samples=6,
        call_samples=4,  # A C D E
        tool_name_correct=2,  # A C
        exact_correct=1,  # A
        format_pass=2,  # A C (a wrong value can still fit the schema)
        irrelevance_samples=2,  # B F
        irrelevance_correct=1,  # B
        unparseable=1,  # E
    )
    assert overall.tool_name_accuracy == pytest.approx(2 / 4)
    assert overall.exact_call_accuracy == pytest.approx(1 / 4)
    assert overall.format_pass_rate == pytest.approx(2 / 4)
    assert overall.irrelevance_accuracy == pytest.approx(1 / 2)
    assert overall.accuracy == pytest.approx((1 + 1) / 6)


def test_the_hand_computed_case_per_style() -> None:
    report = score(ANSWERS, REFERENCES)
    assert [group for group, _ in report.groups()] == [
        "overall",
        "simple",
        "multiple",
        "parallel",
        "irrelevance",
    ]
    simple = report.by_style["simple"]
    assert (simple.samples, simple.tool_name_correct, simple.exact_correct, simple.format_pass) == (
        2,
        1,
        0,
        1,
    )
    assert simple.irrelevance_accuracy is None  # no irrelevance sample in this group
    assert report.by_style["parallel"].rates() == {
        "accuracy": 1.0,
        "tool_name_accuracy": 1.0,
        "exact_call_accuracy": 1.0,
        "irrelevance_accuracy": None,
        "format_pass_rate": 1.0,
        "turn_accuracy": None,  # no conversation in this group
        "conversation_accuracy": None,
    }
    assert report.by_style["multiple"].unparseable == 1
    assert report.by_style["multiple"].accuracy == 0.0
    irrelevance = report.by_style["irrelevance"]
    assert (irrelevance.irrelevance_samples, irrelevance.irrelevance_correct) == (2, 1)
    assert irrelevance.tool_name_accuracy is None


def test_each_case_judged_alone() -> None:
    verifier = FormatVerifier()
    judged = [judge(a, r, verifier) for a, r in zip(ANSWERS, REFERENCES, strict=True)]
    a, b, c, d, e, f = judged
    assert a.exact_match and a.tool_names_match and a.format_pass
    assert b.correct_refusal and not b.expects_call
    assert c.tool_names_match and not c.exact_match and c.format_pass
    assert not d.tool_names_match and not d.exact_match and not d.format_pass
    assert e.unparseable and not e.format_pass and not e.correct_refusal
    assert not f.correct_refusal


def test_values_are_compared_after_json_normalisation() -> None:
    reference = calls_sample(
        "N", QueryStyle.simple, ("convert_currency", {"amount": 3, "from": "EUR", "to": "USD"})
    )
    verifier = FormatVerifier()
    arguments = json.dumps(json.dumps({"to": "USD", "from": "EUR", "amount": 3.0}))
    same = f'[{{"name": "convert_currency", "arguments": {arguments}}}]'  # arguments as JSON text
    assert judge(same, reference, verifier).exact_match
    assert not judge(same.replace("3.0", "3.5"), reference, verifier).exact_match
    as_text = (
        '[{"name": "convert_currency", "arguments": {"amount": "3", "from": "EUR", "to": "USD"}}]'
    )
    assert not judge(as_text, reference, verifier).exact_match  # "3" is not 3


def test_a_missing_or_extra_parallel_call_is_not_exact() -> None:
    reference = REFERENCES[0]
    verifier = FormatVerifier()
    one = '[{"name": "get_weather", "arguments": {"city": "Rome"}}]'
    judged = judge(one, reference, verifier)
    assert not judged.exact_match and not judged.tool_names_match and judged.format_pass
    three = ANSWERS[0].replace("Done.", "") + ' [{"name": "get_weather", "arguments": {}}]'
    assert judge(three, reference, verifier).exact_match  # only the first JSON list is read


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('[{"name": "a", "arguments": {"x": 1}}]', ["a"]),
        ('{"name": "a", "arguments": {"x": 1}}', ["a"]),
        ('{"name": "a", "parameters": {"x": 1}}', ["a"]),
        (
            '{"tool_calls": [{"type": "function", "function": {"name": "b", "arguments": "{}"}}]}',
            ["b"],
        ),
        (
            '```json\n[{"name": "a", "arguments": {}}, {"name": "b", "arguments": {}}]\n```',
            ["a", "b"],
        ),
        ('I will call {"x": 1} then [{"name": "c", "arguments": {}}]', ["c"]),
        (
            '<tool_call>\n{"name": "a", "arguments": {"x": 1}}\n</tool_call>\n'
            '<tool_call>\n{"name": "b", "arguments": {}}\n</tool_call>',
            ["a", "b"],
        ),
        ('{"tool_calls": []}', []),
        ("[]", []),
        ("The weather is fine {and} sunny.", []),
        ("", []),
    ],
)
def test_parse_reads_calls_in_many_shapes(text: str, names: list[str]) -> None:
    parsed = parse_calls(text)
    assert [call.name for call in parsed.calls] == names
    assert parsed.error is None


def test_parse_keeps_arguments_that_are_not_an_object_for_the_format_check() -> None:
    parsed = parse_calls('[{"name": "get_weather", "arguments": ["Oslo"]}]')
    assert parsed.calls[0].arguments == '["Oslo"]'
    reference = calls_sample("X", QueryStyle.simple, ("get_weather", {"city": "Oslo"}))
    judged = judge(parsed, reference, FormatVerifier())
    assert judged.tool_names_match and not judged.format_pass and not judged.exact_match


@pytest.mark.parametrize(
    "text",
    [
        '[{"name": "get_weather", "arguments": {"city": ',
        '{"name" get_weather}',
        '[{"tool": "get_weather"}]',
    ],
)
def test_an_attempted_call_that_cannot_be_read_is_unparseable(text: str) -> None:
    parsed = parse_calls(text)
    assert parsed.calls == [] and parsed.error is not None


def test_answers_and_references_must_line_up() -> None:
    with pytest.raises(ValueError, match="2 answers for 1 reference samples"):
        score(["", ""], REFERENCES[:1])


def test_an_unstyled_sample_is_grouped_as_unknown() -> None:
    sample = REFERENCES[0].model_copy(update={"meta": SampleMeta()})
    assert list(score([ANSWERS[0]], [sample]).by_style) == ["unknown"]


def test_compare_lines_up_every_metric_of_every_group() -> None:
    before = score(["", "", "", "", "", ""], REFERENCES)  # no calls at all
    after = score(ANSWERS, REFERENCES)
    deltas = compare(before, after)
    assert len(deltas) == 5 * len(METRICS)
    by_key = {(d.group, d.metric): d for d in deltas}
    exact = by_key[("overall", "exact_call_accuracy")]
    assert (exact.before, exact.after, exact.change) == (0.0, 0.25, 0.25)
    refusal = by_key[("overall", "irrelevance_accuracy")]
    assert (refusal.before, refusal.after, refusal.change) == (1.0, 0.5, -0.5)
    assert by_key[("simple", "irrelevance_accuracy")].change is None


def test_compare_keeps_groups_found_in_one_report_only() -> None:
    before = score([ANSWERS[1]], [REFERENCES[1]])
    after = score([ANSWERS[0]], [REFERENCES[0]])
    groups = {d.group for d in compare(before, after)}
    assert groups == {"overall", "parallel", "irrelevance"}
    parallel = next(
        d for d in compare(before, after) if d.group == "parallel" and d.metric == "accuracy"
    )
    assert (parallel.before, parallel.after) == (None, 1.0)


def test_a_report_survives_its_json_form() -> None:
    report = score(ANSWERS, REFERENCES)
    data = report.to_dict()
    assert data["overall"]["exact_call_accuracy"] == 0.25
    assert EvalReport.from_dict(data) == report


BFCL_DATA = Path(__file__).resolve().parents[2] / "data" / "formats"


def bfcl_references(name: str) -> dict[str, Sample]:
    with read_samples(
        BFCL_DATA / f"bfcl_{name}_questions.jsonl",
        "bfcl",
        answers=BFCL_DATA / f"bfcl_{name}_possible_answers.jsonl",
    ) as reader:
        return {sample.id: sample for sample in reader}


@pytest.mark.parametrize(
    ("arguments", "right"),
    [
        ({"base": 10, "height": 5}, True),  # the optional unit left out, as BFCL allows
        ({"base": 10, "height": 5, "unit": "Units"}, True),  # case ignored
        ({"base": 10, "height": 5, "unit": "units"}, True),
        ({"base": 10.0, "height": 5}, False),  # a float for an integer: BFCL's type_error
        ({"base": 10, "height": 6}, False),
        ({"base": 10}, False),  # a required argument missing
        ({"base": 10, "height": 5, "colour": "red"}, False),  # not in the possible answer
    ],
)
def test_a_bfcl_reference_is_judged_by_bfcls_rules(arguments: dict[str, Any], right: bool) -> None:
    reference = bfcl_references("simple")["simple_0"]
    answer = json.dumps([{"name": "calculate_triangle_area", "arguments": arguments}])
    assert judge(answer, reference, FormatVerifier()).exact_match is right


def test_bfcl_parallel_calls_match_in_any_order() -> None:
    reference = next(iter(bfcl_references("parallel_multiple").values()))
    calls = [call.model_dump() for call in reversed(reference.tool_calls())]
    answer = json.dumps([{"name": c["name"], "arguments": c["arguments"]} for c in calls])
    assert judge(answer, reference, FormatVerifier()).exact_match
    assert not judge(json.dumps(calls[:-1]), reference, FormatVerifier()).exact_match


@pytest.mark.parametrize(
    ("arguments", "right"),
    [
        ({"city": "Oslo"}, True),
        ({"city": "oslo "}, True),  # BFCL's string rule: case and ` ,./-_*^` ignored
        ({"city": "Oslo", "unit": "celsius"}, False),  # an argument the answer does not give
        ({"city": "Bergen"}, False),
        ({}, False),  # the required city missing
    ],
)
def test_a_generated_reference_accepts_its_one_answer_by_bfcls_rules(
    arguments: dict[str, Any], right: bool
) -> None:
    reference = calls_sample("G", QueryStyle.simple, ("get_weather", {"city": "Oslo"}))
    assert reference.tool_calls()[0].acceptable is None
    answer = json.dumps([{"name": "get_weather", "arguments": arguments}])
    assert judge(answer, reference, FormatVerifier()).exact_match is right


def test_a_float_is_never_right_for_an_integer() -> None:
    count = Tool(
        name="count",
        parameters={
            "type": "object",
            "properties": {"n": {"type": "integer"}},
            "required": ["n"],
        },
    )
    reference = Sample(
        id="I",
        query="Count to 3.",
        tools=[count],
        steps=[Step(tool_calls=[ToolCall(name="count", arguments={"n": 3})])],
    )
    verifier = FormatVerifier()
    assert judge('[{"name": "count", "arguments": {"n": 3}}]', reference, verifier).exact_match
    assert not judge(
        '[{"name": "count", "arguments": {"n": 3.0}}]', reference, verifier
    ).exact_match


@pytest.mark.parametrize(
    ("arguments", "right"),
    [
        ({"amount": 5, "from": "EUR", "to": "USD"}, True),
        ({"amount": 5, "from": "euro", "to": "US dollar"}, True),  # listed alternatives
        ({"amount": 5.0, "from": "EUR", "to": "USD"}, True),  # a number may be written as float
        ({"amount": 5, "from": "EUR", "to": "GBP"}, False),
    ],
)
def test_acceptable_values_written_in_the_unified_format_are_honoured(
    arguments: dict[str, Any], right: bool
) -> None:
    call = ToolCall(
        name="convert_currency",
        arguments={"amount": 5, "from": "EUR", "to": "USD"},
        acceptable={
            "amount": Acceptable(values=[5]),
            "from": Acceptable(values=["EUR", "euro"]),
            "to": Acceptable(values=["USD", "US dollar"]),
        },
    )
    reference = Sample(
        id="U", query="5 euro in dollars?", tools=TOOLS, steps=[Step(tool_calls=[call])]
    )
    answer = json.dumps([{"name": "convert_currency", "arguments": arguments}])
    assert judge(answer, reference, FormatVerifier()).exact_match is right
