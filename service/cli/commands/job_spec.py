"""A job's spec from the command's options (`run` and `submit`); the API checks the rest."""

from __future__ import annotations

from typing import Any

from service.cli.commands.json_options import parse_json_object
from unified.errors import ActionForgeError


def parse_styles(text: str) -> dict[str, float]:
    """`simple=1,parallel=2` -> {"simple": 1.0, "parallel": 2.0}; names are checked by the API."""
    weights: dict[str, float] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        name, equals, weight = part.partition("=")
        try:
            if not equals or not name.strip():
                raise ValueError(part)
            weights[name.strip()] = float(weight)
        except ValueError:
            raise ActionForgeError(
                f"--styles: {part!r} is not name=weight; write style weights separated by "
                "commas, e.g. simple=1,parallel=2"
            ) from None
    if not weights:
        raise ActionForgeError("--styles is empty; write e.g. simple=1,parallel=2")
    return weights


def job_spec(
    n: int,
    seed: int,
    styles: str | None,
    generator: str | None,
    verify: str | None,
    generator_options: str | None = None,
    judge: str | None = None,
    stage_options: str | None = None,
) -> dict[str, Any]:
    """The body of a job spec from the command's options; unset options take the API's defaults."""
    spec: dict[str, Any] = {"n": n, "seed": seed}
    if styles is not None:
        spec["styles"] = parse_styles(styles)
    if generator is not None:
        spec["generator"] = generator
    if verify is not None:
        spec["verify"] = [stage.strip() for stage in verify.split(",") if stage.strip()]
    if generator_options is not None:
        spec["generator_options"] = parse_json_object("--generator-options", generator_options)
    if judge is not None:
        spec["judge"] = parse_json_object("--judge", judge)
    if stage_options is not None:
        spec["stage_options"] = parse_json_object("--stage-options", stage_options)
    return spec
