"""LoRA supervised fine-tuning on unified samples: the one entry point of the CLI, the workers
and the tests.

`train(config, samples, previous_adapter)` renders every sample with `trainer.render`, tokenizes
it with the model's chat template (loss on the assistant's turns only), drops and reports the
samples longer than `config.max_length`, trains a LoRA adapter with TRL's `SFTTrainer` (a fresh
one, or the previous round's adapter loaded trainable), and writes the adapter and
`train_metrics.json` to `config.output_dir`. It keeps no global state: call it from a process
pool or a Celery task with plain arguments and read the returned `TrainResult`.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from trainer.config import TrainConfig
from trainer.encode import ChatEncoder, Encoded
from trainer.errors import ConfigError, TrainingDataError
from trainer.loss import mean_loss
from trainer.render import render
from unified.model import Sample

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedTokenizerBase, TrainerCallback

log = logging.getLogger(__name__)

METRICS_FILE = "train_metrics.json"
ProgressCallback = Callable[[int, int], None]
"""Called after every optimizer step with (steps done, steps in all)."""


@dataclass
class TrainResult:
    """What a training run did; also written to `output_dir/train_metrics.json`.

    `samples` counts the rows trained on (new and replayed); `dropped_too_long` and
    `skipped_no_answer` name the samples left out and why; `heldout_ids` the samples kept for
    evaluation. `losses` are the logged training losses in order; `tokens` the non-padding
    tokens the training loop saw, over `train_seconds` of it. `initial_digest` and
    `final_digest` fingerprint the adapter's weights before and after (see `adapter_digest`).
    """

    output_dir: Path
    started_from: Path | None
    base_model: str
    samples: int
    replayed: int
    dropped_too_long: list[str]
    skipped_no_answer: list[str]
    heldout_ids: list[str]
    steps: int
    losses: list[float]
    heldout_loss_before: float | None
    heldout_loss_after: float | None
    tokens: int
    train_seconds: float
    total_seconds: float
    device: str
    dtype: str
    masking: str
    initial_digest: str
    final_digest: str
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def loss_first(self) -> float | None:
        return self.losses[0] if self.losses else None

    @property
    def loss_last(self) -> float | None:
        return self.losses[-1] if self.losses else None

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.train_seconds if self.train_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (paths as strings)."""
        values = asdict(self)
        values["loss_first"] = self.loss_first
        values["loss_last"] = self.loss_last
        values["tokens_per_second"] = self.tokens_per_second
        values["output_dir"] = str(self.output_dir)
        values["started_from"] = str(self.started_from) if self.started_from else None
        return values


def train(
    config: TrainConfig,
    samples: Sequence[Sample],
    previous_adapter: Path | None = None,
    *,
    replay: Sequence[Sample] = (),
    progress: ProgressCallback | None = None,
) -> TrainResult:
    """Fine-tune `config.base_model` with LoRA on `samples` and save the adapter.

    `previous_adapter`: a folder written by an earlier run; training continues from its weights
    (its LoRA rank and targets are kept). `replay`: samples of earlier rounds, of which
    `config.replay_ratio` per new sample are mixed in. Raises `TrainerError` subclasses on bad
    input: no samples, none left after dropping over-long ones, a path that is not a model or
    not an adapter.
    """
    from transformers import PrinterCallback, set_seed
    from trl import SFTConfig, SFTTrainer

    from trainer.modeling import check_adapter_path, load_base_model, load_tokenizer, placement

    started = time.perf_counter()
    output_dir = Path(config.output_dir)
    _check_paths(output_dir, previous_adapter)
    if not samples:
        raise TrainingDataError("no samples to train on; give a data file with at least one row")
    if previous_adapter is not None:
        check_adapter_path(previous_adapter)

    tokenizer = load_tokenizer(config.base_model)
    encoder = ChatEncoder(tokenizer)
    new, heldout = _split_heldout(samples, config.eval_fraction, config.seed)
    replayed = _choose_replay(replay, config.replay_ratio, len(new), config.seed)
    rows, too_long, no_answer = _encode(encoder, [*new, *replayed], config.max_length)
    heldout_rows, _, _ = _encode(encoder, heldout, config.max_length)
    _report_dropped(too_long, no_answer, config.max_length)
    if not rows:
        raise TrainingDataError(
            f"no samples left to train on: {len(too_long)} longer than max_length "
            f"{config.max_length} tokens, {len(no_answer)} without an assistant answer; "
            "raise max_length or give other samples"
        )

    where = placement()
    set_seed(config.seed)  # before the LoRA weights are drawn
    model = _adapted_model(load_base_model(config.base_model, where), config, previous_adapter)
    initial_digest = adapter_digest(model)
    pad_id = int(tokenizer.pad_token_id)
    heldout_before = (
        mean_loss(model, heldout_rows, pad_id, config.batch_size) if heldout_rows else None
    )

    from datasets import Dataset  # type: ignore[import-untyped]

    dataset = Dataset.from_dict(
        {"input_ids": [r.input_ids for r in rows], "labels": [r.labels for r in rows]}
    )
    losses: list[float] = []
    trainer = SFTTrainer(
        model=model,
        args=SFTConfig(
            output_dir=str(output_dir),
            per_device_train_batch_size=config.batch_size,
            gradient_accumulation_steps=config.gradient_accumulation,
            learning_rate=config.learning_rate,
            num_train_epochs=config.epochs,
            max_steps=config.max_steps or -1,
            warmup_steps=config.warmup_ratio,
            weight_decay=config.weight_decay,
            logging_steps=config.logging_steps,
            max_length=config.max_length,
            gradient_checkpointing=config.gradient_checkpointing,
            seed=config.seed,
            data_seed=config.seed,
            bf16=where.device == "cuda",
            fp16=False,
            use_cpu=where.device == "cpu",
            include_num_input_tokens_seen="non_padding",
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            dataloader_num_workers=0,
            # rows are tokenized, labelled and length-checked already
            dataset_kwargs={"skip_prepare_dataset": True},
        ),
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[_recorder(losses, progress)],
    )
    trainer.remove_callback(PrinterCallback)  # the logs go to the result, not to stdout
    outcome = trainer.train()
    train_seconds = float(outcome.metrics.get("train_runtime", 0.0))
    tokens = int(trainer.state.num_input_tokens_seen)

    heldout_after = (
        mean_loss(model, heldout_rows, pad_id, config.batch_size) if heldout_rows else None
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(output_dir))
    result = TrainResult(
        output_dir=output_dir,
        started_from=previous_adapter,
        base_model=config.base_model,
        samples=len(rows),
        replayed=len(replayed),
        dropped_too_long=too_long,
        skipped_no_answer=no_answer,
        heldout_ids=[sample.id for sample in heldout],
        steps=int(trainer.state.global_step),
        losses=losses,
        heldout_loss_before=heldout_before,
        heldout_loss_after=heldout_after,
        tokens=tokens,
        train_seconds=train_seconds,
        total_seconds=time.perf_counter() - started,
        device=where.device,
        dtype=where.dtype_name,
        masking=encoder.masking,
        initial_digest=initial_digest,
        final_digest=adapter_digest(model),
        config=config.to_dict(),
    )
    (output_dir / METRICS_FILE).write_bytes(
        orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2) + b"\n"
    )
    return result


