"""`actionforge verify --stages`: the stages run in order over a dataset file, one verdict per
row; the execution stage against a catalog's mock API or its Python functions in the sandbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pet_conversations import (
    PETSTORE_EXPANDED,
    added_id,
    added_pet,
    deleted_then_shown,
    shown_again,
)
from typer.testing import CliRunner

from service.cli.app import app
from unified.formats import write_samples
from unified.model import Sample, Step, ToolCall

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CALLS = EXAMPLES / "travel_calls.jsonl"
TRAVEL = EXAMPLES / "travel_api.yaml"
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def verdicts(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.read_text().splitlines()]


def one_line(text: str) -> str:
    return " ".join(text.split())


def test_the_stages_run_in_order_and_each_row_gets_the_verdict_that_decided_it(
    tmp_path: Path,
) -> None:
    doubled = tmp_path / "doubled.jsonl"
    doubled.write_text(CALLS.read_text() * 2)  # every row twice, ids and all
    out = tmp_path / "verdicts.jsonl"
    code, stdout, err = invoke(
        "verify", str(doubled), "--from", "xlam", "--catalog", str(TRAVEL),
        "--stages", "format,execution,dedup", "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    rows = verdicts(out)
    assert [r["index"] for r in rows] == list(range(24))
    assert [r["id"] for r in rows] == [str(i) for i in range(12)] * 2
    first, second = rows[:12], rows[12:]
    format_only = tmp_path / "format.jsonl"
    invoke(
        "verify", str(CALLS), "--from", "xlam", "--catalog", str(TRAVEL), "--out", str(format_only)
    )
    by_format = verdicts(format_only)
    for row, alone in zip(first, by_format, strict=True):
        if alone["accepted"]:
            assert (row["stage"], row["accepted"]) == ("dedup", True)
        else:
            assert row == alone  # rejected by format: no later stage ran
    for index, (row, alone) in enumerate(zip(second, by_format, strict=True)):
        if alone["accepted"]:
            assert (row["stage"], row["reason"]) == ("dedup", "duplicate")
            assert row["detail"].startswith(f"duplicate of sample '{index}': the same query")
        else:
            assert row == {**alone, "index": index + 12}
    assert "24 rows verified (format, execution, dedup)" in one_line(stdout)
    assert "duplicate" in stdout


def test_execution_runs_a_python_catalogs_functions(tmp_path: Path) -> None:
    catalog = tmp_path / "calc.py"
    catalog.write_text(
        "def divide(a: float, b: float) -> float:\n    '''Divide a by b.'''\n    return a / b\n"
    )
    rows = [
        Sample(
            id=f"r{i}",
            query=f"What is 1 divided by {b}?",
            steps=[Step(tool_calls=[ToolCall(name="divide", arguments={"a": 1, "b": b})])],
        )
        for i, b in enumerate([4, 0])
    ]
    data = tmp_path / "rows.jsonl"
    with data.open("wb") as sink:
        write_samples(rows, sink, "unified")
    out = tmp_path / "verdicts.jsonl"
    code, _, err = invoke(
        "verify", str(data), "--from", "unified", "--catalog", str(catalog),
        "--stages", "format,execution", "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    found = verdicts(out)
    assert [(r["id"], r["stage"], r["reason"]) for r in found] == [
        ("r0", "execution", None),
        ("r1", "execution", "execution_error"),
    ]
    assert found[1]["detail"].startswith("tool 'divide': ZeroDivisionError")


def test_execution_without_a_catalog_is_one_line_saying_what_to_add(tmp_path: Path) -> None:
    out = tmp_path / "v.jsonl"
    code, _, err = invoke(
        "verify", str(CALLS), "--from", "xlam", "--stages", "format,execution", "--out", str(out)
    )
    assert code == 2
    assert one_line(err) == (
        "error: --stages execution needs --catalog: the calls are made against the catalog's "
        "tools (a mock API, or a Python module's functions); give --catalog FILE"
    )
    assert not out.exists()


def test_stage_lists_that_cannot_run_say_what_to_change(tmp_path: Path) -> None:
    out = str(tmp_path / "v.jsonl")
    code, _, err = invoke(
        "verify", str(CALLS), "--from", "xlam", "--stages", "format,vibes", "--out", out
    )
    assert code == 2
    assert one_line(err).startswith("error: Unknown verification stage 'vibes'. Known: ")
    code, _, err = invoke(
        "verify", str(CALLS), "--from", "xlam", "--stages", "dedup,format", "--out", out
    )
    assert code == 2
    assert one_line(err) == (
        "error: --stages: stage 'dedup' must come last (it compares the samples that passed "
        "every other stage); move it after 'format'"
    )
    code, _, err = invoke("verify", str(CALLS), "--from", "xlam", "--stages", " , ", "--out", out)
    assert code == 2
    assert one_line(err) == "error: --stages is empty; list stages in order, e.g. format,execution"


DATA = ROOT / "tests" / "data" / "formats"


def test_a_file_mixing_single_and_multi_turn_rows_gets_a_verdict_for_every_row(
    tmp_path: Path,
) -> None:
    questions = DATA / "bfcl_multi_turn_questions.jsonl"
    answers = DATA / "bfcl_multi_turn_possible_answers.jsonl"
    functions = DATA / "bfcl_gorilla_file_system_functions.jsonl"
    mixed = tmp_path / "mixed.jsonl"
    code, _, err = invoke(
        "convert", str(questions), "--from", "bfcl", "--answers", str(answers),
        "--functions", str(functions), "--to", "unified", "--out", str(mixed),
    )  # fmt: skip
    assert code == 0, err
    single = Sample(
        id="one-turn",
        tools=[
            tool
            for tool in Sample.from_json(mixed.read_text().splitlines()[0]).tools
            if tool.name == "ls"
        ],
        query="Please list every file here, hidden ones too.",
        steps=[Step(tool_calls=[ToolCall(name="ls", arguments={"a": True})])],
    )
    with mixed.open("a") as stream:
        stream.write(single.to_json() + "\n")
    out = tmp_path / "verdicts.jsonl"
    code, stdout, err = invoke(
        "verify", str(mixed), "--from", "unified", "--stages", "format,grounding,dedup",
        "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    rows = verdicts(out)
    assert [r["id"] for r in rows] == [
        "multi_turn_base_1",
        "multi_turn_base_3",
        "multi_turn_miss_func_3",
        "one-turn",
    ]
    # base_1: every value comes from the user's turns; base_3 and miss_func_3 copy file names
    # that only the (unrecorded) result of `find` holds.
    assert [(r["stage"], r["reason"]) for r in rows] == [
        ("dedup", None),
        ("grounding", "value_not_in_query"),
        ("grounding", "value_not_in_query"),
        ("dedup", None),
    ]
    assert rows[1]["detail"].startswith('turn 2: call cp: argument source = "test_image1.jpg"')
    assert [r["accepted"] for r in rows] == [True, False, False, True]
    assert "value_not_in_query" in one_line(stdout)


def test_execution_plays_each_conversation_against_its_own_state_of_the_mock(
    tmp_path: Path,
) -> None:
    rows = tmp_path / "pets.jsonl"
    invented = added_id() + 17
    samples = [
        added_pet().model_copy(update={"id": "one-turn"}),
        shown_again(),
        shown_again(invented).model_copy(update={"id": "pet-invented"}),
        deleted_then_shown(),
        shown_again().model_copy(update={"id": "pet-talk-again"}),
    ]
    with rows.open("wb") as sink:
        write_samples(samples, sink, "unified")
    out = tmp_path / "verdicts.jsonl"
    code, stdout, err = invoke(
        "verify", str(rows), "--from", "unified", "--catalog", str(PETSTORE_EXPANDED),
        "--stages", "query,format,grounding,coverage,execution", "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    judged = verdicts(out)
    assert [(r["id"], r["stage"], r["reason"]) for r in judged] == [
        ("one-turn", "execution", None),
        ("pet-talk", "execution", None),
        ("pet-invented", "grounding", "value_not_in_query"),
        ("pet-gone", "execution", "resource_not_found"),
        # The pet deleted in pet-gone's conversation is still there in this one.
        ("pet-talk-again", "execution", None),
    ]
    assert judged[2]["detail"].startswith(f"turn 2: call find_pet_by_id: argument id = {invented}")
    assert judged[3]["detail"].startswith("turn 4, call 0 ('find_pet_by_id'): argument 'id'")
    assert "multi_turn_not_judged" not in out.read_text() + stdout
