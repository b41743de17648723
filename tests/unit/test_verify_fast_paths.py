"""`actionforge verify` writes the same verdict file, byte for byte, with its fast paths (rows
decoded by orjson with their tool lists validated once, the compiled validity check, the
execution stage's runner kept across chunks) as with the plain ones, on real rows: the bundled
travel calls, every dataset in tests/data, BFCL's questions (bfcl-eval), a template job's rows,
wrong answers to all of them, and rows that cannot be read."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from real_unified_rows import (
    ROOT,
    TRAVEL_CATALOG,
    bfcl_samples,
    dataset_samples,
    template_job_samples,
    wrong_answers,
)

import unified.formats.unified_lines
import verifiers.format
import verifiers.mock_responses
from generators.base import GENERATORS, GenerationRequest
from service.cli.commands.verify import verify_file
from unified.catalogs import load_catalog
from unified.model import Sample
from verifiers.stages import StageContext, build_stages, run_stages

UNREADABLE = [
    "not json",
    '{"id": "x", "query": "q", "meta": {"created": "yesterday"}}',
    '{"id": "x", "query": "q", "steps": [{"tool_calls": [{"name": "f", "arguments": '
    + "[" * 250
    + "]" * 250
    + "}]}]}",
    "[1, 2]",
]
ODD = [
    '{"id": "x", "query": "q", "tools": [{"name": "f", "parameters": {"type": "object", '
    '"properties": {"n": {"type": "integer", "maximum": 5}}}}], "steps": [{"tool_calls": '
    '[{"name": "f", "arguments": {"n": 1e400}}, {"name": "f", "arguments": {"n": '
    + str(2**70 + 1)
    + "}}]}]}",
    '{"id": "x", "query": "q", "tools": [{"name": "f", "parameters": {"type": "object", '
    '"properties": {"n": {"type": "number", "multipleOf": 0.1}}}}], "steps": [{"tool_calls": '
    '[{"name": "f", "arguments": "{\\"n\\": 0.3}"}]}]}',
]


class PlainParser:
    """How unified rows were read before: pydantic's JSON parser, every row in full."""

    def parse_json(self, raw: bytes | str) -> Sample:
        return Sample.model_validate_json(raw)

    def parse_value(self, value: Any) -> Sample:
        return Sample.model_validate(value)


def rows_file(path: Path, samples: list[Sample], extra: list[str]) -> Path:
    lines = [sample.to_json() for sample in samples]
    for i, line in enumerate(extra):
        lines.insert(min(len(lines), 7 * (i + 1)), line)
    path.write_text("\n".join(lines) + "\n")
    return path


def verdict_files(
    monkeypatch: pytest.MonkeyPatch, rows: Path, stages: str, catalog: Path | None, out: Path
) -> tuple[bytes, bytes]:
    verify_file(rows, "unified", out, stages, catalog, {})
    fast = out.read_bytes()
    with monkeypatch.context() as plain:
        plain.setattr(unified.formats.unified_lines, "SampleParser", PlainParser)
        plain.setattr(verifiers.format, "fast_check", lambda _schema: None)
        plain.setattr(verifiers.mock_responses, "fast_check", lambda _schema: None)
        verify_file(rows, "unified", out, stages, catalog, {})
    return fast, out.read_bytes()


@pytest.mark.parametrize("stages", ["format", "query,format,grounding,coverage", "format,dedup"])
def test_verdicts_on_real_rows_are_those_of_the_plain_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stages: str
) -> None:
    samples = dataset_samples() + template_job_samples() + bfcl_samples()
    samples += wrong_answers(samples)
    rows = rows_file(tmp_path / "rows.jsonl", samples, UNREADABLE + ODD)
    fast, plain = verdict_files(monkeypatch, rows, stages, None, tmp_path / "verdicts.jsonl")
    assert fast == plain
    assert fast.count(b'"accepted":false') > 300
    assert fast.count(b'"stage":"read"') == len(UNREADABLE)


def test_execution_verdicts_on_the_travel_catalog_are_those_of_the_plain_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples = template_job_samples(600)
    samples += wrong_answers(samples)
    rows = rows_file(tmp_path / "rows.jsonl", samples, UNREADABLE)
    fast, plain = verdict_files(
        monkeypatch, rows, "format,execution,dedup", TRAVEL_CATALOG, tmp_path / "verdicts.jsonl"
    )
    assert fast == plain
    assert fast.count(b'"stage":"dedup"') > 300  # passed format and execution


def test_mock_answers_are_those_of_the_plain_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    tools = load_catalog(TRAVEL_CATALOG).tools
    samples = GENERATORS.get("template")().generate(tools, GenerationRequest(n=300, seed=11))
    stages = build_stages(["execution"])
    fast = run_stages(stages, samples, StageContext(tools)).samples
    monkeypatch.setattr(verifiers.format, "fast_check", lambda _schema: None)
    monkeypatch.setattr(verifiers.mock_responses, "fast_check", lambda _schema: None)
    plain = run_stages(build_stages(["execution"]), samples, StageContext(tools)).samples
    assert fast == plain
    assert sum(len(step.results) for sample in plain for step in sample.steps) > 300


HEAVY_STACKS = {"fastapi", "starlette", "sqlalchemy", "alembic", "celery", "kombu", "uvicorn"}


def test_verify_loads_neither_the_web_queue_nor_database_stack(tmp_path: Path) -> None:
    rows = rows_file(tmp_path / "rows.jsonl", template_job_samples(5), [])
    script = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from service.cli.app import app\n"
        f"args = ['verify', {str(rows)!r}, '--from', 'unified', '--out', "
        f"{str(tmp_path / 'out.jsonl')!r}, '--stages', 'format,execution,dedup', "
        f"'--catalog', {str(TRAVEL_CATALOG)!r}]\n"
        "result = CliRunner().invoke(app, args)\n"
        "assert result.exit_code == 0, result.output\n"
        f"print(sorted({{name.split('.')[0] for name in sys.modules}} & {HEAVY_STACKS!r}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert (tmp_path / "out.jsonl").read_text().count("\n") == 5
