"""Scraping /metrics over real HTTP and reading it with prometheus-client's own parser, and
running `actionforge serve` as a process of its own (the way its metrics folder is set up)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
SERVE_READY_SECONDS = 120


class Scrape:
    """One scrape's samples: name -> [(labels, value)]."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.samples[sample.name].append((dict(sample.labels), sample.value))

    def names(self) -> set[str]:
        return set(self.samples)

    def total(self, name: str, **labels: str) -> float:
        """The sum of `name`'s samples whose labels include `labels`."""
        return sum(
            value
            for have, value in self.samples.get(name, [])
            if all(have.get(k) == v for k, v in labels.items())
        )

    def by(self, name: str, *label_names: str) -> dict[tuple[str, ...], float]:
        """`name`'s samples added up by the values of `label_names`, zeros left out."""
        summed: dict[tuple[str, ...], float] = defaultdict(float)
        for labels, value in self.samples.get(name, []):
            summed[tuple(labels.get(n, "") for n in label_names)] += value
        return {key: value for key, value in summed.items() if value}


def scrape(url: str, **headers: str) -> Scrape:
    """GET `url` (a /metrics) and parse it; fails the test on anything but 200."""
    response = httpx.get(url, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return Scrape(response.text)


def actionforge_command() -> list[str]:
    script = shutil.which("actionforge", path=str(Path(sys.executable).parent))
    assert script, "the console script `actionforge` is not installed beside this Python"
    return [script]


def service_environment(**settings: Any) -> dict[str, str]:
    """This environment without AF_* or PROMETHEUS_* variables, plus `settings` as AF_*, with the
    checkout under test first on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AF_", "PROMETHEUS_MULTIPROC"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update({f"AF_{name.upper()}": str(value) for name, value in settings.items()})
    return env


@contextmanager
def served(port: int, env: dict[str, str], log: Path, cwd: Path) -> Iterator[str]:
    """`actionforge serve --port port` with `env` until the block ends; its base URL once
    /v1/health answers."""
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*actionforge_command(), "serve", "--port", str(port)],
            cwd=cwd,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + SERVE_READY_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"serve exited with {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"serve did not answer in {SERVE_READY_SECONDS} s:\n{log.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()  # serve stops its embedded workers on the way out
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
