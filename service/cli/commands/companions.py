"""Files a dataset format needs beside the dataset file, written by `export`, `run` and
`convert --out`."""

from __future__ import annotations

from pathlib import Path

from service.cli.console import err_console
from unified.formats.llamafactory import NAME as LLAMAFACTORY
from unified.formats.llamafactory import write_dataset_info


def note_companion_files(fmt: str, out: Path) -> None:
    """Write what a dataset file in `fmt` needs beside it: for `llamafactory`, its entry in the
    `dataset_info.json` of the file's folder (merged with the entries already there)."""
    if fmt != LLAMAFACTORY or not out.is_file():
        return
    info = write_dataset_info(out)
    err_console.print(
        f"dataset '{out.stem}' added to {info}: train with dataset: {out.stem} and "
        f"dataset_dir: {info.parent}",
        highlight=False,
    )
