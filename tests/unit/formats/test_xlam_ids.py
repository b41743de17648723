"""xlam exports concatenate with the real xlam-function-calling-60k rows: the same columns with the
same types (the real `id` is an integer), loaded the way users load both, with `datasets`."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from generators.base import GenerationRequest
from generators.template.generator import TemplateGenerator
from unified.catalogs import load_catalog
from unified.formats import read_samples, write_samples
from unified.formats.xlam import xlam_row_id

ROOT = Path(__file__).resolve().parents[3]
REAL_ROWS = ROOT / "tests" / "data" / "xlam" / "rows_sample.jsonl"
TRAVEL = ROOT / "examples" / "travel_api.yaml"

datasets = pytest.importorskip("datasets")


def _load(path: Path, cache: Path) -> datasets.Dataset:
    return datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(cache))


def test_exported_rows_concatenate_with_the_real_rows(tmp_path: Path) -> None:
    generated = TemplateGenerator().generate(
        load_catalog(TRAVEL).tools, GenerationRequest(n=40, seed=7, id_prefix="batch-1-")
    )
    real_samples = list(read_samples(REAL_ROWS, "xlam"))
    ours = tmp_path / "ours.jsonl"
    assert write_samples([*generated, *real_samples], ours, "xlam") == 40 + len(real_samples)

    real = _load(REAL_ROWS, tmp_path / "cache")
    exported = _load(ours, tmp_path / "cache")
    assert exported.features == real.features
    assert real.features["id"] == datasets.Value("int64")
    both = datasets.concatenate_datasets([real, exported])
    assert both.num_rows == real.num_rows + exported.num_rows
    assert both.features == real.features

    ids = exported["id"]
    assert ids[:40] == [xlam_row_id(sample.id) for sample in generated]
    assert ids[40:] == real["id"]  # imported rows keep their own ids
    assert len(set(ids)) == len(ids)
    assert not set(ids[:40]) & set(range(60_000)), "hashed ids stay clear of the dataset's"
    back = list(read_samples(ours, "xlam"))
    assert [sample.id for sample in back[:40]] == [str(i) for i in ids[:40]]


def test_string_ids_would_not_concatenate(tmp_path: Path) -> None:
    """What the integer ids fix: a row with a string id does not join the real rows."""
    row = orjson.loads(REAL_ROWS.read_bytes().splitlines()[0])
    stringy = tmp_path / "stringy.jsonl"
    stringy.write_bytes(orjson.dumps({**row, "id": "batch-1-0"}) + b"\n")
    real = _load(REAL_ROWS, tmp_path / "cache")
    with pytest.raises(ValueError):
        datasets.concatenate_datasets([real, _load(stringy, tmp_path / "cache")])
