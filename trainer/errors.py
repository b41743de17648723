"""Errors of the trainer. Every message says what is wrong and what to change."""

from __future__ import annotations

from unified.errors import ActionForgeError


class TrainerError(ActionForgeError):
    """Base of the trainer's errors on bad input."""


class ConfigError(TrainerError):
    """A training configuration has an unknown key or a bad value."""


class ModelLoadError(TrainerError):
    """A model, tokenizer or adapter cannot be loaded from the given path or name."""


class TrainingDataError(TrainerError):
    """The samples cannot be trained on (none given, or none left after dropping)."""
