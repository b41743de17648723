"""The LLM generator against real vLLM on the tiny random model: job-like batches of every
query style (and instruction following), with every augmentation, through the in-process engine
and through the OpenAI-compatible server. The model writes nonsense, but the output schemas
force it into each style's shape, so every sample must pass the format verifier unless its
generation is marked as failed (truncated). A multi_turn conversation of such a model rarely
makes its blueprint's calls: it may be marked as not following it (its calls still pass the
format verifier), or end on a history too long for the model's context."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from generators.base import GenerationRequest
from generators.llm.augment import AUGMENTATIONS
from generators.llm.generator import LlmGenerator, read_options, split_count
from llm.base import LLMBackend
from llm.output import (
    BLUEPRINT_NOT_FOLLOWED,
    PROMPT_TOO_LONG,
    TRUNCATED,
    generation_failure,
)
from llm.shared import close_shared_backends
from service.pipeline.tool_api import MockToolApi
from unified.catalogs import load_catalog
from unified.model import QueryStyle, Sample
from verifiers import FormatVerifier

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# Three small tools: the tiny model's byte-level vocabulary makes every prompt token-hungry,
# and its context is 2048 tokens.
TOOLS = load_catalog(ROOT / "tests" / "data" / "functions" / "xlam_tools.json").tools
EVERY_STYLE = {style: 1.0 for style in QueryStyle}


@pytest.fixture
def engine(vllm_engine_backend: LLMBackend) -> LLMBackend:
    """The session's in-process vLLM engine on the tiny model (chunked prefill off: vLLM 0.32's
    CPU worker dies on seeded requests prefilled in chunks)."""
    return vllm_engine_backend


def job_options(model: str, **more: Any) -> dict[str, Any]:
    """Options that keep answers short enough for the tiny model's context."""
    return {
        "model": model,
        "max_tokens": 320,
        "num_examples": 0,
        "max_query_chars": 60,
        "max_text_chars": 80,
        "max_string_chars": 12,
        "max_items": 3,
        "max_calls": 3,
        "augment": list(AUGMENTATIONS),
        "augment_share": 0.4,
        "created": "2026-02-01T00:00:00+00:00",
        **more,
    }


MULTI_TURN_FAILURES = {TRUNCATED, BLUEPRINT_NOT_FOLLOWED, PROMPT_TOO_LONG}
"""What may become of a multi_turn sample of the random model (prompt_too_long: a dialogue's
history outgrew the context; the blueprint's own prompt always fits)."""


def check_job(samples: list[Sample], request: GenerationRequest) -> None:
    """What a job needs of a batch: at most n samples with the batch's ids; every sample passes
    the format verifier unless marked truncated (or, multi_turn, one of MULTI_TURN_FAILURES);
    every requested style made; children carry their parent."""
    assert len(samples) <= request.n
    assert [s.id for s in samples] == [f"{request.id_prefix}{i}" for i in range(len(samples))]
    verifier = FormatVerifier()
    failures = Counter()
    for sample in samples:
        failure = generation_failure(sample)
        if failure is not None:
            failures[failure[0]] += 1
            if sample.meta.style is QueryStyle.multi_turn:
                assert failure[0] in MULTI_TURN_FAILURES, (sample.id, failure)
                talked = "dialogue" in sample.meta.extra
                assert talked or failure[0] == TRUNCATED, failure  # the blueprint's prompt fits
                assert ("blueprint" in sample.meta.extra) == talked
            else:
                assert failure[0] == TRUNCATED, (sample.id, failure)
            if failure[0] != BLUEPRINT_NOT_FOLLOWED:
                continue
        verdict = verifier.verify(sample)
        assert verdict.accepted, (sample.id, verdict.detail, sample.model_dump_json()[:2000])
        assert sample.meta.generator == "llm"
    originals = [s for s in samples if s.meta.parent_id is None]
    children = [s for s in samples if s.meta.parent_id is not None]
    assert len(originals) == split_count(request.n, read_options(request.options))[0]
    requested = {s.meta.extra["requested_style"] for s in originals}
    assert requested == {style.value for style in QueryStyle}
    # The style made is read off the calls: parallel_multiple calls that all name one tool
    # make a parallel sample, so that style may be missing; the five others cannot be.
    good = {s.meta.style for s in originals if generation_failure(s) is None}
    assert len(good) >= 5, f"styles made: {good}; failed generations: {failures}"
    ids = {s.id for s in originals}
    assert children, "augmentation made no child"
    for child in children:
        assert child.meta.parent_id in ids
        assert child.meta.transformation
    kinds = {child.meta.transformation.split(":")[0] for child in children}
    assert kinds == set(AUGMENTATIONS) - (
        {"add_constraint"} if not _instructions(samples) else set()
    )


