"""TrainConfig: defaults, files, and errors that name the key and what to change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainer.config import FIELD_NAMES, TrainConfig, build_config, load_config
from trainer.errors import ConfigError


def test_the_defaults_make_a_valid_config() -> None:
    config = TrainConfig()
    assert config.lora_r == 16 and config.max_steps == 0 and config.epochs == 1.0
    assert set(config.to_dict()) == set(FIELD_NAMES)


def test_a_yaml_file_sets_fields_and_keeps_the_other_defaults(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text(
        "base_model: /models/tiny\nlora_r: 8\nlearning_rate: 1e-3\n"
        "target_modules: [q_proj, v_proj]\nmax_steps: 20\n"
    )
    config = load_config(path)
    assert config.base_model == "/models/tiny"
    assert config.lora_r == 8
    assert config.learning_rate == pytest.approx(1e-3)  # YAML reads 1e-3 as text; it is converted
    assert config.target_modules == ["q_proj", "v_proj"]
    assert config.max_steps == 20
    assert config.lora_alpha == TrainConfig().lora_alpha


def test_a_json_file_is_read_too(tmp_path: Path) -> None:
    path = tmp_path / "train.json"
    path.write_text(json.dumps({"epochs": 2, "batch_size": 2, "seed": 7}))
    config = load_config(path)
    assert (config.epochs, config.batch_size, config.seed) == (2.0, 2, 7)


def test_an_empty_file_is_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_config(path) == TrainConfig()


def test_an_unknown_key_is_named_with_the_closest_known_one(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("lora_rank: 8\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: unknown key 'lora_rank'")
    assert "did you mean 'lora_r'?" in message
    assert "known keys:" in message and "max_length" in message


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"lora_r": 0}, "lora_r: Input should be greater than 0 (got 0)"),
        ({"lora_r": "eight"}, "lora_r: Input should be a valid integer (got 'eight')"),
        ({"batch_size": True}, "batch_size: Input should be a valid integer (got True)"),
        ({"eval_fraction": 0.9}, "eval_fraction: Input should be less than or equal to 0.5"),
        ({"lora_dropout": 1.5}, "lora_dropout: Input should be less than 1"),
        ({"target_modules": 3}, 'give a list of module names or "all-linear"'),
        ({"target_modules": []}, "target_modules is empty"),
        ({"epochs": 0}, "set epochs above 0 or max_steps to a number of steps"),
    ],
)
def test_a_bad_value_is_named_with_what_is_wrong(values: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_config(values, where="train.yaml")
    assert str(caught.value).startswith("train.yaml: ")
    assert expected in str(caught.value)


def test_epochs_zero_is_fine_with_max_steps() -> None:
    assert build_config({"epochs": 0, "max_steps": 5}).max_steps == 5


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- lora_r\n- 8\n")
    with pytest.raises(ConfigError, match=r"holds a list, not a mapping of settings"):
        load_config(path)


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("lora_r: 8\nlearning_rate: [1e-4\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: not valid YAML or JSON at line \d+"):
        load_config(path)


def test_overrides_replace_set_values_only_and_are_checked() -> None:
    config = TrainConfig(lora_r=8).with_overrides(base_model="/m", output_dir=None)
    assert config.base_model == "/m" and config.output_dir == TrainConfig().output_dir
    assert config.lora_r == 8
    with pytest.raises(ConfigError, match="override: max_length: Input should be greater than 0"):
        config.with_overrides(max_length=0)


def test_configs_are_frozen() -> None:
    config = TrainConfig()
    with pytest.raises(AttributeError):
        config.lora_r = 4  # type: ignore[misc]
