"""The held-out split of a catalog's accepted samples: evaluation data for every model version,
never trained on, never shown to the generator as a few-shot example.

A sample is held out when a hash of its id falls in the lowest AF_TRAIN_HELDOUT_FRACTION of the
hash range. It depends on nothing but the id, so it stays put as data grows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

_HASH_RANGE = 2**64


def is_heldout(sample_id: str, fraction: float) -> bool:
    """Whether the sample is held out: its id's SHA-256 falls in the lowest `fraction` of the
    hash range. Depends on the id alone, so the split never moves as a catalog grows."""
    digest = hashlib.sha256(sample_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") < fraction * _HASH_RANGE


def split_heldout(sample_ids: Iterable[str], fraction: float) -> tuple[list[str], list[str]]:
    """(ids to train on, held-out ids), each in the order given."""
    train: list[str] = []
    heldout: list[str] = []
    for sample_id in sample_ids:
        (heldout if is_heldout(sample_id, fraction) else train).append(sample_id)
    return train, heldout
