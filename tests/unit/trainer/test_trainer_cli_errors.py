"""`actionforge train` and `eval` turn bad input into one readable line and exit 2, before any
model loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from service.cli.commands.train import register_train_commands
from unified.formats import write_samples
from unified.model import Sample, Step

app = typer.Typer()
register_train_commands(app)
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stderr


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "data.jsonl"
    write_samples([Sample(id="1", query="hi", steps=[Step(answer="hello")])], path, "unified")
    return path


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A folder that looks like a model to the path checks (it is never loaded here)."""
    path = tmp_path / "model"
    path.mkdir()
    (path / "config.json").write_text("{}")
    return path


def assert_one_line(code: int, err: str, *parts: str) -> None:
    assert code == 2, err
    assert err.startswith("error: ")
    assert len(err.strip().splitlines()) == 1, err
    for part in parts:
        assert part in err, err


def test_a_missing_data_file(tmp_path: Path, model_dir: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    code, err = invoke("train", "--data", str(missing), "--model", str(model_dir))
    assert_one_line(code, err, "nope.jsonl", "No such file")
    code, err = invoke("eval", "--data", str(missing), "--model", str(model_dir))
    assert_one_line(code, err, "nope.jsonl")


def test_a_file_without_samples(tmp_path: Path, model_dir: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code, err = invoke("train", "--data", str(empty), "--model", str(model_dir))
    assert_one_line(code, err, "empty.jsonl: no samples in the file")


def test_a_model_path_that_is_not_a_model(tmp_path: Path, data: Path) -> None:
    code, err = invoke("train", "--data", str(data), "--model", str(tmp_path))
    assert_one_line(code, err, "not a model folder, it has no config.json")
    code, err = invoke("eval", "--data", str(data), "--model", str(data))
    assert_one_line(code, err, "is a file, not a model folder")


def test_an_adapter_given_as_the_model_says_so(tmp_path: Path, data: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    code, err = invoke("eval", "--data", str(data), "--model", str(adapter))
    assert_one_line(code, err, "it is a LoRA adapter: pass it as --adapter")


def test_an_adapter_folder_that_is_not_an_adapter(
    tmp_path: Path, data: Path, model_dir: Path
) -> None:
    code, err = invoke(
        "eval", "--data", str(data), "--model", str(model_dir), "--adapter", str(tmp_path)
    )
    assert_one_line(code, err, "not a LoRA adapter folder, it has no adapter_config.json")
    code, err = invoke(
        "train", "--data", str(data), "--model", str(model_dir), "--adapter", str(tmp_path / "x")
    )
    assert_one_line(code, err, "no such adapter folder")


def test_no_model_at_all(data: Path) -> None:
    code, err = invoke("train", "--data", str(data))
    assert_one_line(code, err, "no base model given; pass --model")


def test_a_bad_config_file(tmp_path: Path, data: Path, model_dir: Path) -> None:
    config = tmp_path / "train.json"
    config.write_text(json.dumps({"lora_r": 8, "learnig_rate": 0.1}))
    code, err = invoke(
        "train", "--data", str(data), "--model", str(model_dir), "--config", str(config)
    )
    assert_one_line(code, err, "train.json: unknown key 'learnig_rate'", "'learning_rate'")


def test_the_model_can_come_from_the_config(tmp_path: Path, data: Path) -> None:
    config = tmp_path / "train.yaml"
    config.write_text(f"base_model: {tmp_path / 'absent-model'}\n")
    code, err = invoke("train", "--data", str(data), "--config", str(config))
    assert_one_line(code, err, "absent-model: no such model folder")


def test_compare_base_needs_an_adapter(data: Path, model_dir: Path) -> None:
    code, err = invoke("eval", "--data", str(data), "--model", str(model_dir), "--compare-base")
    assert_one_line(code, err, "--compare-base compares against an adapter; add --adapter DIR")
