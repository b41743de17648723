"""Continual LoRA SFT on accepted samples, versioned adapters, and their evaluation.

- `trainer.config`: `TrainConfig` and `load_config` (YAML/JSON).
- `trainer.render`: unified sample -> chat conversation, shared by training and evaluation.
- `trainer.train`: `train(config, samples, previous_adapter) -> TrainResult`.
- `trainer.evaluate`: `parse_calls`, `score` (pure metrics), `generate`, `evaluate`, `compare`.
- `trainer.bfcl_rules`: BFCL's single-turn AST rules against possible answers (pure);
  `trainer.bfcl_predictions` scores a predictions file with them (`eval --predictions`).

Importing this package loads neither torch nor transformers; the functions that need them
import them when called.
"""
