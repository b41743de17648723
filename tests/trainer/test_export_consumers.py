"""The `hf` and `dpo` exports loaded by their consumers' own code, as a user would: `datasets`
reads every row back unchanged, TRL's SFTTrainer and DPOTrainer prepare them, and a chat template
that renders `tools` and assistant `tool_calls` the way Qwen2.5's does writes each call's
arguments once, as a JSON object. The loss mask covers the assistant's turns and nothing else,
and a sample's DPO prompt is its SFT prompt, token for token; multi-turn samples (every turn in
the SFT row, the final turn's pair after the earlier dialogue) included.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import orjson
import pytest
from tiny_model import cached_tiny_model

from generators.base import GenerationRequest
from generators.template.generator import TemplateGenerator
from service.export.preference import build_pairs, write_pairs
from unified.catalogs import load_catalog
from unified.formats import write_samples
from unified.model import QueryStyle, Sample, SampleMeta, Step, Tool, ToolCall, Turn

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TRAVEL = ROOT / "examples" / "travel_api.yaml"
# Qwen2.5's way with tools, in the tiny model's tokens: the tools as JSON in the system turn, each
# call as `<tool_call>{"name": ..., "arguments": <tojson>}</tool_call>`, tool results in a user
# turn; `generation` marks the assistant's turns for the loss mask.
QWEN_LIKE_TEMPLATE = (
    "{{ bos_token }}"
    "{% if messages[0]['role'] == 'system' %}{% set system = messages[0]['content'] %}"
    "{% set rest = messages[1:] %}{% else %}{% set system = 'You are a helpful assistant.' %}"
    "{% set rest = messages %}{% endif %}"
    "<|system|>{{ system }}"
    "{% if tools %}\n# Tools\n<tools>{% for tool in tools %}\n{{ tool | tojson }}{% endfor %}"
    "\n</tools>{% endif %}\n"
    "{% for message in rest %}"
    "{% if message['role'] == 'assistant' %}<|assistant|>{% generation %}"
    "{{ message['content'] }}"
    "{% for call in message.get('tool_calls') or [] %}{% set f = call['function'] %}"
    '<tool_call>{"name": "{{ f["name"] }}", "arguments": {{ f["arguments"] | tojson }}}'
    "</tool_call>{% endfor %}{{ eos_token }}{% endgeneration %}\n"
    "{% elif message['role'] == 'tool' %}<|user|><tool_response>{{ message['content'] }}"
    "</tool_response>\n"
    "{% else %}<|{{ message['role'] }}|>{{ message['content'] }}\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
WEATHER = Tool(
    name="get_weather",
    description='Current weather; "city" is a name.',
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer", "default": 1}},
        "required": ["city"],
        "additionalProperties": False,
    },
)


def samples() -> list[Sample]:
    """Generated travel samples (calls without results, irrelevance answers) and hand-built ones
    that end on results (a summary is written), on an answer, or have no step (a refusal)."""
    request = GenerationRequest(n=16, seed=3, options={"created": "2026-01-01T00:00:00+00:00"})
    generated = list(TemplateGenerator().generate(load_catalog(TRAVEL).tools, request))
    call = ToolCall(name="get_weather", arguments={"city": "Zürich", "days": 2}, id="c1")
    built = [
        Sample(
            id="results-only",
            task_instruction="You check the weather.",
            format_instruction="Answer briefly.",
            tools=[WEATHER],
            query="Weather in Zürich for two days?",
            steps=[Step(tool_calls=[call], results=[{"temp_c": [3, 5], "sky": "snow"}])],
            meta=SampleMeta(style=QueryStyle.simple),
        ),
        Sample(
            id="answered",
            tools=[WEATHER],
            query="And in Oslo?",
            steps=[
                Step(
                    thought="One call.",
                    tool_calls=[ToolCall(name="get_weather", arguments={"city": "Oslo"})],
                    results=["-2 C"],
                ),
                Step(answer="It is -2 °C in Oslo."),
            ],
            meta=SampleMeta(style=QueryStyle.simple),
        ),
        Sample(
            id="no-steps",
            tools=[WEATHER],
            query="Book me a table.",
            meta=SampleMeta(style=QueryStyle.irrelevance),
        ),
    ]
    return generated + built + conversations()


def conversations() -> list[Sample]:
    """Two multi-turn samples: one whose final turn calls a tool (it makes a DPO pair), one whose
    final turn only answers (it makes none: no perturbation applies to an answer)."""
    zurich = Step(
        tool_calls=[ToolCall(name="get_weather", arguments={"city": "Zürich"}, id="z1")],
        results=[{"temp_c": 3}],
    )
    oslo = ToolCall(name="get_weather", arguments={"city": "Oslo", "days": 3})
    first = [zurich, Step(answer="3 °C in Zürich.")]
    meta = SampleMeta(style=QueryStyle.multi_turn)
    return [
        Sample(
            id="conversation",
            task_instruction="You check the weather.",
            tools=[WEATHER],
            query="Weather in Zürich?",
            steps=first,
            turns=[
                Turn(
                    query="And in Oslo for three days?",
                    steps=[Step(tool_calls=[oslo], results=["-2 C"]), Step(answer="-2 °C.")],
                )
            ],
            meta=meta,
        ),
        Sample(
            id="conversation-thanks",
            tools=[WEATHER],
            query="Weather in Zürich?",
            steps=first,
            turns=[Turn(query="Thanks!", steps=[Step(answer="You are welcome.")])],
            meta=meta,
        ),
    ]


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(cached_tiny_model())
    loaded.chat_template = QWEN_LIKE_TEMPLATE
    return loaded


def load_json_lines(path: Path, cache: Path) -> Any:
    import datasets

    return datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(cache))


def written_rows(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def quiet_trl() -> None:
    for name in ("trl", "transformers", "datasets"):
        logging.getLogger(name).setLevel(logging.ERROR)


def test_hf_rows_load_unchanged_and_train_through_sfttrainer(
    tmp_path: Path, tokenizer: Any
) -> None:
    from transformers import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    quiet_trl()
    path = tmp_path / "sft.jsonl"
    assert write_samples(samples(), path, "hf") == len(samples())
    dataset = load_json_lines(path, tmp_path / "cache")
    assert dataset.column_names == ["messages", "tools", "final_turn"]
    rows = written_rows(path)
    assert dataset.to_list() == rows  # no key added, no value or type changed
    assert {row["final_turn"] for row in rows} == {"answer", "tool_calls", "summary", "refusal"}

    trainer = SFTTrainer(
        model=str(cached_tiny_model()),
        args=SFTConfig(
            output_dir=str(tmp_path / "out"),
            assistant_only_loss=True,
            max_length=None,
            use_cpu=True,
            report_to="none",
            save_strategy="no",
            disable_tqdm=True,
            dataset_num_proc=None,
        ),
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    trainer.remove_callback(PrinterCallback)
    prepared = trainer.train_dataset
    assert prepared.num_rows == len(rows)
    for row, example in zip(rows, prepared, strict=True):
        text = tokenizer.decode(example["input_ids"])
        trained = tokenizer.decode([t for t in example["labels"] if t != -100])
        check_calls_once_as_objects(row, text)
        # The loss covers exactly the assistant's turns, as the template writes them.
        assert trained == "".join(assistant_text(m, tokenizer) for m in assistant_turns(row))
        assert row["messages"][-1]["role"] == "assistant"
        assert trained.endswith(assistant_text(row["messages"][-1], tokenizer))


def assistant_turns(row: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in row["messages"] if m["role"] == "assistant"]


def call_text(call: dict[str, Any]) -> str:
    function = call["function"]
    arguments = json.dumps(function["arguments"], ensure_ascii=False)
    return f'<tool_call>{{"name": "{function["name"]}", "arguments": {arguments}}}</tool_call>'


def assistant_text(message: dict[str, Any], tokenizer: Any) -> str:
    calls = "".join(call_text(call) for call in message.get("tool_calls") or [])
    return f"{message['content']}{calls}{tokenizer.eos_token}"


def check_calls_once_as_objects(row: dict[str, Any], text: str) -> None:
    """Each call's arguments are in the text once per call, as a JSON object, never as a JSON
    string (which `tojson` would have encoded a second time)."""
    calls = [call for m in row["messages"] for call in m.get("tool_calls") or []]
    for call in calls:
        assert isinstance(call["function"]["arguments"], dict)
        assert text.count(call_text(call)) == calls.count(call)
    assert '"arguments": "' not in text
    assert text.count("<tool_call>") == len(calls)


def test_openai_rows_would_encode_the_arguments_twice(tmp_path: Path, tokenizer: Any) -> None:
    """Why `hf` exists: the same calls from the `openai` export (arguments as JSON text, as
    OpenAI's fine-tuning wants them) come out of the same template as a JSON string."""
    path = tmp_path / "openai.jsonl"
    write_samples(samples()[:4], path, "openai")
    row = written_rows(path)[0]
    text = tokenizer.apply_chat_template(row["messages"], tools=row["tools"], tokenize=False)
    assert '"arguments": "{\\"' in text


def test_dpo_rows_load_unchanged_and_their_prompts_are_the_sft_prompts(
    tmp_path: Path, tokenizer: Any
) -> None:
    from transformers import PrinterCallback
    from trl import DPOConfig, DPOTrainer

    quiet_trl()
    chosen = {sample.id: sample for sample in samples()}
    path = tmp_path / "dpo.jsonl"
    with path.open("wb") as stream:
        count = write_pairs(build_pairs(chosen.values(), seed=0), stream)
    pairs = list(build_pairs(chosen.values(), seed=0))
    assert count == len(pairs) > 10
    paired = {pair.chosen_id for pair in pairs}
    assert "conversation" in paired and "conversation-thanks" not in paired
    sft_path = tmp_path / "sft.jsonl"
    write_samples([chosen[pair.chosen_id] for pair in pairs], sft_path, "hf")

    dataset = load_json_lines(path, tmp_path / "cache")
    assert dataset.column_names == ["prompt", "chosen", "rejected", "tools"]
    rows = written_rows(path)
    assert dataset.to_list() == rows

    trainer = DPOTrainer(
        model=str(cached_tiny_model()),
        args=DPOConfig(
            output_dir=str(tmp_path / "out"),
            max_length=None,
            use_cpu=True,
            report_to="none",
            save_strategy="no",
            disable_tqdm=True,
        ),
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    trainer.remove_callback(PrinterCallback)
    prepared = trainer.train_dataset
    assert prepared.num_rows == len(rows)
    for row, sft, example in zip(rows, written_rows(sft_path), prepared, strict=True):
        # The DPO prompt, as TRL tokenizes it, is the SFT row's prompt with the same tools.
        assert row["tools"] == sft["tools"]
        sft_prompt = sft["messages"][: len(row["prompt"])]
        assert row["prompt"] == sft_prompt
        prompt_ids = tokenizer.apply_chat_template(
            sft_prompt,
            tools=sft["tools"] or None,
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
        )["input_ids"]
        assert example["prompt_ids"] == list(prompt_ids)
        # Each side is one assistant turn, with no tool result, and the sides differ.
        chosen_text = tokenizer.decode(example["chosen_ids"])
        rejected_text = tokenizer.decode(example["rejected_ids"])
        assert "<tool_response>" not in chosen_text + rejected_text
        assert chosen_text != rejected_text
        (chosen_turn,) = row["chosen"]
        assert chosen_text.rstrip("\n") == assistant_text(chosen_turn, tokenizer)
        check_calls_once_as_objects({"messages": row["chosen"]}, chosen_text)
    conversation_row = rows[[pair.chosen_id for pair in pairs].index("conversation")]
    prompt_text = "".join(m["content"] for m in conversation_row["prompt"])
    assert conversation_row["prompt"][-1] == {
        "role": "user",
        "content": "And in Oslo for three days?",
    }
    assert "3 °C in Zürich." in prompt_text and '{"temp_c":3}' in prompt_text
    assert conversation_row["chosen"][0]["tool_calls"][0]["function"]["arguments"] == {
        "city": "Oslo",
        "days": 3,
    }


def test_empty_exports_are_empty_files(tmp_path: Path) -> None:
    path = tmp_path / "none.jsonl"
    assert write_samples([], path, "hf") == 0
    assert path.read_bytes() == b""
    with (tmp_path / "pairs.jsonl").open("wb") as stream:
        assert write_pairs(build_pairs([]), stream) == 0
    assert (tmp_path / "pairs.jsonl").read_bytes() == b""
