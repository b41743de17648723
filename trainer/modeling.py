"""Loading base models, tokenizers and LoRA adapters, with errors that say what to change.

bf16 on a CUDA GPU, float32 on the CPU: the same code runs on both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trainer.errors import ModelLoadError

if TYPE_CHECKING:
    import torch
    from peft import PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

ADAPTER_CONFIG = "adapter_config.json"


@dataclass(frozen=True)
class Placement:
    """Where a model runs and in which precision."""

    device: str
    dtype: torch.dtype

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")


def placement() -> Placement:
    """bf16 on the first CUDA GPU when there is one, else float32 on the CPU."""
    import torch

    if torch.cuda.is_available():
        return Placement("cuda", torch.bfloat16)
    return Placement("cpu", torch.float32)


def check_model_path(model: str) -> None:
    """Refuse a local path that is not a model folder before anything heavy loads.

    A name that is not a path (`org/model`) is left to `from_pretrained` (the local cache).
    """
    path = Path(model)
    if not model.strip():
        raise ModelLoadError("no base model given; pass --model with a model folder or name")
    if not path.exists() and (path.is_absolute() or model.startswith((".", "~"))):
        raise ModelLoadError(
            f"{model}: no such model folder; give a folder written by save_pretrained"
        )
    if path.is_file():
        raise ModelLoadError(
            f"{model}: is a file, not a model folder; give the folder that holds config.json"
        )
    if path.is_dir() and not (path / "config.json").is_file():
        hint = (
            " (it is a LoRA adapter: pass it as --adapter and its base model as --model)"
            if (path / ADAPTER_CONFIG).is_file()
            else ""
        )
        raise ModelLoadError(
            f"{model}: not a model folder, it has no config.json{hint}; give a folder written "
            "by save_pretrained"
        )


def load_tokenizer(model: str) -> PreTrainedTokenizerBase:
    """The model's tokenizer; it must have a chat template. A missing pad token becomes EOS."""
    from transformers import AutoTokenizer

    check_model_path(model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{model}: cannot load a tokenizer: {_first_line(exc)}") from None
    if not tokenizer.chat_template:
        raise ModelLoadError(
            f"{model}: the tokenizer has no chat template; use an instruct/chat model or add a "
            "chat_template to its tokenizer_config.json"
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_base_model(model: str, where: Placement) -> PreTrainedModel:
    """The causal LM at `model` in `where`'s precision, on `where`'s device."""
    from transformers import AutoModelForCausalLM

    check_model_path(model)
    try:
        loaded = AutoModelForCausalLM.from_pretrained(model, dtype=where.dtype)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{model}: cannot load a causal LM: {_first_line(exc)}") from None
    placed: PreTrainedModel = loaded.to(where.device)  # type: ignore[arg-type]
    return placed


def check_adapter_path(adapter: Path) -> None:
    """Refuse a folder that is not a saved LoRA adapter."""
    if not adapter.is_dir():
        raise ModelLoadError(f"{adapter}: no such adapter folder; give a folder written by train")
    if not (adapter / ADAPTER_CONFIG).is_file():
        raise ModelLoadError(
            f"{adapter}: not a LoRA adapter folder, it has no {ADAPTER_CONFIG}; give the output "
            "folder of an earlier training run"
        )


def load_adapter(base: PreTrainedModel, adapter: Path, *, trainable: bool) -> PeftModel:
    """`base` with the LoRA adapter saved in `adapter`, its weights trainable when asked."""
    from peft import PeftModel

    check_adapter_path(adapter)
    try:
        return PeftModel.from_pretrained(base, str(adapter), is_trainable=trainable)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelLoadError(
            f"{adapter}: cannot load this adapter onto the base model ({_first_line(exc)}); "
            "was it trained on another base model?"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
