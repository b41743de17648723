"""Real LoRA training of the tiny test model on the CPU: weights move, the loss on the trained
samples falls, the prompt carries no loss, continual rounds start from the previous adapter,
over-long samples are reported, and `actionforge train` / `eval` run end to end."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import typer
from safetensors.torch import load_file
from tiny_model import cached_tiny_model
from transformers import AutoTokenizer
from typer.testing import CliRunner

from generators.base import GenerationRequest
from generators.template.generator import TemplateGenerator
from service.cli.commands.train import register_train_commands
from trainer.config import TrainConfig
from trainer.encode import IGNORE_INDEX, ChatEncoder
from trainer.errors import TrainingDataError
from trainer.evaluate import evaluate
from trainer.loss import sample_loss
from trainer.render import chat_inputs, render
from trainer.train import METRICS_FILE, TrainResult, encode_samples, train
from unified.catalogs import load_catalog
from unified.formats import write_samples
from unified.model import QueryStyle, Sample, Turn

pytestmark = pytest.mark.slow

CATALOG = Path(__file__).resolve().parents[1] / "data" / "functions" / "openai_cookbook_tools.json"
MAX_LENGTH = 1120  # some of the samples below are longer


def make_samples(n: int, seed: int) -> list[Sample]:
    tools = load_catalog(CATALOG).tools
    request = GenerationRequest(
        n=n, seed=seed, id_prefix=f"s{seed}-", options={"created": "2026-01-01T00:00:00+00:00"}
    )
    return TemplateGenerator().generate(tools, request)


def config(output_dir: Path, **changes: object) -> TrainConfig:
    base = TrainConfig(
        base_model=str(cached_tiny_model()),
        output_dir=str(output_dir),
        lora_r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        learning_rate=5e-3,
        max_steps=6,
        batch_size=4,
        max_length=MAX_LENGTH,
        seed=0,
    )
    return base.with_overrides(**changes)


@pytest.fixture(scope="module")
def samples() -> list[Sample]:
    return make_samples(16, seed=1)


@pytest.fixture(scope="module")
def first_round(samples: list[Sample], tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    return train(config(tmp_path_factory.mktemp("round1")), samples)


def test_training_changes_the_adapter_and_saves_it(first_round: TrainResult) -> None:
    assert first_round.initial_digest != first_round.final_digest
    weights = load_file(str(first_round.output_dir / "adapter_model.safetensors"))
    lora_b = [tensor for name, tensor in weights.items() if "lora_B" in name]
    assert lora_b, sorted(weights)
    assert any(bool(tensor.abs().sum() > 0) for tensor in lora_b)  # B starts at zero
    adapter_config = json.loads((first_round.output_dir / "adapter_config.json").read_text())
    assert adapter_config["r"] == 8
    assert (first_round.device, first_round.dtype) == ("cpu", "float32")


def test_the_loss_on_the_trained_samples_falls(
    first_round: TrainResult, samples: list[Sample]
) -> None:
    trained = [s for s in samples if s.id not in first_round.dropped_too_long]
    model = first_round.config["base_model"]
    before = sample_loss(model, trained)
    after = sample_loss(model, trained, first_round.output_dir)
    assert after < before - 0.1, (before, after)


def test_the_metrics_file_tells_what_happened(first_round: TrainResult) -> None:
    metrics = json.loads((first_round.output_dir / METRICS_FILE).read_text())
    assert metrics["steps"] == 6
    assert len(metrics["losses"]) == 6
    assert metrics["loss_first"] == metrics["losses"][0]
    assert metrics["loss_last"] == metrics["losses"][-1]
    assert metrics["tokens"] > 0 and metrics["tokens_per_second"] > 0
    assert metrics["samples"] + len(metrics["dropped_too_long"]) == 16
    assert metrics["masking"] == "assistant_tokens"
    assert metrics["config"]["max_length"] == MAX_LENGTH


def test_over_long_samples_are_dropped_and_reported(
    first_round: TrainResult, samples: list[Sample]
) -> None:
    tokenizer = AutoTokenizer.from_pretrained(first_round.config["base_model"])
    rows, too_long, _ = encode_samples(tokenizer, samples, MAX_LENGTH)
    lengths = {row.id: len(row) for row in encode_samples(tokenizer, samples, 10**6)[0]}
    expected = [s.id for s in samples if lengths[s.id] > MAX_LENGTH]
    assert expected, "the test data must hold samples longer than MAX_LENGTH"
    assert len(expected) < len(samples) - 4
    assert first_round.dropped_too_long == too_long == expected
    assert first_round.samples == len(rows) == len(samples) - len(expected)
    assert all(len(row) <= MAX_LENGTH for row in rows)


def test_the_drop_is_a_warning(
    samples: list[Sample], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="trainer.train"):
        result = train(config(tmp_path, max_steps=1), samples)
    assert f"dropped {len(result.dropped_too_long)} samples longer than max_length" in caplog.text
    assert result.dropped_too_long[0] in caplog.text


def test_labels_mask_everything_but_the_assistant_turn(samples: list[Sample]) -> None:
    tokenizer = AutoTokenizer.from_pretrained(cached_tiny_model())
    encoder = ChatEncoder(tokenizer)
    for sample in samples:
        conversation = render(sample)
        row = encoder.encode(sample.id, conversation)
        prompt = encoder.prompt_ids(conversation)
        assert row.input_ids[: len(prompt)] == prompt
        assert set(row.labels[: len(prompt)]) == {IGNORE_INDEX}  # the whole prompt: no loss
        trained = [label for label in row.labels if label != IGNORE_INDEX]
        messages, _ = chat_inputs(conversation, encoder.abilities)
        answer = messages[-1]["content"]  # the calls as the JSON list the system turn asks for
        assert tokenizer.decode(trained) == answer + tokenizer.eos_token
        assert all(
            label in (IGNORE_INDEX, token)
            for label, token in zip(row.labels, row.input_ids, strict=True)
        )


def test_the_same_seed_trains_the_same_adapter(
    first_round: TrainResult, samples: list[Sample], tmp_path: Path
) -> None:
    again = train(config(tmp_path), samples)
    assert again.final_digest == first_round.final_digest
    assert again.losses == first_round.losses


def test_a_continual_round_starts_from_the_previous_adapter(
    first_round: TrainResult, tmp_path: Path
) -> None:
    fresh_rank = 4  # ignored: the previous adapter's rank is kept
    second = train(
        config(tmp_path, lora_r=fresh_rank, max_steps=3),
        make_samples(8, seed=2),
        first_round.output_dir,
    )
    assert second.started_from == first_round.output_dir
    assert second.initial_digest == first_round.final_digest
    assert second.final_digest != first_round.final_digest
    adapter_config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert adapter_config["r"] == 8


def test_replay_and_held_out_samples(
    first_round: TrainResult, samples: list[Sample], tmp_path: Path
) -> None:
    new = make_samples(8, seed=3)
    result = train(
        config(tmp_path, max_steps=2, replay_ratio=0.5, eval_fraction=0.25, max_length=4096),
        new,
        first_round.output_dir,
        replay=samples,
    )
    assert len(result.heldout_ids) == 2
    assert result.replayed == 3  # half of the 6 new samples left for training
    assert result.samples == 6 + 3
    assert result.heldout_loss_before is not None and result.heldout_loss_after is not None


def test_training_on_nothing_left_is_an_error(samples: list[Sample], tmp_path: Path) -> None:
    with pytest.raises(TrainingDataError, match="no samples left to train on: 16 longer than"):
        train(config(tmp_path, max_length=16), samples)
    with pytest.raises(TrainingDataError, match="no samples to train on"):
        train(config(tmp_path), [])


def test_evaluate_answers_every_sample_in_order(first_round: TrainResult) -> None:
    evalset = make_samples(5, seed=4)
    run = evaluate(
        first_round.config["base_model"],
        evalset,
        first_round.output_dir,
        batch_size=2,
        max_new_tokens=12,
    )
    assert len(run.answers) == 5
    assert run.report.overall.samples == 5
    expected_styles = {s.meta.style.value for s in evalset if s.meta.style}
    assert set(run.report.by_style) == expected_styles


def conversations_of(samples: list[Sample]) -> list[Sample]:
    """Multi-turn samples made of pairs of generated ones (same catalog): the second sample's
    query and steps become the first one's follow-up turn."""
    return [
        first.model_copy(
            update={
                "id": f"{first.id}+{second.id}",
                "turns": [Turn(query=second.query, steps=second.steps)],
                "meta": first.meta.model_copy(update={"style": QueryStyle.multi_turn}),
            }
        )
        for first, second in zip(samples[::2], samples[1::2], strict=True)
    ]


