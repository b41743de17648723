"""Extension points end to end: a plug-in package found only through its entry points adds a
generator, a verification stage with options, an LLM backend and an export format, and a whole
job (`actionforge run`: the API and the embedded workers in their own processes) uses all four
with no edit anywhere in ActionForge."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from plugin_package.actionforge_example_plugin import ENTRY_POINTS, QUERY_TOO_LONG

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_DIR = Path(__file__).resolve().parent / "plugin_package"
TRAVEL_CATALOG = ROOT / "examples" / "travel_api.yaml"
MAX_CHARS = 70


def install_entry_points(site: Path) -> None:
    """What installing the plug-in package would leave: its dist-info with entry_points.txt."""
    info = site / "actionforge_example_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: actionforge-example-plugin\nVersion: 0.1\n"
    )
    groups = [
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in entries.items())
        for group, entries in ENTRY_POINTS.items()
    ]
    (info / "entry_points.txt").write_text("\n".join(groups))


def run_actionforge(args: list[str], cwd: Path, site: Path) -> subprocess.CompletedProcess[str]:
    script = shutil.which("actionforge", path=str(Path(sys.executable).parent))
    assert script, "the console script `actionforge` is not installed beside this Python"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AF_")}
    env.update(
        AF_DATA_DIR=str(cwd / "data"),
        AF_BATCH_SIZE="10",
        PYTHONPATH=os.pathsep.join([str(site), str(PLUGIN_DIR)]),
    )
    return subprocess.run(
        [script, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_a_plugin_package_adds_a_generator_a_stage_a_backend_and_an_export_format(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    install_entry_points(site)

    listed = run_actionforge(["formats"], tmp_path, site)
    assert listed.returncode == 0, listed.stderr
    assert "queries" in listed.stdout

    done = run_actionforge(
        [
            "run",
            str(TRAVEL_CATALOG),
            "--n",
            "40",
            "--generator",
            "shouting",
            "--generator-options",
            '{"exclaim": true}',
            "--verify",
            "format,semantic",
            "--stage-options",
            # The plug-in judge approves everything: calibration would rightly refuse it.
            f'{{"short_query": {{"max_chars": {MAX_CHARS}}}, "semantic": {{"min_accuracy": 0}}}}',
            "--judge",
            '{"backend": "approving", "model": "none"}',
            "--format",
            "queries",
            "--out",
            "queries.txt",
        ],
        tmp_path,
        site,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [" ".join(line.replace("│", " ").split()) for line in done.stdout.splitlines()]
    steps = [row.split()[0] for row in rows if row.split() and row.split()[0] in STEP_NAMES]
    # The generator's required stage runs first; the judge is the plug-in backend.
    assert steps == ["requested", "generated", "short_query", "format", "semantic", "accepted"]
    accepted = int(next(row for row in rows if row.startswith("accepted ")).split()[1])
    rejected = next(row for row in rows if row.startswith(QUERY_TOO_LONG))
    assert 0 < accepted < 40
    assert int(rejected.split()[2]) == 40 - accepted
    assert "LLM: 40 requests" in " ".join(done.stdout.split())  # the generator's usage report

    queries = (tmp_path / "queries.txt").read_text().splitlines()
    assert len(queries) == accepted
    assert all(q == q.upper() and q.endswith("!") and len(q) <= MAX_CHARS for q in queries)


STEP_NAMES = {"requested", "generated", "short_query", "format", "semantic", "accepted"}
