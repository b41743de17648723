"""Training throughput of `trainer.train.train` against a plain TRL `SFTTrainer` run.

Run: python tests/bench/bench_trainer.py [--runs 3] [--samples 32] [--steps 8]
     python tests/bench/bench_trainer.py --model-config big.json   # a larger random model (GPU)

Both sides train the same LoRA (same rank, targets, learning rate, batch, steps, seed) on the
same samples, rendered by `trainer.render`: ours through `train` (our tokenization and
assistant-token labels, over-long check, adapter save, metrics file), the plain one through
`SFTTrainer` given the conversations and `assistant_only_loss=True`, the way TRL's docs do it.
Runs alternate (ours first on even runs, TRL first on odd ones) and the medians are compared.
Tokens/s is training tokens (non-padding, as the Trainer counts them) over the training loop's
runtime; end-to-end seconds include loading and data preparation. The floor: ours keeps at
least 0.9x the plain run's tokens/s.

The model is the tiny test model (tests/tiny_model.py), or, with `--model-config FILE`, a
random Llama built from that JSON file of LlamaConfig fields (hidden_size, num_hidden_layers,
...) with the tiny model's tokenizer and chat template: no model hub is needed. bf16 on a CUDA
GPU, float32 on the CPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from tiny_model import cached_tiny_model  # noqa: E402

from generators.base import GenerationRequest  # noqa: E402
from generators.template.generator import TemplateGenerator  # noqa: E402
from trainer.config import TrainConfig  # noqa: E402
from trainer.render import TemplateAbilities, chat_inputs, render  # noqa: E402
from trainer.train import train  # noqa: E402
from unified.catalogs import load_catalog  # noqa: E402
from unified.model import Sample  # noqa: E402

FLOOR = 0.9
CATALOG = ROOT / "examples" / "travel_api.yaml"


@dataclass
class Run:
    tokens: int
    train_seconds: float
    total_seconds: float
    cpu_seconds: float  # end to end, all threads: steadier than wall time on a shared machine

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.train_seconds


def build_model(config_file: Path, directory: Path) -> Path:
    """A random Llama from `config_file` with the tiny model's tokenizer, saved to `directory`."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(cached_tiny_model())
    fields = json.loads(config_file.read_text())
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **fields,
    )
    torch.manual_seed(0)
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    model = LlamaForCausalLM(config).to(dtype)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    params = sum(p.numel() for p in model.parameters())
    print(f"built a random Llama of {params / 1e6:,.1f}M parameters in {directory}")
    return directory


def ours(config: TrainConfig, samples: list[Sample], out: Path) -> Run:
    started, cpu = time.perf_counter(), time.process_time()
    result = train(config.with_overrides(output_dir=str(out)), samples)
    assert not result.dropped_too_long, "raise max_length: both sides must see the same data"
    return Run(
        result.tokens,
        result.train_seconds,
        time.perf_counter() - started,
        time.process_time() - cpu,
    )


