"""Tokenizing conversations with the tiny model's real tokenizer under other chat templates:
completion-only masking when the template has no `{% generation %}` markers, tools in the
system turn when it ignores `tools`, calls written the template's way when it renders
`tool_calls`."""

from __future__ import annotations

import pytest
from tiny_model import CHAT_TEMPLATE, cached_tiny_model
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from trainer.encode import IGNORE_INDEX, ChatEncoder
from trainer.evaluate import parse_calls
from trainer.render import CALLS_AS_TEXT, render
from unified.model import Sample, SampleMeta, Step, Tool, ToolCall

SAMPLE = Sample(
    id="s",
    query="Weather in Oslo?",
    tools=[Tool(name="get_weather", parameters={"type": "object", "properties": {}})],
    steps=[Step(tool_calls=[ToolCall(name="get_weather", arguments={"city": "Oslo"})])],
    meta=SampleMeta(),
)

CALLS_JSON = '[{"name":"get_weather","arguments":{"city":"Oslo"}}]'
# A template that writes the assistant's calls itself, one <tool_call> block per call.
TOOL_CALLS_TEMPLATE = CHAT_TEMPLATE.replace(
    "{% generation %}{{ message['content'] }}",
    "{% generation %}{{ message['content'] }}"
    "{% for call in message.get('tool_calls', []) %}"
    "<tool_call>{{ call['function'] | tojson }}</tool_call>{% endfor %}",
)


@pytest.fixture
def tokenizer() -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(cached_tiny_model())


def test_generation_markers_give_assistant_token_masking(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    encoder = ChatEncoder(tokenizer)
    assert encoder.masking == "assistant_tokens" and encoder.abilities.tools
    assert not encoder.abilities.tool_calls
    row = encoder.encode(SAMPLE.id, render(SAMPLE))
    trained = [label for label in row.labels if label != IGNORE_INDEX]
    assert tokenizer.decode(trained) == CALLS_JSON + "</s>"
    assert CALLS_AS_TEXT in tokenizer.decode(encoder.prompt_ids(render(SAMPLE)))


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
    assert completion.startswith(CALLS_JSON + "</s>")


def test_a_template_that_ignores_tools_gets_them_in_the_system_turn(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    tokenizer.chat_template = CHAT_TEMPLATE.replace(
        "{% if tools %}<|system|>Tools: {{ tools | tojson }}\n{% endif %}", ""
    )
    encoder = ChatEncoder(tokenizer)
    assert not encoder.abilities.tools
    text = tokenizer.decode(encoder.prompt_ids(render(SAMPLE)))
    assert '"name": "get_weather"' in text or '"name":"get_weather"' in text
    assert text.endswith("<|assistant|>")


def test_a_template_that_writes_tool_calls_is_trained_on_its_own_call_format(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    tokenizer.chat_template = TOOL_CALLS_TEMPLATE
    encoder = ChatEncoder(tokenizer)
    assert encoder.abilities.tool_calls and encoder.masking == "assistant_tokens"
    row = encoder.encode(SAMPLE.id, render(SAMPLE))
    trained = tokenizer.decode([label for label in row.labels if label != IGNORE_INDEX])
    assert trained.startswith("<tool_call>") and trained.endswith("</tool_call></s>")
    assert parse_calls(trained).calls == SAMPLE.steps[0].tool_calls
    prompt = tokenizer.decode(encoder.prompt_ids(render(SAMPLE)))
    assert CALLS_AS_TEXT not in prompt and prompt.endswith("<|assistant|>")