def _instructions(samples: list[Sample]) -> bool:
    return any(
        s.meta.style is QueryStyle.instruction and generation_failure(s) is None
        for s in samples
        if s.meta.parent_id is None
    )


def test_a_job_batch_through_the_in_process_engine(
    engine: LLMBackend, tiny_model_dir: Path
) -> None:
    generator = LlmGenerator(backend=engine, tool_api=MockToolApi)
    request = GenerationRequest(
        n=30, seed=5, styles=EVERY_STYLE, id_prefix="e-", options=job_options(str(tiny_model_dir))
    )
    samples, usage = generator.generate_with_usage(TOOLS, request)
    check_job(samples, request)
    llm_children = [
        s
        for s in samples
        if s.meta.transformation
        and s.meta.transformation.split(":")[0] in ("rephrase", "add_constraint")
    ]
    originals = split_count(request.n, read_options(request.options))[0]
    talked = sum(s.meta.extra.get("dialogue", {}).get("requests", 0) for s in samples)
    assert usage.requests == originals + len(llm_children) + talked
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.samples == len(samples)
    assert generator.last_usage == usage


def test_the_engine_gives_the_same_samples_for_the_same_seed(
    engine: LLMBackend, tiny_model_dir: Path
) -> None:
    request = GenerationRequest(
        n=8,
        seed=9,
        styles=EVERY_STYLE,
        id_prefix="d-",
        options=job_options(str(tiny_model_dir), augment=["rephrase", "tool_order"]),
    )
    first = LlmGenerator(backend=engine, tool_api=MockToolApi).generate(TOOLS, request)
    again = LlmGenerator(backend=engine, tool_api=MockToolApi).generate(TOOLS, request)
    assert [s.to_json() for s in first] == [s.to_json() for s in again]


def test_outputs_cut_at_max_tokens_are_marked_truncated(
    engine: LLMBackend, tiny_model_dir: Path
) -> None:
    request = GenerationRequest(
        n=4,
        seed=2,
        id_prefix="t-",
        options=job_options(str(tiny_model_dir), max_tokens=16, augment=[]),
    )
    samples, usage = LlmGenerator(backend=engine, tool_api=MockToolApi).generate_with_usage(
        TOOLS, request
    )
    assert [generation_failure(s)[0] for s in samples if generation_failure(s)] == [TRUNCATED] * 4
    assert all(not s.steps for s in samples)
    assert usage.failures == {TRUNCATED: 4}


@pytest.fixture
def shared_backends() -> Iterator[None]:
    """Close the backends the generator loaded by name when the test ends."""
    yield
    close_shared_backends()


def test_a_job_batch_through_the_openai_server(
    vllm_server: str, tiny_model_dir: Path, shared_backends: None
) -> None:
    options = job_options(str(tiny_model_dir), backend="openai", base_url=vllm_server)
    request = GenerationRequest(n=30, seed=7, styles=EVERY_STYLE, id_prefix="o-", options=options)
    generator = LlmGenerator(tool_api=MockToolApi)
    samples, usage = generator.generate_with_usage(TOOLS, request)
    check_job(samples, request)
    assert all(s.meta.extra["backend"] == "openai" for s in samples)
    assert usage.completion_tokens > 0
