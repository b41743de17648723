"""The semantic judge through real backends: its decisions against a scripted OpenAI-compatible
server over real HTTP (logic), through the real vLLM CPU engine on the tiny model (plumbing), and
SmolLM2 served by vLLM reading whole conversations (a real instruct model's answers parse)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from llm_fixtures import VllmServer
from pet_conversations import added_id, deleted_then_shown, petstore_context, shown_again
from scripted_llm import Reply, scripted_llm_server, user_text
from smollm2_model import MODEL
from typer.testing import CliRunner

from llm.base import BackendConfig, BackendUnavailable, LLMBackend, load_backend
from llm.shared import close_shared_backends
from service.cli.app import app
from unified.formats import write_samples
from unified.model import QueryStyle, Sample, SampleMeta, Step, Tool, ToolCall
from verifiers.judge import VERDICT_SCHEMA, JudgeNotConfigured, SemanticJudge
from verifiers.stages import StageContext, build_stages, check_stage_options

WEATHER = Tool(
    name="get_weather",
    description="Current weather for a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
        "required": ["city"],
    },
)


def _sample(sample_id: str, query: str, calls: list[dict[str, Any]]) -> Sample:
    style = QueryStyle.irrelevance if not calls else QueryStyle.simple
    return Sample(
        id=sample_id,
        query=query,
        tools=[WEATHER],
        steps=[Step(tool_calls=[ToolCall(**call) for call in calls])] if calls else [],
        meta=SampleMeta(style=style),
    )


SAMPLES = [
    _sample(
        "right",
        "Weather in Lisbon please",
        [{"name": "get_weather", "arguments": {"city": "Lisbon"}}],
    ),
    _sample(
        "invented",
        "Weather in Lisbon please",
        [{"name": "get_weather", "arguments": {"city": "Lisbon", "unit": "kelvin"}}],
    ),
    _sample(
        "wrong_city",
        "How warm is it in Porto?",
        [{"name": "get_weather", "arguments": {"city": "Madrid"}}],
    ),
    _sample("no_call", "Write me a haiku about spring", []),
]


def _rule_based_judge(body: dict[str, Any]) -> Reply:
    """Pass when every string argument value appears in the query (read back from the prompt)."""
    prompt = user_text(body)
    query = prompt.split("User query:\n", 1)[1].split("\n", 1)[0]
    calls_text = prompt.split("Assistant's calls:\n", 1)[1].split("\n", 1)[0]
    calls = [] if calls_text == "(no call)" else json.loads(calls_text)
    invented = [
        value
        for call in calls
        for value in call["arguments"].values()
        if isinstance(value, str) and value.lower() not in query.lower()
    ]
    if invented:
        return Reply(json.dumps({"pass": False, "reason": f"invented: {', '.join(invented)}"}))
    return Reply(json.dumps({"pass": True, "reason": "every value comes from the query"}))


def _openai(base_url: str, **overrides: Any) -> LLMBackend:
    config = {"backend": "openai", "model": "scripted", "base_url": base_url, **overrides}
    return load_backend(BackendConfig(**config))


def test_judge_decisions_over_http() -> None:
    with scripted_llm_server(_rule_based_judge) as server:
        backend = _openai(server.base_url)
        try:
            verdicts = SemanticJudge(backend).judge(SAMPLES)
        finally:
            backend.close()
    assert [(v.accepted, v.reason) for v in verdicts] == [
        (True, None),
        (False, "judge_rejected"),
        (False, "judge_rejected"),
        (True, None),
    ]
    assert verdicts[1].detail == "invented: kelvin"
    assert verdicts[2].detail == "invented: Madrid"
    # Structured outputs: every request asks for the verdict schema.
    assert len(server.requests) == len(SAMPLES)
    for body in server.requests:
        assert body["response_format"]["json_schema"]["schema"] == VERDICT_SCHEMA


def test_bad_and_truncated_answers_reject_the_sample() -> None:
    replies = iter(
        [
            Reply("Looks good to me!"),
            Reply('{"pass": true, "reas', finish_reason="length"),
            Reply('{"pass": true, "reason": "fine"}'),
        ]
    )
    with scripted_llm_server(lambda body: next(replies)) as server:
        backend = _openai(server.base_url, max_concurrency=1)
        try:
            verdicts = SemanticJudge(backend).judge(SAMPLES[:3])
        finally:
            backend.close()
    assert [(v.accepted, v.reason) for v in verdicts] == [
        (False, "judge_unparseable"),
        (False, "judge_unparseable"),
        (True, None),
    ]


def test_unreachable_judge_raises_instead_of_passing() -> None:
    with scripted_llm_server(lambda body: Reply("overloaded", status=503)) as server:
        backend = _openai(server.base_url, max_retries=1, timeout_s=5)
        try:
            with pytest.raises(BackendUnavailable, match=re.escape(server.base_url)):
                SemanticJudge(backend).judge(SAMPLES[:1])
        finally:
            backend.close()


@pytest.mark.slow
@pytest.mark.llm
def test_judge_through_the_real_engine(vllm_engine_backend: LLMBackend) -> None:
    judged = [*SAMPLES, shown_again(), shown_again(added_id() + 17)]
    verdicts = SemanticJudge(vllm_engine_backend, max_tokens=400).judge(judged, petstore_context())
    assert len(verdicts) == len(judged)
    for verdict in verdicts:
        assert verdict.stage == "semantic"
        # Structured outputs keep even a random model's answer inside the verdict schema; only
        # running out of tokens can make it unparseable.
        assert verdict.accepted or verdict.reason in {"judge_rejected", "judge_unparseable"}
    assert any(v.reason != "judge_unparseable" for v in verdicts)


def test_semantic_stage_asks_the_jobs_judge() -> None:
    (stage,) = build_stages(["semantic"])
    with scripted_llm_server(_rule_based_judge) as server:
        judge = BackendConfig(backend="openai", model="scripted", base_url=server.base_url)
        try:
            context = StageContext(tools=[WEATHER])
            context.options["semantic"] = check_stage_options("semantic", {"judge": judge})
            result = stage.verify_batch(SAMPLES, context)
        finally:
            close_shared_backends()
    assert [v.accepted for v in result] == [True, False, False, True]


def test_semantic_stage_without_a_judge_says_what_to_give() -> None:
    (stage,) = build_stages(["semantic"])
    with pytest.raises(JudgeNotConfigured, match="give the job a 'judge'"):
        stage.verify_batch(SAMPLES, StageContext(tools=[WEATHER]))


def test_verify_command_runs_the_judge_on_a_file(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    with rows.open("wb") as sink:
        write_samples(SAMPLES, sink, "unified")
    out = tmp_path / "verdicts.jsonl"
    with scripted_llm_server(_rule_based_judge) as server:
        judge = json.dumps({"backend": "openai", "model": "scripted", "base_url": server.base_url})
        try:
            result = CliRunner().invoke(
                app,
                ["verify", str(rows), "--from", "unified", "--stages", "format,semantic",
                 "--judge", judge, "--out", str(out)],
            )  # fmt: skip
        finally:
            close_shared_backends()
    assert result.exit_code == 0, result.stderr
    verdicts = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(v["stage"], v["accepted"]) for v in verdicts] == [
        ("semantic", True),
        ("semantic", False),
        ("semantic", False),
        ("semantic", True),
    ]


def test_verify_command_names_a_bad_judge_option(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    with rows.open("wb") as sink:
        write_samples(SAMPLES, sink, "unified")
    runner = CliRunner()
    common = ["verify", str(rows), "--from", "unified", "--stages", "semantic", "--out",
              str(tmp_path / "v.jsonl")]  # fmt: skip
    result = runner.invoke(app, [*common, "--judge", "{model: x}"])
    assert result.exit_code == 2
    assert " ".join(result.stderr.split()).startswith("error: --judge: not JSON")
    result = runner.invoke(app, [*common, "--judge", '{"backend": "openai"}'])
    assert result.exit_code == 2
    assert " ".join(result.stderr.split()) == "error: --judge: model: Field required"
    result = runner.invoke(app, common)
    assert result.exit_code == 2
    assert "the semantic stage needs a judge model" in result.stderr


TURN = re.compile(
    r"Turn (\d+), user:\n(.*?)\n\nTurn \1, assistant's calls:\n(.*?)\n\n"
    r"(?:Turn \1, results of the calls:\n(.*?)\n\n)?",
    re.DOTALL,
)


def _dialogue_judge(body: dict[str, Any]) -> Reply:
    """Pass when each turn's argument values are in the user's messages so far or the results
    before it (read back from the prompt's turns)."""
    seen = ""
    for number, message, calls, results in TURN.findall(user_text(body)):
        seen += message
        for call in [] if calls == "(no call)" else json.loads(calls):
            for value in call["arguments"].values():
                if str(value) not in seen:
                    reason = f"turn {number}: {value} comes from nowhere"
                    return Reply(json.dumps({"reason": reason, "pass": False}))
        seen += results
    return Reply(json.dumps({"reason": "every value was said or returned before", "pass": True}))


def _semantic_context(base_url: str, model: str = "scripted") -> StageContext:
    context = petstore_context()
    judge = BackendConfig(backend="openai", model=model, base_url=base_url)
    context.options["semantic"] = check_stage_options("semantic", {"judge": judge})
    return context


def test_the_judge_reads_the_whole_dialogue() -> None:
    invented = added_id() + 17
    (stage,) = build_stages(["semantic"])
    with scripted_llm_server(_dialogue_judge) as server:
        try:
            verdicts = stage.verify_batch(
                [shown_again(), shown_again(invented)], _semantic_context(server.base_url)
            )
        finally:
            close_shared_backends()
    assert [(v.accepted, v.reason, v.detail) for v in verdicts] == [
        (True, None, "every value was said or returned before"),
        (False, "judge_rejected", f"turn 2: {invented} comes from nowhere"),
    ]
    assert [len(TURN.findall(user_text(body))) for body in server.requests] == [2, 2]


def test_a_template_of_ones_own_without_turns_judges_single_turns_only(tmp_path: Path) -> None:
    template = tmp_path / "judge.j2"
    template.write_text("User query:\n{{ query }}\nAssistant's calls:\n{{ calls | json }}\n")
    with scripted_llm_server(_rule_based_judge) as server:
        backend = _openai(server.base_url)
        try:
            verdicts = SemanticJudge(backend, template_path=template).judge(
                [SAMPLES[0], shown_again()], petstore_context()
            )
        finally:
            backend.close()
    assert [(v.accepted, v.reason) for v in verdicts] == [
        (True, None),
        (False, "multi_turn_not_judged"),
    ]
    assert verdicts[1].detail is not None
    assert verdicts[1].detail.startswith(f"{template} does not use the variable 'turns'")
    assert len(server.requests) == 1


@pytest.mark.slow
@pytest.mark.llm
def test_smollm2_reads_conversations_and_answers_a_verdict(smollm2_server: VllmServer) -> None:
    """SmolLM2-135M is far too small to be trusted as a judge (it fails calibration, see
    tests/integration/test_smollm2_job.py); here it shows that a real instruct model served by
    vLLM reads the dialogue prompt within its context and answers a verdict that parses."""
    conversations = [shown_again(), shown_again(added_id() + 17), deleted_then_shown()]
    (stage,) = build_stages(["semantic"])
    try:
        verdicts = stage.verify_batch(
            conversations, _semantic_context(smollm2_server.base_url, MODEL.served_name)
        )
    finally:
        close_shared_backends()
    for sample, verdict in zip(conversations, verdicts, strict=True):
        print(f"\nSmolLM2 on {sample.id} ({len(sample.turns) + 1} turns): {verdict}")
    assert [v.reason for v in verdicts if v.reason not in (None, "judge_rejected")] == []