def test_evaluate_answers_every_turn_of_a_conversation(first_round: TrainResult) -> None:
    single = make_samples(2, seed=6)
    conversations = conversations_of(make_samples(6, seed=7))
    progress: list[tuple[int, int]] = []
    run = evaluate(
        first_round.config["base_model"],
        [*conversations, *single],
        first_round.output_dir,
        batch_size=3,
        max_new_tokens=8,
        progress=lambda done, total: progress.append((done, total)),
    )
    assert progress[-1] == (3 * 2 + 2, 3 * 2 + 2)  # one prompt per turn
    assert [len(answer) for answer in run.answers[:3]] == [2, 2, 2]
    assert all(isinstance(answer, list) for answer in run.answers[:3])
    assert all(isinstance(answer, str) for answer in run.answers[3:])
    overall = run.report.overall
    assert (overall.samples, overall.conversations, overall.conversation_turns) == (8, 3, 6)
    assert run.report.by_style["multi_turn"].conversations == 3


def test_training_on_conversations_trains_every_turn(tmp_path: Path) -> None:
    conversations = conversations_of(make_samples(8, seed=8))
    tokenizer = AutoTokenizer.from_pretrained(cached_tiny_model())
    rows, too_long, _ = encode_samples(tokenizer, conversations, 10**6)
    assert len(rows) == 4 and not too_long
    for row, sample in zip(rows, conversations, strict=True):
        messages, _ = chat_inputs(render(sample), ChatEncoder(tokenizer).abilities)
        assistant = [
            m["content"] + tokenizer.eos_token for m in messages if m["role"] == "assistant"
        ]
        trained = [label for label in row.labels if label != IGNORE_INDEX]
        assert tokenizer.decode(trained) == "".join(assistant)
        assert len(assistant) >= 2
    result = train(config(tmp_path, max_steps=2, max_length=4096), conversations)
    assert result.samples == 4 and result.initial_digest != result.final_digest


