"""The SmolLM2 folder `actionforge models fetch` writes is the real model: float32 weights that
still know what SmolLM2 knows, its tokenizer and chat template; fetching it again changes
nothing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from smollm2_model import MODEL

from llm.model_fetch import SOURCE_FILE, fetch_model, is_complete

pytestmark = pytest.mark.slow


def test_the_fetched_folder_is_a_float32_model_that_answers_like_smollm2(smollm2_dir: Path) -> None:
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert is_complete(smollm2_dir)
    assert MODEL.requirement in (smollm2_dir / SOURCE_FILE).read_text()
    with safe_open(str(smollm2_dir / "model.safetensors"), framework="pt") as weights:
        names = weights.keys()  # a safetensors file is not iterable itself
        assert {weights.get_slice(name).get_dtype() for name in names} == {"F32"}

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    assert "<|im_start|>assistant" in tokenizer.decode(prompt["input_ids"][0])
    with torch.no_grad():
        output = model.generate(**prompt, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(output[0][prompt["input_ids"].shape[1] :], skip_special_tokens=True)
    # Garbled dequantisation (wrong block layout, untied head) would not find Paris.
    assert "Paris" in answer, answer


def test_fetching_a_complete_folder_again_returns_at_once_untouched(smollm2_dir: Path) -> None:
    before = {path.name: path.stat().st_mtime_ns for path in smollm2_dir.iterdir()}
    started = time.monotonic()
    assert fetch_model(MODEL.name, smollm2_dir) == smollm2_dir
    assert time.monotonic() - started < 1.0  # no pip, no conversion
    assert {path.name: path.stat().st_mtime_ns for path in smollm2_dir.iterdir()} == before
