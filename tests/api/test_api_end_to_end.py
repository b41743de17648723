"""The whole path on the embedded default, through the installed `actionforge` command:
`run` on the bundled catalog, and `serve` + `submit --wait` + `export`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from api_support import TRAVEL_CATALOG
from httpx_sse import connect_sse

from unified.formats import read_samples
from verifiers import FormatVerifier

pytestmark = pytest.mark.slow


def actionforge() -> str:
    script = shutil.which("actionforge", path=str(Path(sys.executable).parent))
    assert script, "the console script `actionforge` is not installed beside this Python"
    return script


def environment(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AF_")}
    return {**env, "AF_DATA_DIR": str(data_dir), "AF_BATCH_SIZE": "20", **extra}


def test_run_makes_a_dataset_from_the_bundled_catalog(tmp_path: Path) -> None:
    out = tmp_path / "travel.jsonl"
    done = subprocess.run(
        [actionforge(), "run", str(TRAVEL_CATALOG), "--n", "120", "--out", str(out)],
        cwd=tmp_path,
        env=environment(tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    funnel = [" ".join(line.replace("│", " ").split()) for line in done.stdout.splitlines()]
    assert funnel[0].startswith("job ") and ": succeeded in " in funnel[0]
    assert "requested 120" in funnel
    assert "generated 120" in funnel
    accepted = next(line for line in funnel if line.startswith("accepted "))
    accepted_count = int(accepted.split()[1].replace(",", ""))
    assert accepted_count > 0

    with read_samples(out, "unified") as reader:
        samples = list(reader)
    assert len(samples) == accepted_count
    assert len({s.id for s in samples}) == len(samples)
    verifier = FormatVerifier()
    assert all(verifier.verify(s, s.tools).accepted for s in samples)
    assert f"wrote {accepted_count} unified rows" in " ".join(done.stderr.split())
    assert (tmp_path / "data" / "workers.log").exists()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def children_of(pid: int) -> set[int]:
    """The ids of the processes whose parent is `pid` (Linux /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], dict[str, str]]]:
    """`actionforge serve` on a free port with the embedded queue; its URL, process, env."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = environment(tmp_path / "data", AF_API_URL=url)
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [actionforge(), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not answer within two minutes"
            time.sleep(0.2)
        yield url, process, env
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()


def test_serve_runs_the_workers_that_submit_waits_for(
    served: tuple[str, subprocess.Popen[bytes], dict[str, str]], tmp_path: Path
) -> None:
    url, process, env = served
    submitted = subprocess.run(
        [actionforge(), "submit", str(TRAVEL_CATALOG), "--n", "80", "--seed", "5", "--wait"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.splitlines()[0].strip()
    job = httpx.get(f"{url}/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded"
    counts = job["counts"]
    assert counts["generated"] == 80
    assert counts["accepted"] + counts["rejected"] == 80
    assert f"accepted {counts['accepted']}" in " ".join(
        " ".join(submitted.stdout.replace("│", " ").split()).split()
    )

    out = tmp_path / "travel.parquet"
    exported = subprocess.run(
        [actionforge(), "export", job_id, "--format", "parquet", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert exported.returncode == 0, exported.stderr
    assert pq.read_metadata(out).num_rows == counts["accepted"]

    status = subprocess.run(
        [actionforge(), "status", job_id, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert json.loads(status.stdout)["counts"] == counts

    workers = children_of(process.pid)
    assert workers, "serve started its worker processes"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 0
    assert not {pid for pid in workers if Path(f"/proc/{pid}").exists()}


def test_serve_stops_on_sigterm_with_an_event_stream_open(
    served: tuple[str, subprocess.Popen[bytes], dict[str, str]],
) -> None:
    """uvicorn waits for open responses before it stops: `serve` ends a job's event stream
    when it is told to stop, instead of waiting for the job."""
    url, process, _ = served
    with httpx.Client(base_url=url, timeout=30) as http:
        upload = http.post(
            "/v1/catalogs",
            files={"file": (TRAVEL_CATALOG.name, TRAVEL_CATALOG.read_bytes(), "application/yaml")},
        )
        job = http.post("/v1/jobs", json={"catalog_id": upload.json()["id"], "n": 5000})
        assert job.status_code == 202, job.text
        with connect_sse(http, "GET", f"/v1/jobs/{job.json()['id']}/events") as source:
            events = source.iter_sse()
            assert next(events).event == "progress"
            process.send_signal(signal.SIGTERM)
            rest = [event.event for event in events]
    assert "finished" not in rest
    assert process.wait(timeout=120) == 0
