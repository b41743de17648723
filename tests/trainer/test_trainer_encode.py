"""Tokenizing conversations with the tiny model's real tokenizer under other chat templates:
completion-only masking when the template has no `{% generation %}` markers, tools in the
system turn when it ignores `tools`."""

from __future__ import annotations

import pytest
from tiny_model import CHAT_TEMPLATE, cached_tiny_model
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from trainer.encode import IGNORE_INDEX, ChatEncoder
from trainer.render import render
from unified.model import Sample, SampleMeta, Step, Tool, ToolCall

SAMPLE = Sample(
    id="s",
    query="Weather in Oslo?",
    tools=[Tool(name="get_weather", parameters={"type": "object", "properties": {}})],
    steps=[Step(tool_calls=[ToolCall(name="get_weather", arguments={"city": "Oslo"})])],
    meta=SampleMeta(),
)


@pytest.fixture
def tokenizer() -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(cached_tiny_model())


def test_generation_markers_give_assistant_token_masking(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    encoder = ChatEncoder(tokenizer)
    assert encoder.masking == "assistant_tokens" and encoder.renders_tools
    row = encoder.encode(SAMPLE.id, render(SAMPLE))
    trained = [label for label in row.labels if label != IGNORE_INDEX]
    assert tokenizer.decode(trained) == render(SAMPLE).messages[-1]["content"] + "</s>"


def test_without_generation_markers_the_prompt_is_masked(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    tokenizer.chat_template = CHAT_TEMPLATE.replace("{% generation %}", "").replace(
        "{% endgeneration %}", ""
    )
    encoder = ChatEncoder(tokenizer)
    assert encoder.masking == "completion"
    conversation = render(SAMPLE)
    row = encoder.encode(SAMPLE.id, conversation)
    prompt = encoder.prompt_ids(conversation)
    assert row.labels[: len(prompt)] == [IGNORE_INDEX] * len(prompt)
    assert row.labels[len(prompt) :] == row.input_ids[len(prompt) :]
    completion = tokenizer.decode(row.labels[len(prompt) :])
    assert completion.startswith(conversation.messages[-1]["content"] + "</s>")


def test_a_template_that_ignores_tools_gets_them_in_the_system_turn(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    tokenizer.chat_template = CHAT_TEMPLATE.replace(
        "{% if tools %}<|system|>Tools: {{ tools | tojson }}\n{% endif %}", ""
    )
    encoder = ChatEncoder(tokenizer)
    assert not encoder.renders_tools
    text = tokenizer.decode(encoder.prompt_ids(render(SAMPLE)))
    assert '"name": "get_weather"' in text or '"name":"get_weather"' in text
    assert text.endswith("<|assistant|>")