# --- the command line ------------------------------------------------------------------------

cli = typer.Typer()
register_train_commands(cli)
runner = CliRunner()


def test_train_command_writes_an_adapter_and_prints_a_table(
    samples: list[Sample], tmp_path: Path
) -> None:
    data = tmp_path / "data.jsonl"
    write_samples(samples[:6], data, "unified")
    settings = tmp_path / "train.yaml"
    settings.write_text("max_steps: 2\nbatch_size: 2\nmax_length: 4096\nlora_r: 4\n")
    out = tmp_path / "adapter"
    result = runner.invoke(
        cli,
        [
            "train",
            "--data",
            str(data),
            "--model",
            str(cached_tiny_model()),
            "--config",
            str(settings),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert f"adapter and train_metrics.json written to {out}" in result.stdout
    assert "samples trained" in result.stdout and "tokens/s" in result.stdout
    assert (out / "adapter_model.safetensors").is_file()
    assert json.loads((out / METRICS_FILE).read_text())["steps"] == 2


def test_eval_command_prints_a_table_per_style_and_json(
    first_round: TrainResult, tmp_path: Path
) -> None:
    evalset = make_samples(6, seed=5)
    data = tmp_path / "eval.jsonl"
    write_samples(evalset, data, "unified")
    model = first_round.config["base_model"]
    common = ["--model", model, "--data", str(data), "--max-new-tokens", "12"]
    table = runner.invoke(
        cli, ["eval", *common, "--adapter", str(first_round.output_dir), "--compare-base"]
    )
    assert table.exit_code == 0, table.stderr
    assert "overall" in table.stdout and "exact" in table.stdout
    for style in {s.meta.style.value for s in evalset if s.meta.style}:
        assert style in table.stdout
    assert "base model -> with adapter" in table.stdout

    as_json = runner.invoke(cli, ["eval", *common, "--json"])
    assert as_json.exit_code == 0, as_json.stderr
    body = json.loads(as_json.stdout)
    assert body["samples"] == 6 and body["adapter"] is None
    assert body["metrics"]["overall"]["samples"] == 6
    assert set(body["metrics"]["by_style"]) == {s.meta.style.value for s in evalset if s.meta.style}
    assert "conv." not in table.stdout  # no conversation: the columns of before


def test_eval_command_shows_turn_and_conversation_accuracy(
    first_round: TrainResult, tmp_path: Path
) -> None:
    data = tmp_path / "conversations.jsonl"
    write_samples(conversations_of(make_samples(4, seed=9)), data, "unified")
    model = first_round.config["base_model"]
    common = ["--model", model, "--data", str(data), "--max-new-tokens", "8"]
    table = runner.invoke(cli, ["eval", *common])
    assert table.exit_code == 0, table.stderr
    assert "multi_turn" in table.stdout and "conv." in table.stdout and "turn" in table.stdout
    body = json.loads(runner.invoke(cli, ["eval", *common, "--json"]).stdout)
    overall = body["metrics"]["overall"]
    assert (body["samples"], overall["samples"], overall["conversations"]) == (2, 4, 2)
    assert overall["conversation_accuracy"] is not None and overall["turn_accuracy"] is not None
