"""Real samples for the tests that hold the fast paths to the plain ones: every public dataset
file in tests/data, the bundled travel calls, a template job's samples with the mock API's
answers in their steps, and BFCL's own questions with their possible answers (from the
`bfcl-eval` package, when installed), plus wrong answers to some of them."""

from __future__ import annotations

from pathlib import Path

from generators.base import GENERATORS, GenerationRequest
from unified.catalogs import load_catalog
from unified.formats import read_samples
from unified.model import Sample
from verifiers.stages import StageContext, build_stages, run_stages

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ROOT / "tests" / "data" / "formats"
TRAVEL_CATALOG = ROOT / "examples" / "travel_api.yaml"
TRAVEL_CALLS = ROOT / "examples" / "travel_calls.jsonl"
DATASETS = [
    ("xlam_function_calling_60k.jsonl", "xlam", None),
    ("openai_tool_calling.jsonl", "openai", None),
    ("openai_legacy_function_calling.jsonl", "openai", None),
    ("hermes_function_calling_v1.jsonl", "sharegpt", None),
    ("hermes_2_pro_prompt_format.jsonl", "sharegpt", None),
    ("bfcl_simple_questions.jsonl", "bfcl", "bfcl_simple_possible_answers.jsonl"),
    (
        "bfcl_parallel_multiple_questions.jsonl",
        "bfcl",
        "bfcl_parallel_multiple_possible_answers.jsonl",
    ),
    ("bfcl_irrelevance_questions.jsonl", "bfcl", None),
]
BFCL_CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "live_simple")


def _read(path: Path, fmt: str, answers: Path | None = None, limit: int | None = None) -> list:
    options = {"answers": answers} if answers is not None else {}
    with read_samples(path, fmt, on_error="skip", **options) as reader:
        return [sample for i, sample in enumerate(reader) if limit is None or i < limit]


def dataset_samples() -> list[Sample]:
    """The samples of every dataset file in tests/data/formats and of examples/."""
    samples = []
    for name, fmt, answers in DATASETS:
        samples += _read(FORMATS / name, fmt, FORMATS / answers if answers else None)
    return samples + _read(TRAVEL_CALLS, "xlam")


def template_job_samples(n: int = 200) -> list[Sample]:
    """A template job's samples on the travel catalog, after the execution stage (their steps
    hold the mock API's answers)."""
    tools = load_catalog(TRAVEL_CATALOG).tools
    samples = GENERATORS.get("template")().generate(tools, GenerationRequest(n=n, seed=3))
    return run_stages(build_stages(["execution"]), samples, StageContext(tools)).samples


def bfcl_samples(per_category: int = 120) -> list[Sample]:
    """BFCL's questions with their possible answers, from the bfcl-eval package; empty when it
    is not installed."""
    try:
        import bfcl_eval
    except ImportError:
        return []
    data = Path(bfcl_eval.__file__).parent / "data"
    samples = []
    for category in BFCL_CATEGORIES:
        questions = data / f"BFCL_v4_{category}.json"
        answers = data / "possible_answer" / questions.name
        if questions.exists() and answers.exists():
            samples += _read(questions, "bfcl", answers, per_category)
    return samples


def bfcl_conversations() -> list[Sample]:
    """BFCL's multi-turn rows (with their file-system functions), as conversations."""
    with read_samples(
        FORMATS / "bfcl_multi_turn_questions.jsonl",
        "bfcl",
        answers=FORMATS / "bfcl_multi_turn_possible_answers.jsonl",
        functions=FORMATS / "bfcl_gorilla_file_system_functions.jsonl",
    ) as reader:
        return list(reader)


def wrong_answers(samples: list[Sample]) -> list[Sample]:
    """Copies of samples whose first call is wrong: an undeclared argument, every argument a
    list, or no arguments at all, in turn."""
    wrong = []
    for i, sample in enumerate(samples):
        calls = sample.tool_calls()
        if not calls or not isinstance(calls[0].arguments, dict):
            continue
        arguments = calls[0].arguments
        changed = [
            {**arguments, "surprise": 1},
            {name: [value] for name, value in arguments.items()},
            {},
        ][i % 3]
        copy = sample.model_copy(deep=True, update={"id": f"{sample.id}-wrong"})
        copy.tool_calls()[0].arguments = changed
        wrong.append(copy)
    return wrong
