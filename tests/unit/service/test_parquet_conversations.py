"""The Parquet export of multi-turn samples, on real rows (BFCL's multi-turn questions and
Microsoft's multi-turn chat examples, tests/data/formats/SOURCES.md) beside single-turn ones:
the follow-up turns travel in the `turns` column, which `datasets`, pandas and pyarrow load as
text, and every row reads back into the sample it was written from."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from real_unified_rows import bfcl_conversations

from service.export.parquet import (
    PARQUET_SCHEMA,
    parquet_bytes,
    parquet_row,
    sample_from_parquet_row,
    stored_parquet_row,
)
from unified.formats import read_samples
from unified.model import Sample

FORMATS = Path(__file__).resolve().parents[2] / "data" / "formats"
OLD_COLUMNS = [
    "id",
    "query",
    "style",
    "tools",
    "answers",
    "steps",
    "final_answer",
    "task_instruction",
    "format_instruction",
    "examples",
    "meta",
    "format_version",
]


def mixed_samples() -> list[Sample]:
    conversations = bfcl_conversations()
    with read_samples(FORMATS / "openai_multi_turn_chat.jsonl", "openai") as reader:
        conversations += list(reader)
    with read_samples(
        FORMATS / "bfcl_simple_questions.jsonl",
        "bfcl",
        answers=FORMATS / "bfcl_simple_possible_answers.jsonl",
    ) as reader:
        single = list(reader)[:3]
    assert all(s.turns for s in conversations) and not any(s.turns for s in single)
    return [*single, *conversations]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Sample]]:
    samples = mixed_samples()
    path = tmp_path_factory.mktemp("parquet") / "mixed.parquet"
    path.write_bytes(b"".join(parquet_bytes([samples[:4], samples[4:]])))
    return path, samples


def test_every_row_reads_back_into_its_sample(written: tuple[Path, list[Sample]]) -> None:
    path, samples = written
    table = pq.read_table(path)
    assert table.schema.equals(PARQUET_SCHEMA, check_metadata=True)
    assert table.column_names == [*OLD_COLUMNS, "turns"]  # the new column comes last
    rows = table.to_pylist()
    assert [sample_from_parquet_row(row) for row in rows] == samples
    for row, sample in zip(rows, samples, strict=True):
        assert json.loads(row["turns"]) == [t.model_dump(mode="json") for t in sample.turns]
        assert row["format_version"] == ("1.1" if sample.turns else "1.0")
        calls = [call.name for call in sample.tool_calls()]
        assert [call["name"] for call in json.loads(row["answers"])] == calls
        assert row["final_answer"] == sample.final_answer()


def test_datasets_and_pandas_load_the_turns_column(
    written: tuple[Path, list[Sample]], tmp_path: Path
) -> None:
    import datasets
    import pandas as pd

    path, samples = written
    dataset = datasets.load_dataset(
        "parquet", data_files=str(path), split="train", cache_dir=str(tmp_path / "cache")
    )
    assert dataset.column_names == [*OLD_COLUMNS, "turns"]
    assert dataset.features["turns"] == datasets.Value("string")
    assert [sample_from_parquet_row(row) for row in dataset] == samples
    follow_ups = [len(json.loads(text)) for text in dataset["turns"]]
    assert follow_ups == [len(sample.turns) for sample in samples]
    frame = pd.read_parquet(path)
    assert frame["turns"].map(json.loads).map(len).tolist() == follow_ups
    assert not frame["turns"].isna().any()


def test_rows_from_stored_json_equal_those_from_samples() -> None:
    for sample in mixed_samples():
        stored = json.dumps(sample.model_dump(mode="json", by_alias=True))
        assert stored_parquet_row(stored) == parquet_row(sample)
        copied = sample.model_copy(update={"format_version": "1.0"})  # turns added after
        assert parquet_row(copied)["format_version"] == parquet_row(sample)["format_version"]


def test_a_file_written_before_the_turns_column_still_reads() -> None:
    sample = mixed_samples()[0]
    row = parquet_row(sample)
    del row["turns"]
    assert sample_from_parquet_row(row) == sample
    table = pq.read_table(io.BytesIO(b"".join(parquet_bytes([[sample]]))))
    assert table.column("turns").to_pylist() == ["[]"]
