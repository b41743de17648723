"""Fixtures for tests that need a real LLM: the tiny test model, vLLM's OpenAI-compatible server
running it, and an in-process vLLM engine loaded with it.

A plugin module: load it with `pytest_plugins = ["llm_fixtures"]` in tests/conftest.py (or
`-p llm_fixtures` with tests/ on the path). The server and the engine are session-scoped (each
takes about half a minute to start on CPU); `fresh_vllm_server` starts one a test may kill.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tiny_model import cached_tiny_model

from llm.base import BackendConfig
from llm.vllm_engine import VllmEngineBackend

MAX_MODEL_LEN = 2048
SERVER_START_TIMEOUT_S = 300.0
SERVER_STOP_TIMEOUT_S = 30.0
# The server's processes hand every step to each other: kept together on all CPUs but the last,
# they run several times faster and far more steadily than where the scheduler happens to put
# them (3x on 2 CPUs, see tests/bench/bench_llm.py). The model worker binds itself to these CPUs
# already (vLLM keeps the last one for everything else).
SERVER_CPUS = sorted(os.sched_getaffinity(0))[:-1] or sorted(os.sched_getaffinity(0))
# JSON mode lets a random model pad with whitespace until max_tokens; forbid that padding.
STRUCTURED_OUTPUTS_CONFIG = '{"backend": "xgrammar", "disable_any_whitespace": true}'


@dataclass
class VllmServer:
    """A vLLM server process, leader of its own process group (with its engine process)."""

    process: subprocess.Popen[bytes]
    root_url: str
    log: Path

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self.root_url.rsplit(":", 1)[1])

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible API root, what `BackendConfig.base_url` takes."""
        return f"{self.root_url}/v1"

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's output."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the server and its engine process at once, as a crash would."""
        self._signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """Ask the server and its engine to stop; kill them if they do not in time."""
        self._signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=SERVER_STOP_TIMEOUT_S)
        # The engine process may outlive the server: kill whatever is left of the group.
        self._signal(signal.SIGKILL)
        self.process.wait()

    def pin(self, cpus: list[int]) -> None:
        """Run the server's processes (API server, engine core, model worker) on `cpus` only."""
        import psutil  # a dependency of vLLM

        root = psutil.Process(self.process.pid)
        for process in [root, *root.children(recursive=True)]:
            with suppress(psutil.NoSuchProcess):
                process.cpu_affinity(cpus)

    def _signal(self, sig: signal.Signals) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_vllm_server(
    model_dir: Path, log: Path, extra_args: Sequence[str] = (), port: int | None = None
) -> VllmServer:
    """Start vLLM's OpenAI-compatible server on `model_dir` (with `extra_args` on the command
    line, such as `--served-model-name`; on `port`, default a free one) and return once
    /health answers.

    Fails the test, with the server's last log lines, when it exits or is not up within
    SERVER_START_TIMEOUT_S.
    """
    port = port or free_port()
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir),
        "--dtype", "float32",
        "--max-model-len", str(MAX_MODEL_LEN),
        "--enforce-eager",
        # vLLM's CPU engine dies on seeded requests whose prompt is cut between steps.
        "--no-enable-chunked-prefill",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--structured-outputs-config", STRUCTURED_OUTPUTS_CONFIG,
        *extra_args,
    ]  # fmt: skip
    # Dev mode serves POST /reset_prefix_cache, which the benchmark uses between runs.
    env = {**os.environ, "VLLM_SERVER_DEV_MODE": "1"}
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    server = VllmServer(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            server.stop()
            pytest.fail(
                f"The vLLM server exited with code {process.returncode} while starting; "
                f"its last lines ({log}):\n{server.log_tail()}",
                pytrace=False,
            )
        try:
            if httpx.get(f"{server.root_url}/health", timeout=2).status_code == 200:
                server.pin(SERVER_CPUS)
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    server.stop()
    pytest.fail(
        f"The vLLM server did not answer /health within {SERVER_START_TIMEOUT_S:.0f} s; its "
        f"last lines ({log}):\n{server.log_tail()}",
        pytrace=False,
    )


@contextmanager
def running_vllm_server(
    model_dir: Path, log: Path, extra_args: Sequence[str] = ()
) -> Iterator[VllmServer]:
    """A vLLM server for the duration of the `with` block, always stopped afterwards."""
    server = start_vllm_server(model_dir, log, extra_args)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """The tiny random Llama of tests/tiny_model.py (built once, then cached under .cache/)."""
    return cached_tiny_model()


@pytest.fixture(scope="session")
def vllm_server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL (http://127.0.0.1:PORT/v1) of a vLLM server running the tiny model; the
    model's name on it is `str(tiny_model_dir)`. Shared by the session: do not kill it."""
    log = tmp_path_factory.mktemp("vllm-server") / "server.log"
    with running_vllm_server(tiny_model_dir, log) as server:
        yield server.base_url


@pytest.fixture
def fresh_vllm_server(tiny_model_dir: Path, tmp_path: Path) -> Iterator[VllmServer]:
    """A vLLM server of this test's own, which the test may kill; stopped after the test."""
    with running_vllm_server(tiny_model_dir, tmp_path / "server.log") as server:
        yield server


@pytest.fixture(scope="session")
def vllm_engine_backend(tiny_model_dir: Path) -> Iterator[VllmEngineBackend]:
    """An in-process vLLM engine on the tiny model (max_model_len 2048), closed at the end."""
    backend = VllmEngineBackend(
        BackendConfig(
            backend="vllm",
            model=str(tiny_model_dir),
            engine_options={"max_model_len": MAX_MODEL_LEN},
        )
    )
    try:
        yield backend
    finally:
        backend.close()
