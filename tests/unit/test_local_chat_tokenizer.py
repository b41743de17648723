"""Prompt tokens counted in the worker (llm/local_tokens.py): the rendering and the counts equal
transformers' `apply_chat_template` (what vLLM's server runs) on the tiny test model and on
SmolLM2, and the model's folder is found from the names a job gives."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from smollm2_model import cached_smollm2
from tiny_model import cached_tiny_model

from llm.local_tokens import TEMPLATE_FILE, ChatTokenizer, tokenizer_folder
from llm.model_fetch import MODELS_DIR_VARIABLE

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = [
    [{"role": "user", "content": "x"}],
    [
        {"role": "system", "content": 'You call tools.\n\n  Tools: {"city": "Zürich"}\t'},
        {"role": "user", "content": "Héllo wörld 🎉 <|im_start|> </s> <s>  spaces   \n\nnew"},
    ],
    [
        {"role": "system", "content": ""},
        {"role": "user", "content": "a" * 3000},
        {"role": "assistant", "content": '[{"name": "f", "arguments": {}}]'},
        {"role": "user", "content": "日本語のテキスト, then {{ not a template }} {% raw %}"},
    ],
]


@pytest.fixture(scope="module", params=["tiny", "smollm2"])
def model_dir(request: pytest.FixtureRequest) -> Path:
    return cached_tiny_model() if request.param == "tiny" else cached_smollm2()


def test_counts_equal_transformers_chat_template(model_dir: Path) -> None:
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(model_dir)
    local = ChatTokenizer.load(model_dir)
    expected = [
        len(reference.apply_chat_template(p, add_generation_prompt=True, return_dict=False))
        for p in PROMPTS
    ]
    assert local.count(PROMPTS) == expected
    for prompt in PROMPTS:
        assert local.render(prompt) == reference.apply_chat_template(
            prompt, tokenize=False, add_generation_prompt=True
        )


def test_a_prompt_the_template_refuses_has_no_count(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(cached_tiny_model(), folder)
    (folder / TEMPLATE_FILE).write_text(
        "{% if messages[0]['role'] != 'user' %}{{ raise_exception('user first') }}{% endif %}"
        "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    )
    local = ChatTokenizer.load(folder)
    counts = local.count([[{"role": "system", "content": "s"}], [{"role": "user", "content": "u"}]])
    assert counts[0] is None and isinstance(counts[1], int) and counts[1] > 0


def test_a_folder_without_a_chat_template_cannot_count(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(cached_tiny_model(), folder)
    (folder / TEMPLATE_FILE).unlink()
    with pytest.raises(ValueError, match="no chat template"):
        ChatTokenizer.load(folder)


def test_the_template_may_come_from_the_tokenizer_config(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(cached_tiny_model(), folder)
    template = (folder / TEMPLATE_FILE).read_text()
    (folder / TEMPLATE_FILE).unlink()
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["chat_template"] = [{"name": "default", "template": template}]
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    original = ChatTokenizer.load(cached_tiny_model())
    assert ChatTokenizer.load(folder).count(PROMPTS) == original.count(PROMPTS)


def test_the_folder_is_found_from_a_path_a_hub_id_or_a_fetched_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = cached_tiny_model()
    assert tokenizer_folder(str(tiny)) == tiny
    assert tokenizer_folder("served-name", tokenizer=str(tiny)) == tiny
    assert tokenizer_folder("served-name") is None
    assert tokenizer_folder(str(tiny), tokenizer=str(tmp_path / "missing")) is None
    # the Hugging Face cache's layout: models--org--name/refs/main -> snapshots/<revision>
    hub = tmp_path / "hub"
    snapshot = hub / "models--org--name" / "snapshots" / "abc123"
    shutil.copytree(tiny, snapshot)
    (hub / "models--org--name" / "refs").mkdir()
    (hub / "models--org--name" / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    assert tokenizer_folder("org/name") == snapshot
    assert tokenizer_folder("org/other") is None
    # where `actionforge models fetch NAME` writes, the name vLLM serves it under
    models = tmp_path / "models"
    shutil.copytree(tiny, models / "smollm2")
    monkeypatch.setenv(MODELS_DIR_VARIABLE, str(models))
    assert tokenizer_folder("smollm2") == models / "smollm2"


def test_counting_imports_neither_transformers_nor_torch() -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from llm.local_tokens import ChatTokenizer\n"
        f"ChatTokenizer.load(Path({str(cached_tiny_model())!r})).count("
        "[[{'role': 'user', 'content': 'hi'}]])\n"
        "print(sorted({'transformers', 'torch', 'vllm'} & set(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
