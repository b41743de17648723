"""The LLM generator's own logic with a scripted backend: one backend call per batch, samples of
every style from schema-fitting answers, the template generator's style draws, failed outputs
marked for the verifiers, options and their errors, usage, and the process's shared backend.
The same generator against real vLLM: tests/llm/test_llm_generator.py."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from llm_scripted_backend import ScriptedBackend, fitting, user_text

import llm.shared as shared
from generators import GENERATORS
from generators.base import GenerationRequest
from generators.errors import GenerationError
from generators.llm.generator import LlmGenerator, read_options, split_count
from generators.template.generator import TemplateGenerator
from llm.base import BackendConfig, LLMRequest, LLMResult
from llm.output import (
    BACKEND_ERROR,
    TRUNCATED,
    UNPARSEABLE,
    generation_failure,
)
from llm.shared import close_shared_backends, shared_backend
from service.pipeline.tool_api import MockToolApi
from unified.catalogs import load_catalog
from unified.model import QueryStyle, Sample, Tool
from verifiers import FormatVerifier

ROOT = Path(__file__).resolve().parents[3]
TRAVEL = load_catalog(ROOT / "examples" / "travel_api.yaml").tools
EVERY_STYLE = {style: 1.0 for style in QueryStyle}
SINGLE_TURN = {style: 1.0 for style in QueryStyle if style is not QueryStyle.multi_turn}
"""Every style whose sample is one request: their batch is one backend call."""
CREATED = "2026-01-31T12:00:00+00:00"


def options(**more: Any) -> dict[str, Any]:
    return {"model": "scripted-model", "created": CREATED, **more}


def generate(
    n: int = 24, backend: ScriptedBackend | None = None, seed: int = 3, **more: Any
) -> tuple[list[Sample], ScriptedBackend]:
    backend = backend or ScriptedBackend()
    styles = more.pop("styles", EVERY_STYLE)
    request = GenerationRequest(
        n=n, seed=seed, styles=styles, id_prefix="b-", options=options(**more)
    )
    return LlmGenerator(backend=backend, tool_api=MockToolApi).generate(TRAVEL, request), backend


def test_the_registry_knows_the_llm_generator() -> None:
    assert GENERATORS.get("llm") is LlmGenerator


def test_every_request_of_a_batch_goes_in_one_backend_call() -> None:
    samples, backend = generate(n=24, styles=SINGLE_TURN)
    assert len(backend.batches) == 1 and len(backend.batches[0]) == 24
    assert [s.id for s in samples] == [f"b-{i}" for i in range(24)]


def test_samples_of_every_style_pass_the_format_verifier() -> None:
    samples, _ = generate(n=60)
    verifier = FormatVerifier()
    assert {s.meta.style for s in samples} == set(QueryStyle)
    for sample in samples:
        assert verifier.verify(sample).accepted, sample.id
        assert generation_failure(sample) is None
        assert sample.meta.generator == "llm" and sample.meta.seed == 3
        assert sample.meta.created == datetime(2026, 1, 31, 12, tzinfo=UTC)
        assert sample.meta.extra["model"] == "scripted-model"
        assert sample.meta.extra["backend"] == "vllm"
        # the scripted backend counts 100 prompt tokens a request: a conversation sums its own
        requests = 1 + sample.meta.extra.get("dialogue", {}).get("requests", 0)
        assert sample.meta.extra["prompt_tokens"] == 100 * requests
        assert sample.query


def test_function_calling_samples_have_instructions_tools_and_calls_of_their_style() -> None:
    samples, backend = generate(n=60)
    for sample, request in zip(samples, backend.batches[0], strict=True):
        if sample.meta.style is QueryStyle.instruction:
            continue
        assert sample.task_instruction.startswith("You are an expert in composing function calls")
        assert "tool_calls" in sample.format_instruction
        shown = {tool.name for tool in sample.tools}
        assert shown and all(f'"name": "{name}"' in user_text(request) for name in shown)
        calls = sample.tool_calls()
        assert {call.name for call in calls} <= shown
        if sample.meta.style is QueryStyle.irrelevance:
            assert not calls and sample.final_answer()
            assert request.json_schema["properties"]["calls"]["maxItems"] == 0
        elif sample.meta.style in (QueryStyle.simple, QueryStyle.multiple):
            assert len(calls) == 1
        elif sample.meta.style is QueryStyle.parallel:
            assert len(calls) >= 2 and len({call.name for call in calls}) == 1
        elif sample.meta.style is QueryStyle.multi_turn:
            assert sample.turns and len(calls) >= 2  # a blueprint plans 2 or 3 turns of calls
        else:
            assert len({call.name for call in calls}) >= 2


def test_instruction_samples_state_their_constraints_and_record_them() -> None:
    samples, backend = generate(n=12, styles={QueryStyle.instruction: 1.0})
    for sample, request in zip(samples, backend.batches[0], strict=True):
        constraints = sample.meta.extra["constraints"]
        assert 1 <= len(constraints) <= 2
        assert sample.meta.style is QueryStyle.instruction
        assert not sample.tools and not sample.task_instruction and not sample.format_instruction
        assert sample.query.startswith(sample.meta.extra["instruction"])
        for constraint in constraints:
            assert constraint["text"] in sample.query and constraint["text"] in user_text(request)
        assert sample.final_answer() == "response text " + sample.final_answer().split()[-1]
        assert set(request.json_schema["required"]) == {"instruction", "response"}


def test_styles_and_tools_are_drawn_as_the_template_generator_draws_them() -> None:
    request = GenerationRequest(n=40, seed=8, options=options())
    llm_samples = LlmGenerator(backend=ScriptedBackend()).generate(TRAVEL, request)
    template_samples = TemplateGenerator().generate(
        TRAVEL, GenerationRequest(n=40, seed=8, options={"created": CREATED})
    )
    for llm, template in zip(llm_samples, template_samples, strict=True):
        assert llm.meta.extra["requested_style"] == template.meta.extra["requested_style"]
        assert [t.name for t in llm.tools] == [t.name for t in template.tools]


def test_the_same_request_sends_the_same_prompts_and_gives_the_same_samples() -> None:
    first, backend = generate(n=30, augment=["tool_order", "rephrase"])
    again, backend_again = generate(n=30, augment=["tool_order", "rephrase"])
    assert [s.to_json() for s in first] == [s.to_json() for s in again]
    assert backend.batches == backend_again.batches
    seeds = [request.seed for request in backend.batches[0]]
    assert len(set(seeds)) == len(seeds) and all(0 <= s < 2**31 for s in seeds)
    other, _ = generate(n=30, seed=4, augment=["tool_order", "rephrase"])
    assert [s.to_json() for s in other] != [s.to_json() for s in first]


def scripted_failures(request: LLMRequest, index: int) -> LLMResult:
    """Index 0: cut at max_tokens; 1: failed in the backend; 2: not JSON; 3: not an object;
    4: calls not a list; 5: a call without a name; the rest fit."""
    failures = [
        LLMResult(text='{"query": "Weather in', finish_reason="length", completion_tokens=7),
        LLMResult(text="", finish_reason="error", error="prompt too long"),
        LLMResult(text="Sure! Here is the JSON", finish_reason="stop"),
        LLMResult(text='["query"]', finish_reason="stop"),
        LLMResult(text='{"query": "q", "calls": {"name": "x"}}', finish_reason="stop"),
        LLMResult(text='{"query": "q", "calls": [{"arguments": {}}]}', finish_reason="stop"),
    ]
    return failures[index] if index < len(failures) else fitting(request, index)


def test_failed_outputs_are_marked_for_the_verifiers_and_counted() -> None:
    backend = ScriptedBackend(scripted_failures)
    generator = LlmGenerator(backend=backend)
    request = GenerationRequest(n=10, seed=1, id_prefix="f-", options=options(max_tokens=64))
    samples, usage = generator.generate_with_usage(TRAVEL, request)
    kinds = [generation_failure(s)[0] if generation_failure(s) else None for s in samples]
    assert kinds[:6] == [TRUNCATED, BACKEND_ERROR] + [UNPARSEABLE] * 4
    assert kinds[6:] == [None] * 4
    assert usage.failures == {TRUNCATED: 1, BACKEND_ERROR: 1, UNPARSEABLE: 4}
    truncated = samples[0]
    assert not truncated.steps and truncated.query == ""
    assert "max_tokens=64" in generation_failure(truncated)[1]
    assert truncated.meta.extra["raw_output"] == '{"query": "Weather in'
    assert generation_failure(samples[1]) == (BACKEND_ERROR, "prompt too long")
    assert "not JSON" in generation_failure(samples[2])[1]
    assert len(samples) == 10 and [s.id for s in samples] == [f"f-{i}" for i in range(10)]


def test_arguments_that_are_not_an_object_reach_the_format_verifier_as_text() -> None:
    def reply(request: LLMRequest, index: int) -> LLMResult:
        text = '{"query": "q", "calls": [{"name": "get_weather", "arguments": [1, 2]}]}'
        return LLMResult(text=text, finish_reason="stop")

    samples, _ = generate(n=1, backend=ScriptedBackend(reply), styles={QueryStyle.simple: 1})
    (call,) = samples[0].tool_calls()
    assert call.arguments == "[1,2]"
    assert FormatVerifier().verify(samples[0]).reason == "arguments_not_json"


def test_usage_counts_requests_tokens_and_samples() -> None:
    generator = LlmGenerator(backend=ScriptedBackend())
    request = GenerationRequest(n=10, options=options(augment=["rephrase"], augment_share=0.3))
    samples, usage = generator.generate_with_usage(TRAVEL, request)
    assert (len(samples), usage.samples, usage.requests) == (10, 10, 10)
    assert usage.prompt_tokens == 1000 and usage.completion_tokens == 200
    assert usage.wall_s >= 0 and generator.last_usage == usage
    generator.generate(TRAVEL, GenerationRequest(n=3, options=options()))
    assert generator.last_usage is not None and generator.last_usage.requests == 3


def test_callers_examples_go_into_the_prompts_of_their_style() -> None:
    own = Sample(
        id="old-1",
        tools=[TRAVEL[0]],
        query="A QUERY FROM AN EARLIER JOB",
        steps=[],
        meta={"style": "irrelevance"},
    )
    rows = [own.model_dump(mode="json")]
    _, backend = generate(n=20, examples=rows, num_examples=1)
    for request in backend.batches[0]:
        irrelevance = (
            request.json_schema.get("properties", {}).get("calls", {}).get("maxItems") == 0
        )
        assert ("A QUERY FROM AN EARLIER JOB" in user_text(request)) == irrelevance
    with pytest.raises(GenerationError, match=r"option 'examples' item 0: query: "):
        generate(n=2, examples=[{"id": "x"}])


def test_no_examples_leave_the_examples_out() -> None:
    _, backend = generate(n=6, num_examples=0)
    assert all("Examples of" not in user_text(request) for request in backend.batches[0])


def test_output_limits_reach_the_schemas() -> None:
    _, backend = generate(n=10, max_query_chars=77, max_calls=5, styles={QueryStyle.parallel: 1})
    for request in backend.batches[0]:
        assert request.json_schema["properties"]["query"]["maxLength"] == 77
        assert request.json_schema["properties"]["calls"]["maxItems"] == 5
        assert request.max_tokens == 1024 and request.temperature == 0.7


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({}, "option 'model' is required (Model name or local path.)"),
        ({"model": "m", "temprature": 1}, "unknown option 'temprature'; known options: "),
        ({"model": "m", "augment": ["shuffle"]}, "unknown augmentation 'shuffle'; known: "),
        ({"model": "m", "max_tokens": "many"}, "option 'max_tokens': Input should be"),
        ({"model": "m", "augment_share": 1.5}, "option 'augment_share': Input should be less"),
    ],
)
def test_bad_options_are_refused_with_the_option_named(given: dict[str, Any], message: str) -> None:
    with pytest.raises(GenerationError, match=r"^llm generator: ") as caught:
        read_options(given)
    assert message in str(caught.value)


def test_bad_style_weights_and_empty_catalogs_are_refused() -> None:
    generator = LlmGenerator(backend=ScriptedBackend())
    with pytest.raises(GenerationError, match="style weights must be zero or more"):
        generator.generate(TRAVEL, GenerationRequest(n=1, styles={"simple": -1}, options=options()))
    with pytest.raises(GenerationError, match="at least one style a weight above zero"):
        generator.generate(TRAVEL, GenerationRequest(n=1, styles={"simple": 0}, options=options()))
    with pytest.raises(GenerationError, match="the catalog has no tools"):
        generator.generate([], GenerationRequest(n=1, options=options()))
    only_instructions = GenerationRequest(n=3, styles={"instruction": 1}, options=options())
    assert len(generator.generate([], only_instructions)) == 3


def test_children_take_a_share_of_the_batch_which_never_grows() -> None:
    chosen = read_options(options(augment=["tool_order"], augment_share=0.25))
    assert split_count(1, chosen) == (1, 0)
    assert split_count(10, chosen) == (8, 2)
    assert split_count(3, read_options(options(augment=["rephrase"], augment_share=0.9))) == (1, 2)
    assert split_count(10, read_options(options())) == (10, 0)
    samples, backend = generate(
        n=17, augment=["tool_order", "rephrase"], augment_share=0.4, styles=SINGLE_TURN
    )
    assert len(samples) == 17
    assert sum(s.meta.parent_id is None for s in samples) == 11
    assert [len(batch) for batch in backend.batches] == [11, 3]  # 3 of 6 children rephrase


class Recorded:
    """A backend class for `load_backend` that records its configs and closings."""

    made: ClassVar[list[Recorded]] = []

    def __init__(self, config: BackendConfig) -> None:
        self.config = config
        self.name = config.backend
        self.closed = False
        Recorded.made.append(self)

    def generate(self, requests: list[LLMRequest]) -> list[LLMResult]:
        return [fitting(request, index) for index, request in enumerate(requests)]

    def close(self) -> None:
        self.closed = True


def test_the_backend_is_loaded_once_per_process_and_configuration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    Recorded.made = []
    monkeypatch.setattr(shared, "load_backend", Recorded)
    try:
        request = GenerationRequest(n=2, options=options())
        LlmGenerator().generate(TRAVEL, request)
        LlmGenerator().generate(TRAVEL, request)
        assert len(Recorded.made) == 1
        first = Recorded.made[0]
        assert first.config == BackendConfig(model="scripted-model")
        # A judge on another model is held beside the generator's, not instead of it.
        other = shared_backend(BackendConfig(model="another"))
        assert shared_backend(BackendConfig(model="scripted-model")) is first
        assert shared_backend(BackendConfig(model="another")) is other
        assert not first.closed and not other.closed
    finally:
        close_shared_backends()
    assert len(Recorded.made) == 2
    assert all(made.closed for made in Recorded.made)


def test_a_tool_copy_per_sample_shares_nothing_with_the_catalog() -> None:
    samples, _ = generate(n=8)
    samples[0].tools[0].parameters["properties"] = {}
    assert all(tool.parameters.get("properties") for tool in TRAVEL if tool.parameters)
    assert isinstance(samples[0].tools[0], Tool)
