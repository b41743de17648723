"""The training settings of a new model version: the service's own (AF_TRAIN_CONFIG,
AF_TRAIN_BASE_MODEL), then a request's overrides, less what the service decides itself."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from service.errors import InvalidRequest
from service.settings import Settings

if TYPE_CHECKING:
    from trainer.config import TrainConfig


# Settings the service decides itself; a request may not override them.
SERVICE_OWNED = {
    "output_dir": "the service writes each version's adapter under AF_DATA_DIR",
    "eval_fraction": "the service holds out samples itself (AF_TRAIN_HELDOUT_FRACTION)",
}


def train_config(settings: Settings, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The training settings of a new version: AF_TRAIN_CONFIG's file (or the defaults), its
    base model replaced by AF_TRAIN_BASE_MODEL when set, then `overrides` (a request's).

    Raises `InvalidRequest` for an override of what the service decides (output_dir,
    eval_fraction) or when no base model is set, `ConfigError` for an unknown key or bad value.
    """
    from trainer.config import TrainConfig, load_config

    overrides = dict(overrides or {})
    for key, why in SERVICE_OWNED.items():
        if key in overrides:
            raise InvalidRequest(f"config: '{key}' cannot be set per run ({why}); remove it")
    config = TrainConfig()
    if settings.train_config is not None:
        if not settings.train_config.is_file():
            raise InvalidRequest(
                f"AF_TRAIN_CONFIG: {settings.train_config} is not a file; point it at a YAML "
                "or JSON file of training settings, or unset it"
            )
        config = load_config(settings.train_config)
    if settings.train_base_model:
        config = config.with_overrides(base_model=settings.train_base_model)
    config = config.with_overrides(**overrides, eval_fraction=0.0)
    if not config.base_model:
        raise InvalidRequest(
            "no base model to train: set AF_TRAIN_BASE_MODEL to a model folder (or put "
            "base_model in the AF_TRAIN_CONFIG file)"
        )
    return config
