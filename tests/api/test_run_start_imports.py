"""What `actionforge run` imports to start a job: until the job is queued (its workers started,
its catalog and job stored, its batches sent), not the web stack, which is imported afterwards
to follow the job and export it; for the whole run, no machine-learning stack, pandas or
pyarrow (a unified export needs none of them). The timings are in
tests/bench/bench_run_startup.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TRAVEL_CATALOG = ROOT / "examples" / "travel_api.yaml"
WEB_STACK = {"fastapi", "starlette", "uvicorn", "httpx", "httpx_sse", "multipart"}
NEVER = {"torch", "transformers", "vllm", "pandas", "pyarrow", "datasets", "trl", "peft"}

# The real `run`, in a process of its own; its job submission is wrapped to note which modules
# were loaded once the job was queued (its own behaviour is unchanged).
SCRIPT = """
import json, sys
from typer.testing import CliRunner
import service.cli.commands.local_submit as local_submit
from service.cli.app import app

seen = {}
submit_here = local_submit.submit_here

def noting_submit_here(*args):
    job = submit_here(*args)
    seen["queued"] = sorted({name.split(".")[0] for name in sys.modules})
    return job

local_submit.submit_here = noting_submit_here
result = CliRunner().invoke(app, ["run", sys.argv[1], "--n", "5", "--out", sys.argv[2]])
assert result.exit_code == 0, result.output
seen["end"] = sorted({name.split(".")[0] for name in sys.modules})
print(json.dumps(seen))
"""


def test_run_queues_its_job_before_the_web_stack_and_never_loads_ml_stacks(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.jsonl"
    env = {name: value for name, value in os.environ.items() if not name.startswith("AF_")}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(TRAVEL_CATALOG), str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT), "AF_API_KEYS": ""},
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(seen["queued"]) & WEB_STACK == set()
    assert set(seen["end"]) & NEVER == set()
    assert {"fastapi", "uvicorn"} <= set(seen["end"])  # the API served the job afterwards
    assert out.read_text().count("\n") == 5
