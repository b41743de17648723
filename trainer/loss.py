"""The loss a model gives samples' assistant tokens: the same labels as training, no gradient.

Used to report held-out loss before and after training, and by tests to check that training
lowered the loss on what it was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from trainer.encode import IGNORE_INDEX, ChatEncoder, Encoded
from trainer.errors import TrainingDataError
from trainer.render import render
from unified.model import Sample

if TYPE_CHECKING:
    from torch import nn


def mean_loss(model: nn.Module, rows: Sequence[Encoded], pad_id: int, batch_size: int = 8) -> float:
    """Mean cross-entropy per labelled token of `rows` under `model` (eval mode, no gradient)."""
    import torch
    import torch.nn.functional as F

    if not rows:
        raise TrainingDataError("no samples to compute a loss on")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64)
    counted = 0
    try:
        with torch.no_grad():
            for start in range(0, len(rows), batch_size):
                batch = rows[start : start + batch_size]
                width = max(len(row) for row in batch)
                ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
                labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
                attention = torch.zeros((len(batch), width), dtype=torch.long)
                for i, row in enumerate(batch):
                    ids[i, : len(row)] = torch.tensor(row.input_ids)
                    labels[i, : len(row)] = torch.tensor(row.labels)
                    attention[i, : len(row)] = 1
                logits = model(input_ids=ids.to(device), attention_mask=attention.to(device)).logits
                targets = labels[:, 1:].to(device)
                total += F.cross_entropy(
                    logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                    targets.reshape(-1),
                    ignore_index=IGNORE_INDEX,
                    reduction="sum",
                ).cpu()
                counted += int((targets != IGNORE_INDEX).sum())
    finally:
        model.train(was_training)
    return float(total) / max(counted, 1)


def sample_loss(
    model: str, samples: Sequence[Sample], adapter: Path | None = None, batch_size: int = 8
) -> float:
    """Mean loss per assistant token of `samples` under the base model `model` (a folder or
    name), with the LoRA adapter in `adapter` when given."""
    from trainer.modeling import load_adapter, load_base_model, load_tokenizer, placement

    tokenizer = load_tokenizer(model)
    encoder = ChatEncoder(tokenizer)
    rows = [encoder.encode(sample.id, render(sample)) for sample in samples]
    net: nn.Module = load_base_model(model, placement())
    if adapter is not None:
        net = load_adapter(net, adapter, trainable=False)  # type: ignore[arg-type]
    return mean_loss(net, rows, tokenizer.pad_token_id, batch_size)
