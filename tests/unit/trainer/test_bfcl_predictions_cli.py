"""`actionforge eval --predictions FILE --out VERDICTS`: verdicts in input order, a table per
category, and one readable line (exit 2) for bad input; no model is loaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from service.cli.commands.train import register_train_commands

app = typer.Typer()
register_train_commands(app)
runner = CliRunner()

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "required": ["city"],
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        },
    },
}
QUESTION = [{"role": "user", "content": "Weather in London and Paris for 3 days?"}]


def row(row_id: str, prediction: Any, **extra: Any) -> dict[str, Any]:
    return {
        "id": row_id,
        "question": QUESTION,
        "tools": [WEATHER_TOOL],
        "reference": [
            {"get_weather": {"city": ["London", "LDN"], "days": [3, ""]}},
            {"get_weather": {"city": ["Paris"], "days": [3, ""]}},
        ],
        "prediction": prediction,
        **extra,
    }


def write(tmp_path: Path, rows: list[Any]) -> Path:
    path = tmp_path / "predictions.jsonl"
    path.write_text("".join(r if isinstance(r, str) else json.dumps(r) + "\n" for r in rows))
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["eval", *args])
    return result.exit_code, result.stdout, result.stderr


def test_predictions_are_scored_in_input_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_model(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a model was asked to answer")

    monkeypatch.setattr("trainer.evaluate.generate", no_model)
    paris = {"name": "get_weather", "arguments": {"city": "paris"}}
    rows = [
        row("a", [paris, {"name": "get_weather", "arguments": '{"city": "ldn", "days": 3}'}]),
        row("b", 'Sure: [{"name": "get_weather", "arguments": {"city": "London"}}]'),
        row("c", [paris, {"name": "get_weather", "arguments": {"city": "Rome"}}]),
        row("live_simple_4-1-0", [{"name": "get_weather", "arguments": {"city": "London"}}]),
        row("e", '[{"name": "get_weather", "arguments": {"city": '),
        row("f", [paris, {"name": "get_weather", "arguments": {"city": "London", "days": 3.0}}]),
        row("g", '[get_weather(city="Paris", days=3), get_weather(city="London")]'),
        row("h", "I cannot look up the weather."),
    ]
    rows[3]["reference"] = rows[3]["reference"][:1]
    out = tmp_path / "verdicts.jsonl"
    code, stdout, stderr = invoke("--predictions", str(write(tmp_path, rows)), "--out", str(out))
    assert code == 0, stderr
    verdicts = [json.loads(line) for line in out.read_text().splitlines()]
    assert verdicts == [
        {"id": "a", "valid": True, "reason": "valid"},
        {"id": "b", "valid": False, "reason": "parallel_function_checker_no_order:wrong_count"},
        {
            "id": "c",
            "valid": False,
            "reason": "parallel_function_checker_no_order:cannot_find_match",
        },
        {"id": "live_simple_4-1-0", "valid": True, "reason": "valid"},
        {"id": "e", "valid": False, "reason": "ast_decoder:decoder_failed"},
        {
            "id": "f",
            "valid": False,
            "reason": "parallel_function_checker_no_order:cannot_find_match",
        },
        {"id": "g", "valid": True, "reason": "valid"},
        {"id": "h", "valid": False, "reason": "parallel_function_checker_no_order:wrong_count"},
    ]
    assert "parallel" in stdout and "live_simple" in stdout and "overall" in stdout
    assert "wrote 8 verdicts" in stdout


def test_json_summary_per_category(tmp_path: Path) -> None:
    rows = [row("a", []), row("b", [], category="live_parallel_multiple")]
    out = tmp_path / "verdicts.jsonl"
    code, stdout, _ = invoke(
        "--predictions", str(write(tmp_path, rows)), "--out", str(out), "--json"
    )
    assert code == 0
    summary = json.loads(stdout)
    assert list(summary) == ["parallel", "live_parallel_multiple", "overall"]
    assert summary["overall"]["rows"] == 2 and summary["overall"]["valid"] == 0


def assert_one_line(code: int, err: str, *parts: str) -> None:
    assert code == 2, err
    assert err.startswith("error: "), err
    assert len(err.strip().splitlines()) == 1, err
    for part in parts:
        assert part in err, err


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("{not json\n", ["row 2", "not JSON"]),
        (row("x", [], reference=[]), ["row 2", "'x'", '"reference" must be a non-empty list']),
        (row("x", [], category="irrelevance"), ["row 2", "unknown category 'irrelevance'"]),
        ({"id": "x", "tools": [], "reference": [{"f": {}}]}, ["row 2", '"prediction" is missing']),
        (row("x", [], reference=[{"get_rain": {}}]), ["row 2", "'get_rain', which no offered"]),
        (row("x", "[f(a=", reference=[{"get_rain": {}}]), ["row 2", "'get_rain', which no"]),
        (
            row(
                "x",
                [],
                tools=[
                    {
                        "name": "get_weather",
                        "parameters": {"properties": {"city": {"type": "place"}}},
                    }
                ],
            ),
            ["row 2", "argument 'city': type 'place'"],
        ),
    ],
)
def test_bad_rows_are_one_line_naming_the_row(
    tmp_path: Path, line: Any, expected: list[str]
) -> None:
    path = write(tmp_path, [row("ok", []), line])
    code, _, err = invoke("--predictions", str(path), "--out", str(tmp_path / "v.jsonl"))
    assert_one_line(code, err, "predictions.jsonl", *expected)
    assert not (tmp_path / "v.jsonl").exists()


def test_option_mistakes_are_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, [row("ok", [])])
    code, _, err = invoke("--predictions", str(path))
    assert_one_line(code, err, "--out")
    code, _, err = invoke("--predictions", str(path), "--out", "v.jsonl", "--model", "m")
    assert_one_line(code, err, "leave out --model")
    code, _, err = invoke("--data", str(path))
    assert_one_line(code, err, "--model PATH and --data FILE")
    code, _, err = invoke("--predictions", str(tmp_path / "none.jsonl"), "--out", "v.jsonl")
    assert_one_line(code, err, "none.jsonl")
