"""A job's dataset as a Hugging Face dataset folder: the rows under `data/`, and a dataset card
(`README.md`) whose YAML front matter the Hub and `datasets.load_dataset(folder)` read (license,
task categories, languages, size, the data files) and whose text says how the rows were made:
the catalog, the generator and its model, the verification stages and judge, and the job's funnel
per stage and reason.

Pure: `dataset_card` turns what the API says about a job into text; the CLI writes the files.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import yaml

from service.api.schemas import CatalogPublic, JobPublic

DATA_STEM = "data/train"
CARD_FILE = "README.md"
DEFAULT_LICENSE = "other"
_SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"))


def size_category(rows: int) -> str:
    """The Hub's size category of a dataset of `rows` rows."""
    return next((name for limit, name in _SIZES if rows < limit), "n>1M")


def data_file(suffix: str) -> str:
    """Where the rows go in the folder, relative to it, for an export file `suffix`."""
    return f"{DATA_STEM}{suffix}"


def front_matter(
    rows: int, fmt: str, data_path: str, license_id: str = DEFAULT_LICENSE
) -> dict[str, Any]:
    """The card's YAML metadata: what the Hub indexes and what `load_dataset` reads."""
    return {
        "license": license_id,
        "task_categories": ["text-generation"],
        "language": ["en"],
        "tags": ["function-calling", "tool-use", "synthetic", "actionforge", f"format-{fmt}"],
        "size_categories": [size_category(rows)],
        "configs": [
            {"config_name": "default", "data_files": [{"split": "train", "path": data_path}]}
        ],
    }


def dataset_card(
    job: JobPublic,
    catalog: CatalogPublic | None,
    rows: int,
    fmt: str,
    data_path: str,
    license_id: str = DEFAULT_LICENSE,
) -> str:
    """The dataset card of `rows` rows of `job`'s accepted samples written in `fmt` to
    `data_path` (relative to the folder)."""
    meta = yaml.safe_dump(front_matter(rows, fmt, data_path, license_id), sort_keys=False)
    title = f"ActionForge dataset of job {job.id}"
    if catalog is not None:
        title = f"{catalog.title or catalog.name}: tool-calling samples (ActionForge job {job.id})"
    lines = [f"---\n{meta}---", "", f"# {title}", ""]
    lines += [
        f"{rows:,} verified tool-calling samples in the `{fmt}` format, generated and verified by "
        "ActionForge. Only samples every verification stage accepted are here.",
        "",
        "```python",
        "from datasets import load_dataset",
        'dataset = load_dataset("<this folder or repo>", split="train")',
        "```",
        "",
        "## How it was made",
        "",
        *_provenance(job, catalog),
        "",
        "## Funnel",
        "",
        "| step | samples | rejected |",
        "|---|---:|---:|",
        *(f"| {s.step} | {s.samples:,} | {s.rejected:,} |" for s in job.counts.funnel),
    ]
    if job.counts.rejections:
        lines += ["", "## Why samples were rejected", "", "| stage | reason | samples |"]
        lines.append("|---|---|---:|")
        lines += [
            f"| {r.stage or '-'} | {r.reason or '-'} | {r.samples:,} |"
            for r in job.counts.rejections
        ]
    lines += [
        "",
        "## License",
        "",
        f"`{license_id}`: the samples are made from the catalog's API descriptions; check that "
        "its terms allow publishing them before you push this dataset.",
        "",
    ]
    return "\n".join(lines)


def _provenance(job: JobPublic, catalog: CatalogPublic | None) -> list[str]:
    spec = job.spec
    model = spec.generator_options.get("model")
    generator = f"`{spec.generator}`" + (f" with model `{model}`" if model else "")
    stages = ", ".join(f"`{stage}`" for stage in spec.verify) or "none"
    finished = job.finished_at or datetime.now(UTC)
    lines = []
    if catalog is not None:
        lines.append(
            f"- Catalog: `{catalog.name}` ({catalog.kind}, {len(catalog.tools)} tools, "
            f"sha256 `{catalog.sha256[:12]}`)"
        )
    lines += [
        f"- Generator: {generator}; {spec.n:,} samples requested, seed {spec.seed}",
        f"- Verification stages, in order: {stages}",
    ]
    if spec.judge is not None:
        lines.append(f"- Judge: `{spec.judge.model}` ({spec.judge.backend})")
    calibration = job.judge_calibration
    if calibration is not None:
        lines.append(
            f"- Judge calibration on the catalog: accepted {calibration.right_accepted} of "
            f"{calibration.right} right answers, rejected {calibration.wrong_rejected} of "
            f"{calibration.wrong} wrong ones (balanced accuracy {calibration.accuracy:.2f})"
        )
    lines += [
        f"- Generated {job.counts.generated:,}, accepted {job.counts.accepted:,}, "
        f"rejected {job.counts.rejected:,}",
        f"- Job `{job.id}`, finished {finished:%Y-%m-%d %H:%M} UTC ({job.status})",
    ]
    return lines
