"""What a model trained here writes can be served as `tool_calls` by vLLM's own tool parsers: the
training target of each sample, rendered through the trainer, goes through the parser class that
`vllm serve --enable-auto-tool-choice --tool-call-parser NAME` would use, and comes back as
exactly the sample's calls. The JSON list written for templates without tool calls is read by
`xlam`; the `<tool_call>` blocks of a Qwen2.5 / Hermes-style template by `hermes`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_trainer_encode import TOOL_CALLS_TEMPLATE
from tiny_model import cached_tiny_model
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from generators.base import GenerationRequest
from generators.template.generator import TemplateGenerator
from trainer.encode import IGNORE_INDEX, ChatEncoder
from trainer.render import render
from unified.catalogs import load_catalog
from unified.model import Sample

CATALOG = Path(__file__).resolve().parents[2] / "examples" / "travel_api.yaml"


@pytest.fixture(scope="module")
def samples() -> list[Sample]:
    tools = load_catalog(CATALOG).tools
    generated = TemplateGenerator().generate(tools, GenerationRequest(n=24, seed=5))
    with_calls = [sample for sample in generated if sample.tool_calls()]
    assert len({len(s.tool_calls()) for s in with_calls}) > 1  # single and parallel calls
    return with_calls


def served_calls(
    tokenizer: PreTrainedTokenizerBase, sample: Sample, parser_name: str
) -> list[tuple[str, dict[str, object]]]:
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
    from vllm.tool_parsers import ToolParserManager

    encoder = ChatEncoder(tokenizer)
    row = encoder.encode(sample.id, render(sample))
    target = [label for label in row.labels if label != IGNORE_INDEX]
    text = tokenizer.decode(target, skip_special_tokens=True)  # as the server decodes it
    parser = ToolParserManager.get_tool_parser(parser_name)(tokenizer)
    request = ChatCompletionRequest(
        model="adapter", messages=[{"role": "user", "content": sample.query}]
    )
    extracted = parser.extract_tool_calls(text, request)
    assert extracted.tools_called, text
    return [(c.function.name, json.loads(c.function.arguments)) for c in extracted.tool_calls]


@pytest.mark.parametrize(
    ("template", "parser_name"), [(None, "xlam"), (TOOL_CALLS_TEMPLATE, "hermes")]
)
def test_the_training_target_is_served_as_exactly_the_samples_calls(
    samples: list[Sample], template: str | None, parser_name: str
) -> None:
    tokenizer = AutoTokenizer.from_pretrained(cached_tiny_model())
    if template is not None:
        tokenizer.chat_template = template
    for sample in samples:
        expected = [(call.name, call.arguments) for call in sample.tool_calls()]
        assert served_calls(tokenizer, sample, parser_name) == expected
