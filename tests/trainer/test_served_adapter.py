"""An adapter the trainer writes is served by vLLM's CPU build as documented in the README
(`--enable-lora --lora-modules NAME=DIR --enable-auto-tool-choice --tool-call-parser xlam` for a
template without tool calls, such as SmolLM2's), and what it answers comes back as `tool_calls`:
the samples it was trained on, asked again the way the trainer rendered them, are answered with
exactly their calls, where the base model on the same server answers otherwise."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from llm_fixtures import VllmServer, running_vllm_server
from smollm2_model import MODEL

from generators.base import GenerationRequest
from generators.template.generator import TemplateGenerator
from trainer.config import TrainConfig
from trainer.modeling import load_tokenizer
from trainer.render import TemplateAbilities, chat_inputs, render
from trainer.train import train
from unified.catalogs import load_catalog
from unified.model import Sample

pytestmark = [pytest.mark.slow, pytest.mark.llm]

CATALOG = Path(__file__).resolve().parents[2] / "examples" / "travel_api.yaml"
ADAPTER_NAME = "travel"
LORA_RANK = 8
Calls = list[tuple[str, dict[str, Any]]]


@pytest.fixture(scope="module")
def samples() -> list[Sample]:
    """Three travel samples with calls, one of them two parallel calls."""
    tools = load_catalog(CATALOG).tools
    generated = TemplateGenerator().generate(tools, GenerationRequest(n=24, seed=5))
    picked = [sample for sample in generated if sample.tool_calls()][:3]
    assert any(len(sample.tool_calls()) > 1 for sample in picked)
    return picked


@pytest.fixture(scope="module")
def adapter(
    smollm2_dir: Path, samples: list[Sample], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A LoRA adapter of SmolLM2 trained until it knows the samples by heart (15 steps at a
    high learning rate: about a minute on 2 CPUs)."""
    config = TrainConfig(
        base_model=str(smollm2_dir),
        output_dir=str(tmp_path_factory.mktemp("served") / ADAPTER_NAME),
        lora_r=LORA_RANK,
        lora_alpha=2 * LORA_RANK,
        learning_rate=2e-3,
        max_steps=15,
        batch_size=len(samples),
        seed=1,
        logging_steps=5,
    )
    result = train(config, samples)
    assert result.losses[-1] < 0.05, result.losses
    return result.output_dir


@pytest.fixture(scope="module")
def server(
    smollm2_dir: Path, adapter: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VllmServer]:
    flags = [
        "--served-model-name", MODEL.served_name,
        "--enable-lora",
        "--lora-modules", f"{ADAPTER_NAME}={adapter}",
        "--max-lora-rank", str(LORA_RANK),
        "--enable-auto-tool-choice",
        "--tool-call-parser", "xlam",
    ]  # fmt: skip
    log = tmp_path_factory.mktemp("served-adapter") / "server.log"
    with running_vllm_server(smollm2_dir, log, extra_args=flags) as running:
        yield running


def ask(server: VllmServer, model: str, sample: Sample, abilities: TemplateAbilities) -> Any:
    """The served model's message for the sample's prompt, rendered as the trainer rendered it;
    the tools also go in the request, as a client's would (they turn the parser on)."""
    conversation = render(sample)
    messages, _ = chat_inputs(conversation, abilities, prompt_only=True)
    body = {
        "model": model,
        "messages": messages,
        "tools": conversation.tools,
        "temperature": 0,
        "max_tokens": 120,
    }
    response = httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=600)
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["message"]


def calls_of(message: dict[str, Any]) -> Calls:
    return [
        (call["function"]["name"], json.loads(call["function"]["arguments"]))
        for call in message.get("tool_calls") or []
    ]


def test_a_served_adapter_answers_with_the_calls_it_was_trained_on_as_tool_calls(
    server: VllmServer, samples: list[Sample], smollm2_dir: Path
) -> None:
    abilities = TemplateAbilities.of(load_tokenizer(str(smollm2_dir)).chat_template)
    assert not abilities.tool_calls  # the template the xlam parser is documented for

    listed = httpx.get(f"{server.base_url}/models", timeout=30).json()["data"]
    assert ADAPTER_NAME in {model["id"] for model in listed}
    base_answers: list[Calls] = []
    for sample in samples:
        message = ask(server, ADAPTER_NAME, sample, abilities)
        wanted = [(call.name, call.arguments) for call in sample.tool_calls()]
        assert calls_of(message) == wanted, message
        assert not message["content"], message  # the calls, not text around them
        base_answers.append(calls_of(ask(server, MODEL.served_name, sample, abilities)))
    # The calls come from the adapter: the base model, asked the same, does not give them all.
    assert base_answers != [
        [(call.name, call.arguments) for call in sample.tool_calls()] for sample in samples
    ]