def plain_trl(config: TrainConfig, samples: list[Sample], out: Path) -> Run:
    """TRL as its documentation shows it: conversations in, LoRA by peft_config."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
    from trl import SFTConfig, SFTTrainer

    started, cpu = time.perf_counter(), time.process_time()
    cuda = torch.cuda.is_available()
    tokenizer = AutoTokenizer.from_pretrained(config.base_model)
    abilities = TemplateAbilities.of(tokenizer.chat_template)
    rows: dict[str, list[Any]] = {"messages": [], "tools": []}
    for sample in samples:
        messages, tools = chat_inputs(render(sample), abilities)
        rows["messages"].append(messages)
        rows["tools"].append(json.dumps(tools))  # one column type whatever the tools' schemas
    model = AutoModelForCausalLM.from_pretrained(
        config.base_model, dtype=torch.bfloat16 if cuda else torch.float32
    )
    trainer = SFTTrainer(
        model=model,
        args=SFTConfig(
            output_dir=str(out),
            per_device_train_batch_size=config.batch_size,
            gradient_accumulation_steps=config.gradient_accumulation,
            learning_rate=config.learning_rate,
            max_steps=config.max_steps,
            logging_steps=config.logging_steps,
            max_length=config.max_length,
            assistant_only_loss=True,
            gradient_checkpointing=config.gradient_checkpointing,
            seed=config.seed,
            data_seed=config.seed,
            bf16=cuda,
            fp16=False,
            use_cpu=not cuda,
            include_num_input_tokens_seen="non_padding",
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
        ),
        train_dataset=Dataset.from_dict(rows),
        processing_class=tokenizer,
        peft_config=LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=config.target_modules,
            task_type="CAUSAL_LM",
        ),
    )
    trainer.remove_callback(PrinterCallback)
    outcome = trainer.train()
    trainer.model.save_pretrained(str(out))
    seconds = float(outcome.metrics["train_runtime"])
    tokens = int(trainer.state.num_input_tokens_seen)
    return Run(tokens, seconds, time.perf_counter() - started, time.process_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=4096)
    parser.add_argument("--model-config", type=Path, help="JSON file of LlamaConfig fields")
    args = parser.parse_args()

    import logging

    import datasets
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    logging.getLogger("trl").setLevel(logging.ERROR)

    with tempfile.TemporaryDirectory(prefix="bench-trainer-") as scratch:
        work = Path(scratch)
        model = (
            build_model(args.model_config, work / "model")
            if args.model_config
            else cached_tiny_model()
        )
        samples = TemplateGenerator().generate(
            load_catalog(CATALOG).tools, GenerationRequest(n=args.samples, seed=7)
        )
        config = TrainConfig(
            base_model=str(model),
            max_steps=args.steps,
            batch_size=args.batch_size,
            max_length=args.max_length,
            lora_r=16,
            lora_alpha=32,
            learning_rate=2e-4,
            logging_steps=max(1, args.steps // 4),
        )
        sides = {"ours: train()": ours, "plain TRL": plain_trl}
        results: dict[str, list[Run]] = {name: [] for name in sides}
        ours(config, samples[: args.batch_size], work / "warmup")  # imports, caches, kernels
        for run in range(args.runs):
            order = list(sides) if run % 2 == 0 else list(reversed(sides))
            for name in order:
                results[name].append(sides[name](config, samples, work / f"{run}-{len(name)}"))
                done = results[name][-1]
                print(f"run {run + 1} {name}: {done.tokens_per_second:,.0f} tokens/s")

    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    table = Table(
        title=f"LoRA SFT throughput, {args.samples} samples, {args.steps} steps x batch "
        f"{args.batch_size}, median of {args.runs} ({device}, {Path(str(model)).name})"
    )
    headers = ("trainer", "tokens", "train s", "tokens/s", "vs plain", "end-to-end s", "CPU s")
    for header in headers:
        table.add_column(header, justify="left" if header == "trainer" else "right")
    medians = {
        name: statistics.median(r.tokens_per_second for r in runs) for name, runs in results.items()
    }
    plain = medians["plain TRL"]
    for name, runs in results.items():
        table.add_row(
            name,
            f"{runs[0].tokens:,}",
            f"{statistics.median(r.train_seconds for r in runs):.2f}",
            f"{medians[name]:,.0f}",
            f"{medians[name] / plain:.2f}x",
            f"{statistics.median(r.total_seconds for r in runs):.2f}",
            f"{statistics.median(r.cpu_seconds for r in runs):.2f}",
        )
    Console().print(table)
    ratio = medians["ours: train()"] / plain
    verdict = "meets" if ratio >= FLOOR else "BELOW"
    print(f"ours / plain TRL = {ratio:.2f}x: {verdict} the {FLOOR}x floor")
    if ratio < FLOOR:
        sys.exit(1)


if __name__ == "__main__":
    main()
