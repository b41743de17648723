"""A tiny random Llama with its own byte-level BPE tokenizer and chat template, for tests.

There is no model hub here: the tests build the model they run. It writes nonsense, but vLLM
loads it like any other, structured outputs force it into a schema, and training moves its
weights, which is what the plumbing tests need. Built once into a cache folder keyed by this
file's recipe, so a session (and CI's next step) reuses it.

Run as a script to build it: `python tests/tiny_model.py [DIR]`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

# hidden 128 with 2 heads: vLLM's CPU attention needs head_dim 64 (16 is refused).
MODEL_CONFIG = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False,
}
VOCAB_SIZE = 1024
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>", "<|user|>", "<|assistant|>", "<|system|>"]
# Renders tools (when given) into the system turn; `generation` marks what the assistant wrote,
# so trainers can put the loss on the assistant's turns only.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% if tools %}<|system|>Tools: {{ tools | tojson }}\n{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}<|assistant|>"
    "{% generation %}{{ message['content'] }}{{ eos_token }}{% endgeneration %}\n"
    "{% else %}<|{{ message['role'] }}|>{{ message['content'] }}\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
TRAINING_TEXT = [
    "Find flights from Paris to Berlin on 2026-12-01 for two adults.",
    "What is the weather in Tokyo tomorrow? Use celsius.",
    '{"name": "get_weather", "arguments": {"city": "Tokyo", "unit": "celsius"}}',
    "Convert 250 USD to EUR and book a hotel in Rome for three nights.",
    '[{"name": "search_hotels", "arguments": {"city": "Rome", "nights": 3}}]',
    "Tell me a joke about databases. Answer in fewer than 50 words.",
    'The quick brown fox jumps over the lazy dog 0123456789 {}[]:,"',
]


def recipe_key() -> str:
    """Changes whenever the recipe does, so a stale cached model is never reused."""
    recipe = json.dumps([MODEL_CONFIG, VOCAB_SIZE, SPECIAL_TOKENS, CHAT_TEMPLATE, TRAINING_TEXT])
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


def build_tiny_model(directory: Path, seed: int = 0) -> Path:
    """Write the model, tokenizer and chat template to `directory` (float32 safetensors)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(TRAINING_TEXT * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
    )
    fast.chat_template = CHAT_TEMPLATE

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(fast),
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        torch_dtype="float32",
        **MODEL_CONFIG,
    )
    model = LlamaForCausalLM(config).to(torch.float32)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    fast.save_pretrained(directory)
    return directory


def cached_tiny_model(cache_root: Path | None = None) -> Path:
    """The tiny model's folder under `cache_root` (default .cache/ in the checkout), built once.

    Built into a temporary folder and renamed, so concurrent builders never see half a model.
    """
    root = cache_root or Path(__file__).resolve().parent.parent / ".cache"
    target = root / f"tiny-llama-{recipe_key()}"
    if (target / "config.json").exists():
        return target
    staging = root / f".building-{os.getpid()}"
    build_tiny_model(staging)
    try:
        staging.rename(target)
    except OSError:  # another process finished first; theirs is the same model
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
    return target


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    print(build_tiny_model(out) if out else cached_tiny_model())
