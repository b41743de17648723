"""Where a job's `generator_options.templates_dir` may point: a folder under the templates root
(`AF_TEMPLATES_ROOT`, default `<data_dir>/templates`), named relative to it.

A client of the API names a folder the service's operator put there; it cannot make a worker read
templates (or probe for files) anywhere else on the server. The spec keeps the name as given;
workers resolve it against their own root. Errors say what to change without naming server
paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from generators.llm.prompts import bundled_prompts_dir
from generators.template.phrasebook import bundled_templates_dir
from service.errors import InvalidRequest

OPTION = "templates_dir"
DEFAULT_TEMPLATES_ROOT = Path("data") / "templates"  # as Settings' default data_dir


def checked_templates_dir(value: object, root: Path) -> Path:
    """The folder `value` names under `root`; `InvalidRequest` saying what to give otherwise."""
    where = "generator_options.templates_dir"
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{where}: give the name of a folder under the templates root")
    relative = PurePosixPath(value)
    if relative.is_absolute() or ".." in relative.parts or "\\" in value:
        raise InvalidRequest(
            f"{where}: {value!r} is not a folder name under the templates root; give a relative "
            "name such as 'my-templates' (the service's operator sets the root, AF_TEMPLATES_ROOT)"
        )
    base = root.resolve()
    folder = (base / relative).resolve()
    if not folder.is_relative_to(base):  # a link out of the root
        raise InvalidRequest(f"{where}: {value!r} leads out of the templates root")
    if not folder.is_dir():
        raise InvalidRequest(
            f"{where}: no folder {value!r} under the templates root; ask the service's operator "
            "to put your templates there, or leave templates_dir out for the bundled ones"
        )
    return folder


def with_templates_dir_resolved(options: Mapping[str, Any], root: Path) -> dict[str, Any]:
    """`options` with `templates_dir`, if given, as the folder it names under `root`."""
    if OPTION not in options:
        return dict(options)
    return {**options, OPTION: str(checked_templates_dir(options[OPTION], root))}


def without_server_paths(message: str, root: Path) -> str:
    """`message` with the templates root and the installed package's folders left unnamed."""
    for path, shown in (
        (root.resolve(), "<templates root>"),
        (bundled_templates_dir(), "<bundled templates>"),
        (bundled_prompts_dir(), "<bundled prompts>"),
    ):
        message = message.replace(str(path), shown)
    return message
