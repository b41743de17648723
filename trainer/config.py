"""The training configuration: one frozen dataclass, loadable from a YAML or JSON file.

Values are checked when the object is made; a file with an unknown key or a bad value raises
`ConfigError` naming the file, the key and what is accepted.
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import ConfigDict, Field, ValidationError, model_validator
from pydantic.dataclasses import dataclass

from trainer.errors import ConfigError

PositiveInt = Annotated[int, Field(gt=0, strict=True)]
Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class TrainConfig:
    """How to fine-tune a base model with LoRA on samples.

    Attributes:
        base_model: Folder of a Hugging Face model (config, weights, tokenizer with a chat
            template) or a model name the local cache holds. The CLI's `--model` sets it.
        output_dir: Where the adapter and `train_metrics.json` are written (`--out`).
        lora_r: LoRA rank. Ignored when continuing from an adapter: its own rank is kept.
        lora_alpha: LoRA scaling numerator (the update is scaled by lora_alpha / lora_r).
        lora_dropout: Dropout on the LoRA branch while training.
        target_modules: Module names to adapt, or "all-linear" for every linear layer but the
            output head.
        learning_rate: Peak learning rate of AdamW.
        epochs: Passes over the training samples; ignored when `max_steps` is set.
        max_steps: Optimizer steps to run; 0 means "use epochs".
        max_length: Longest rendered sample in tokens. Longer samples are dropped from training
            and reported (count and ids), never truncated.
        batch_size: Samples per device batch.
        gradient_accumulation: Batches per optimizer step.
        warmup_ratio: Share of the steps spent warming the learning rate up.
        weight_decay: AdamW weight decay.
        replay_ratio: Replayed samples from earlier rounds per new sample (continual training);
            0.3 mixes in 3 earlier samples for every 10 new ones, as far as the pool allows.
        eval_fraction: Share of the new samples held out from training; their loss before and
            after training is reported, and their ids are returned for evaluation.
        gradient_checkpointing: Trade compute for memory (useful for large models on a GPU).
        seed: Seeds LoRA initialisation, shuffling, held-out split and replay choice: the same
            seed, samples and config train the same adapter.
        logging_steps: Steps between recorded training losses.
    """

    base_model: str = ""
    output_dir: str = "adapter"
    lora_r: PositiveInt = 16
    lora_alpha: PositiveInt = 32
    lora_dropout: Fraction = 0.05
    target_modules: str | list[str] = "all-linear"
    learning_rate: Annotated[float, Field(gt=0.0, le=1.0)] = 2e-4
    epochs: Annotated[float, Field(ge=0.0)] = 1.0
    max_steps: Annotated[int, Field(ge=0, strict=True)] = 0
    max_length: PositiveInt = 2048
    batch_size: PositiveInt = 4
    gradient_accumulation: PositiveInt = 1
    warmup_ratio: Fraction = 0.0
    weight_decay: Annotated[float, Field(ge=0.0)] = 0.0
    replay_ratio: Annotated[float, Field(ge=0.0)] = 0.0
    eval_fraction: Annotated[float, Field(ge=0.0, le=0.5)] = 0.0
    gradient_checkpointing: Annotated[bool, Field(strict=True)] = False
    seed: Annotated[int, Field(strict=True)] = 0
    logging_steps: PositiveInt = 1

    @model_validator(mode="after")
    def _check_length_of_training(self) -> TrainConfig:
        if self.max_steps == 0 and self.epochs == 0:
            raise ValueError("set epochs above 0 or max_steps to a number of steps")
        if isinstance(self.target_modules, list) and not self.target_modules:
            raise ValueError('target_modules is empty; list module names or use "all-linear"')
        return self

    def with_overrides(self, **values: Any) -> TrainConfig:
        """A copy with the given fields replaced (None values are ignored), checked again."""
        changes = {key: value for key, value in values.items() if value is not None}
        return build_config(changes, base=self, where="override")

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain JSON-ready values."""
        return dataclasses.asdict(self)


FIELD_NAMES = tuple(field.name for field in dataclasses.fields(TrainConfig))


def build_config(
    values: dict[str, Any], *, base: TrainConfig | None = None, where: str = "config"
) -> TrainConfig:
    """A `TrainConfig` from a mapping of field values over `base` (the defaults when None).

    Raises `ConfigError` naming `where`, the unknown key (with the closest known one) or the key
    with a bad value and what it accepts.
    """
    for key in values:
        if key not in FIELD_NAMES:
            close = difflib.get_close_matches(str(key), FIELD_NAMES, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ConfigError(
                f"{where}: unknown key '{key}'; {hint}known keys: {', '.join(FIELD_NAMES)}"
            )
    merged = {**(base.to_dict() if base is not None else {}), **values}
    try:
        return TrainConfig(**merged)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {_first_problem(exc)}") from None


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    place = str(error["loc"][0]) if error["loc"] else ""  # the field, not the union member
    message = str(error["msg"]).removeprefix("Value error, ")
    if not place:
        return message
    hint = _HINTS.get(place)
    return f"{place}: {message} (got {error.get('input')!r})" + (f"; give {hint}" if hint else "")


_HINTS = {"target_modules": 'a list of module names or "all-linear"'}


def load_config(path: str | Path) -> TrainConfig:
    """The `TrainConfig` in a YAML or JSON file (a mapping of field names to values)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file; give a YAML or JSON mapping") from None
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: not valid YAML or JSON{where}: {problem}") from None
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(
            f"{path}: the file holds a {type(values).__name__}, not a mapping of settings "
            "such as 'lora_r: 16'"
        )
    return build_config(values, where=str(path))