def encode_samples(
    tokenizer: PreTrainedTokenizerBase, samples: Sequence[Sample], max_length: int
) -> tuple[list[Encoded], list[str], list[str]]:
    """The training rows of `samples` as `train` builds them: (rows, ids too long, ids without
    an assistant answer)."""
    return _encode(ChatEncoder(tokenizer), samples, max_length)


def adapter_digest(model: PeftModel) -> str:
    """SHA-256 of the adapter's weights (names and float32 values): equal digests, equal
    adapters. Lets a continual round prove which weights it started from."""
    from peft import get_peft_model_state_dict

    state = get_peft_model_state_dict(model)
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _check_paths(output_dir: Path, previous_adapter: Path | None) -> None:
    if previous_adapter is not None and output_dir.resolve() == previous_adapter.resolve():
        raise ConfigError(
            f"{output_dir}: the output folder is the adapter being continued; write the new "
            "adapter to another folder so the earlier version is kept"
        )
    if output_dir.exists() and not output_dir.is_dir():
        raise ConfigError(f"{output_dir}: exists and is not a folder; choose another output_dir")


def _split_heldout(
    samples: Sequence[Sample], fraction: float, seed: int
) -> tuple[list[Sample], list[Sample]]:
    count = round(len(samples) * fraction)
    if fraction > 0 and len(samples) >= 2:
        count = min(max(count, 1), len(samples) - 1)
    if count == 0:
        return list(samples), []
    order = list(range(len(samples)))
    random.Random(f"heldout:{seed}").shuffle(order)
    held = set(order[:count])
    return (
        [s for i, s in enumerate(samples) if i not in held],
        [s for i, s in enumerate(samples) if i in held],
    )


def _choose_replay(pool: Sequence[Sample], ratio: float, new: int, seed: int) -> list[Sample]:
    wanted = min(len(pool), round(ratio * new))
    if wanted <= 0:
        return []
    return random.Random(f"replay:{seed}").sample(list(pool), wanted)


def _encode(
    encoder: ChatEncoder, samples: Sequence[Sample], max_length: int
) -> tuple[list[Encoded], list[str], list[str]]:
    rows: list[Encoded] = []
    too_long: list[str] = []
    no_answer: list[str] = []
    for sample in samples:
        conversation = render(sample)
        if not conversation.has_assistant_turn():
            no_answer.append(sample.id)
            continue
        row = encoder.encode(sample.id, conversation)
        if len(row) > max_length:
            too_long.append(sample.id)
        else:
            rows.append(row)
    return rows, too_long, no_answer


def _report_dropped(too_long: list[str], no_answer: list[str], max_length: int) -> None:
    if too_long:
        shown = ", ".join(too_long[:10]) + (" ..." if len(too_long) > 10 else "")
        log.warning(
            "dropped %d samples longer than max_length %d tokens (not truncated): %s",
            len(too_long),
            max_length,
            shown,
        )
    if no_answer:
        shown = ", ".join(no_answer[:10]) + (" ..." if len(no_answer) > 10 else "")
        log.warning("skipped %d samples with no assistant answer: %s", len(no_answer), shown)


def _adapted_model(base: Any, config: TrainConfig, previous_adapter: Path | None) -> PeftModel:
    from peft import LoraConfig, get_peft_model

    from trainer.modeling import load_adapter

    if previous_adapter is not None:
        return load_adapter(base, previous_adapter, trainable=True)
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(base, lora)


def _recorder(losses: list[float], progress: ProgressCallback | None) -> TrainerCallback:
    from transformers import TrainerCallback

    class Recorder(TrainerCallback):
        """Keeps the logged training losses and reports steps to `progress`."""

        def on_log(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            logs = kwargs.get("logs") or {}
            if "loss" in logs:
                losses.append(float(logs["loss"]))

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if progress is not None:
                progress(int(state.global_step), int(state.max_steps))

    return Recorder()
