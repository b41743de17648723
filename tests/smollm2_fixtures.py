"""Fixtures of SmolLM2-135M-Instruct, a real instruct model (tests/smollm2_model.py): its folder,
and vLLM's OpenAI-compatible server running it under the name `smollm2`.

A plugin module, loaded from tests/conftest.py's `pytest_plugins`. The server is session-scoped
(about 20 s to start on CPU); it runs beside the tiny model's server only when a session uses
both, and the tests use one at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_fixtures import VllmServer, running_vllm_server
from smollm2_model import MODEL, cached_smollm2


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """SmolLM2's float32 safetensors folder, fetched and converted once (about half a minute),
    then cached under .cache/."""
    return cached_smollm2()


@pytest.fixture(scope="session")
def smollm2_server(
    smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VllmServer]:
    """vLLM's server running SmolLM2, which answers to the model name `MODEL.served_name`
    (`smollm2`). Shared by the session: do not kill it."""
    log = tmp_path_factory.mktemp("smollm2-server") / "server.log"
    served = ["--served-model-name", MODEL.served_name]
    with running_vllm_server(smollm2_dir, log, extra_args=served) as server:
        yield server
