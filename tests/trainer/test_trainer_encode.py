"""Tokenizing conversations with the tiny model's real tokenizer under other chat templates:
completion-only masking when the template has no `{% generation %}` markers, tools in the
system turn when it ignores `tools`, calls written the template's way when it renders
`tool_calls`; and multi-turn conversations with SmolLM2's own tokenizer and chat template, the
loss on every assistant message of every turn and on nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_model import CHAT_TEMPLATE, cached_tiny_model
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from trainer.encode import IGNORE_INDEX, ChatEncoder
from trainer.evaluate import parse_calls
from trainer.render import CALLS_AS_TEXT, render
from unified.model import QueryStyle, Sample, SampleMeta, Step, Tool, ToolCall, Turn

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


FLIGHTS = [{"flight": "SK4711", "price": 129}, {"flight": "FR1234", "price": 89}]
TWO_TURNS = Sample(
    id="mt",
    task_instruction="You book flights.",
    query="Flights from Oslo to Rome on May 3?",
    tools=[
        Tool(name="search_flights", parameters={"type": "object", "properties": {}}),
        Tool(name="book_flight", parameters={"type": "object", "properties": {}}),
    ],
    steps=[
        Step(
            tool_calls=[ToolCall(name="search_flights", arguments={"from": "OSL", "to": "FCO"})],
            results=[FLIGHTS],
        ),
        Step(answer="SK4711 at 129 and FR1234 at 89."),
    ],
    turns=[
        Turn(
            query="Book the cheaper one.",
            steps=[
                Step(
                    tool_calls=[ToolCall(name="book_flight", arguments={"flight": "FR1234"})],
                    results=[{"booking": "B-17"}],
                ),
                Step(answer="Booked FR1234, reference B-17."),
            ],
        )
    ],
    meta=SampleMeta(style=QueryStyle.multi_turn),
)
ASSISTANT_PARTS = [
    '[{"name":"search_flights","arguments":{"from":"OSL","to":"FCO"}}]',
    "SK4711 at 129 and FR1234 at 89.",
    '[{"name":"book_flight","arguments":{"flight":"FR1234"}}]',
    "Booked FR1234, reference B-17.",
]


def labelled_spans(tokenizer: PreTrainedTokenizerBase, labels: list[int]) -> list[str]:
    """The decoded runs of labelled tokens, in order."""
    spans: list[list[int]] = [[]]
    for label in labels:
        if label == IGNORE_INDEX:
            if spans[-1]:
                spans.append([])
        else:
            spans[-1].append(label)
    return [tokenizer.decode(span) for span in spans if span]


def test_smollm2_learns_every_assistant_message_of_both_turns_and_nothing_else(
    smollm2_dir: Path,
) -> None:
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    encoder = ChatEncoder(tokenizer)
    assert encoder.masking == "completion"  # SmolLM2's template has no generation markers
    row = encoder.encode(TWO_TURNS.id, render(TWO_TURNS))
    end_of_turn = "<|im_end|>\n"
    assert labelled_spans(tokenizer, row.labels) == [part + end_of_turn for part in ASSISTANT_PARTS]
    assert all(
        label in (IGNORE_INDEX, token)
        for label, token in zip(row.labels, row.input_ids, strict=True)
    )
    unlabelled = tokenizer.decode(
        [t for t, label in zip(row.input_ids, row.labels, strict=True) if label == IGNORE_INDEX]
    )
    for text in ("Flights from Oslo to Rome", "Book the cheaper one.", "B-17", "SK4711", "book"):
        assert text in unlabelled  # user turns, tool results and system text carry no loss


def test_smollm2_is_asked_each_turn_after_the_earlier_turns(smollm2_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    encoder = ChatEncoder(tokenizer)
    conversation = render(TWO_TURNS)
    full = encoder.encode(TWO_TURNS.id, conversation).input_ids
    first = encoder.prompt_ids(conversation)
    second = encoder.prompt_ids(conversation, turn=1)
    assert tokenizer.decode(first).endswith(
        "Flights from Oslo to Rome on May 3?<|im_end|>\n<|im_start|>assistant\n"
    )
    text = tokenizer.decode(second)
    assert text.endswith("Book the cheaper one.<|im_end|>\n<|im_start|>assistant\n")
    assert '"price":89' in text and "SK4711 at 129 and FR1234 at 89." in text
    assert full[: len(second)] == second  # the prompt is the conversation as trained on


def test_a_template_with_generation_markers_masks_every_turn_too(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    encoder = ChatEncoder(tokenizer)
    assert encoder.masking == "assistant_tokens"
    row = encoder.encode(TWO_TURNS.id, render(TWO_TURNS))
    assert labelled_spans(tokenizer, row.labels) == [
        part + tokenizer.eos_token for part in ASSISTANT_PARTS
    ]


def test_completion_masking_leaves_tool_results_out(tokenizer: PreTrainedTokenizerBase) -> None:
    tokenizer.chat_template = CHAT_TEMPLATE.replace("{% generation %}", "").replace(
        "{% endgeneration %}", ""
    )
    encoder = ChatEncoder(tokenizer)
    single = TWO_TURNS.model_copy(update={"turns": []})
    row = encoder.encode(single.id, render(single))
    assert labelled_spans(tokenizer, row.labels) == [
        part + tokenizer.eos_token + "\n" for part in ASSISTANT_PARTS[:2]
    ]
