"""A judge's calibration set, made from a job's own catalog: right answers from the template
generator, and as many schema-valid wrong ones made from them (`generators.wrong_answers`:
swapped values, changed numbers, another sample's query or a junk one, dropped and repeated
calls; and `generators.perturb`'s perturbations that pass the format check by design). Each is
labelled with whether it is right. Seeded: the same catalog and seed give the same set.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from generators.base import GenerationRequest
from generators.perturb import NEEDS_SEMANTIC, perturbations
from generators.template.generator import TemplateGenerator
from generators.wrong_answers import WrongAnswers
from unified.model import Sample, Tool

ID_PREFIX = "calibration-"


def calibration_set(tools: Sequence[Tool], size: int, seed: int = 0) -> list[tuple[Sample, bool]]:
    """About `size` samples, half right answers and half wrong ones, in a seeded order."""
    wanted = max(1, size // 2)
    request = GenerationRequest(n=wanted, seed=seed, id_prefix=ID_PREFIX)
    right = TemplateGenerator().generate(tools, request)
    rng = random.Random(seed)
    wrong = _wrong_answers(right, wanted, seed, rng)
    labelled = [(sample, True) for sample in right] + [(sample, False) for sample in wrong]
    rng.shuffle(labelled)
    return labelled


def _wrong_answers(right: list[Sample], wanted: int, seed: int, rng: random.Random) -> list[Sample]:
    """Up to `wanted` wrong answers, taking the kinds in turn so that each is represented."""
    makers = list(WrongAnswers(right, seed).makers().values())
    semantic = [
        made
        for sample in right
        for made in perturbations(sample, seed)
        if made.meta.extra.get(NEEDS_SEMANTIC)
    ]
    found: list[Sample] = []
    for position, sample in enumerate(right * 4):
        if len(found) >= wanted:
            break
        made: Sample | None
        if position % (len(makers) + 1) == len(makers) and semantic:
            made = semantic.pop(rng.randrange(len(semantic)))
        else:
            made = makers[position % len(makers)](sample)
        if made is not None and made != sample:
            found.append(made.model_copy(update={"id": f"{sample.id}~wrong{len(found)}"}))
    return found
