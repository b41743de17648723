"""Candidate answers to BFCL's public single-turn Python questions: each question's ground truth
(the first acceptable value of every argument) and seeded perturbations of it, right and wrong.

Used to compare `trainer.bfcl_rules` with BFCL's own AST checker.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CATEGORIES = (
    "simple_python",
    "multiple",
    "parallel",
    "parallel_multiple",
    "live_simple",
    "live_multiple",
    "live_parallel",
    "live_parallel_multiple",
)
OPTIONAL = ""

Calls = list[dict[str, dict[str, Any]]]
"""BFCL's model output after decoding: one `{function_name: {argument: value}}` per call."""


@dataclass(frozen=True)
class Candidate:
    id: str
    category: str  # the checker's category: `simple` for simple_python
    variant: str
    functions: list[dict[str, Any]]
    output: Calls
    possible_answer: list[dict[str, dict[str, list[Any]]]]


def questions(data_dir: Path) -> Iterator[tuple[str, dict[str, Any], list[Any]]]:
    """(category, question row, possible answer) for every question of every category."""
    for category in CATEGORIES:
        name = f"BFCL_v4_{category}.json"
        answers = {}
        for line in (data_dir / "possible_answer" / name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            answers[row["id"]] = row["ground_truth"]
        for line in (data_dir / name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            yield category.removesuffix("_python"), row, answers[row["id"]]


def candidates(data_dir: Path, seed: int = 7, combined: int = 4) -> Iterator[Candidate]:
    """The ground truth of each question, each perturbation of it that applies, and `combined`
    candidates with two perturbations drawn at random."""
    rng = random.Random(seed)
    for category, row, answer in questions(data_dir):
        functions = row["function"]
        truth = [{name: resolve(args)} for entry in answer for name, args in entry.items()]
        yield Candidate(row["id"], category, "ground_truth", functions, truth, answer)
        draws = [[p] for p in PERTURBATIONS]
        draws += [rng.sample(PERTURBATIONS, 2) for _ in range(combined)]
        for perturbations in draws:
            output = copy.deepcopy(truth)
            names = [p(rng, output, answer, functions) for p in perturbations]
            if all(names):
                variant = " + ".join(sorted(str(n) for n in names))
                yield Candidate(row["id"], category, variant, functions, output, answer)


def resolve(acceptable_by_argument: dict[str, list[Any]]) -> dict[str, Any]:
    """Each argument's first acceptable value; left out when that is the optional mark."""
    return {
        argument: first(values)
        for argument, values in acceptable_by_argument.items()
        if values and values[0] != OPTIONAL
    }


def first(values: list[Any]) -> Any:
    value = values[0]
    if _acceptable_dict(value):
        return resolve(value)
    if isinstance(value, list) and value and all(_acceptable_dict(v) for v in value):
        return [resolve(v) for v in value]
    return value


def _acceptable_dict(value: Any) -> bool:
    """A dict of {key: [acceptable values]}, not a literal dict value."""
    return isinstance(value, dict) and all(isinstance(v, list) for v in value.values())


# --- perturbations: each edits `output` in place and returns its variant name, or None -------


def _pick_argument(
    rng: random.Random, output: Calls, accept: Any = lambda value: True
) -> tuple[dict[str, Any], str] | None:
    places = [
        (args, argument)
        for call in output
        for args in call.values()
        for argument, value in args.items()
        if accept(value)
    ]
    return rng.choice(places) if places else None


def alternative_value(rng, output, answer, functions):
    places = []
    for call, expected in zip(output, answer, strict=False):  # earlier edits may misalign
        for name, args in call.items():
            for argument, values in expected.get(name, {}).items():
                others = [v for v in values[1:] if v != OPTIONAL]
                if others:
                    places.append((args, argument, others))
    if not places:
        return None
    args, argument, others = rng.choice(places)
    args[argument] = first([rng.choice(others)])
    return "alternative_value"


def case_and_punctuation(rng, output, answer, functions):
    place = _pick_argument(rng, output, lambda v: isinstance(v, str) and v)
    if place is None:
        return None
    args, argument = place
    value = args[argument]
    edits = [
        lambda s: s.upper(),
        lambda s: s.swapcase(),
        lambda s: s.replace(" ", "_"),
        lambda s: s.replace(" ", "-") + ".",
        lambda s: s + "!",  # not a character BFCL ignores
        lambda s: "'" + s + "'",
    ]
    args[argument] = rng.choice(edits)(value)
    return "case_punctuation"


def list_item_case(rng, output, answer, functions):
    place = _pick_argument(
        rng, output, lambda v: isinstance(v, list) and any(isinstance(i, str) for i in v)
    )
    if place is None:
        return None
    args, argument = place
    args[argument] = [i.upper() + " " if isinstance(i, str) else i for i in args[argument]]
    return "list_item_case"


def dict_value_edit(rng, output, answer, functions):
    place = _pick_argument(rng, output, lambda v: isinstance(v, dict) and v)
    if place is None:
        return None
    args, argument = place
    inner = args[argument]
    key = rng.choice(sorted(inner))
    roll = rng.random()
    if roll < 0.3:
        del inner[key]
        return "dict_key_omitted"
    if roll < 0.5:
        inner["unexpected_key"] = 1
        return "dict_key_extra"
    if isinstance(inner[key], str):
        inner[key] = inner[key].title() + rng.choice(["", " x"])
    elif isinstance(inner[key], int | float) and not isinstance(inner[key], bool):
        inner[key] = inner[key] + rng.choice([0, 1, 0.5])
    else:
        inner[key] = str(inner[key])
    return "dict_value_changed"


def omit_argument(rng, output, answer, functions):
    place = _pick_argument(rng, output)
    if place is None:
        return None
    args, argument = place
    del args[argument]
    return "omitted_argument"


def extra_argument(rng, output, answer, functions):
    call = rng.choice(output)
    ((name, args),) = call.items()
    known = next((f for f in functions if f["name"] == name), None)
    unused = [p for p in (known or {}).get("parameters", {}).get("properties", {}) if p not in args]
    if unused and rng.random() < 0.5:
        args[rng.choice(unused)] = "x"
        return "extra_schema_argument"
    args["not_an_argument"] = 1
    return "extra_unknown_argument"


def shuffle_calls(rng, output, answer, functions):
    if len(output) < 2:
        return None
    rng.shuffle(output)
    return "shuffled_calls"


def reorder_array(rng, output, answer, functions):
    place = _pick_argument(rng, output, lambda v: isinstance(v, list) and len(v) > 1)
    if place is None:
        return None
    args, argument = place
    args[argument] = list(reversed(args[argument]))
    return "reordered_array"


def wrong_type(rng, output, answer, functions):
    place = _pick_argument(rng, output)
    if place is None:
        return None
    args, argument = place
    value = args[argument]
    if isinstance(value, bool):
        args[argument] = rng.choice([int(value), str(value).lower()])
    elif isinstance(value, int | float):
        args[argument] = str(value)
    elif isinstance(value, str):
        args[argument] = rng.choice([[value], 1, True])
    elif isinstance(value, list):
        args[argument] = rng.choice([",".join(map(str, value)), [str(v) for v in value]])
    else:
        args[argument] = json.dumps(value)
    return "wrong_type"


def int_float_swap(rng, output, answer, functions):
    place = _pick_argument(
        rng,
        output,
        lambda v: (
            (isinstance(v, int | float) and not isinstance(v, bool))
            or (isinstance(v, list) and v and all(type(i) in (int, float) for i in v))
        ),
    )
    if place is None:
        return None
    args, argument = place
    value = args[argument]
    if isinstance(value, list):
        args[argument] = [float(i) if type(i) is int else int(i) for i in value]
        return "int_float_swap_in_list"
    args[argument] = float(value) if type(value) is int else int(value)
    return "int_float_swap"


def wrong_value(rng, output, answer, functions):
    place = _pick_argument(rng, output)
    if place is None:
        return None
    args, argument = place
    value = args[argument]
    if isinstance(value, bool):
        args[argument] = not value
    elif isinstance(value, int | float):
        args[argument] = value + 1
    elif isinstance(value, str):
        args[argument] = value + " extra"
    elif isinstance(value, list):
        args[argument] = value[:-1]
    else:
        return None
    return "wrong_value"


def wrong_function_name(rng, output, answer, functions):
    index = rng.randrange(len(output))
    ((name, args),) = output[index].items()
    others = [f["name"] for f in functions if f["name"] != name]
    output[index] = {(rng.choice(others) if others else name + "_x"): args}
    return "wrong_function_name"


def missing_or_extra_call(rng, output, answer, functions):
    if len(output) > 1 and rng.random() < 0.5:
        output.pop(rng.randrange(len(output)))
        return "missing_call"
    output.append(copy.deepcopy(rng.choice(output)))
    return "extra_call"


PERTURBATIONS = (
    alternative_value,
    case_and_punctuation,
    list_item_case,
    dict_value_edit,
    omit_argument,
    extra_argument,
    shuffle_calls,
    reorder_array,
    wrong_type,
    int_float_swap,
    wrong_value,
    wrong_function_name,
    missing_or_extra_call,
)
