"""`trainer.bfcl_rules` agrees with BFCL's own AST checker on candidates built from BFCL's public
single-turn Python questions: every ground truth and seeded perturbations of it. So does the
evaluator's path: the question imported as a unified sample (its possible answer kept in the
calls' `acceptable`), the candidate judged by `trainer.evaluate.judge`.

bfcl-eval is a test dependency installed with `--no-deps` (scripts/setup-tests). Its checker
imports `bfcl_eval.constants.model_config`, which loads every model handler (tree_sitter,
openai, anthropic, ...) only to answer one question: whether a model's function names have
their dots written as underscores. The test stubs that module with a mapping that answers "no"
for the model name it passes, so the checker compares names as written, as ours does.
"""

from __future__ import annotations

import copy
import importlib.util
import itertools
import sys
import types
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from bfcl_candidates import Candidate, candidates

from trainer.bfcl_rules import check
from trainer.evaluate import ParsedOutput, judge
from unified.formats.bfcl import sample_from_question
from unified.model import Sample, ToolCall
from verifiers.format import FormatVerifier

MODEL_NAME = "actionforge-agreement"  # no underscore: BFCL reads "_" in model names as "/"
FLOOR = 0.995

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("bfcl_eval") is None,
    reason="bfcl-eval is not installed; run scripts/setup-tests",
)


@dataclass(frozen=True)
class _KeepsDots:
    underscore_to_dot: bool = False


def bfcl_checker() -> Any:
    if "bfcl_eval.constants.model_config" not in sys.modules:
        stub = types.ModuleType("bfcl_eval.constants.model_config")
        stub.MODEL_CONFIG_MAPPING = {MODEL_NAME: _KeepsDots()}  # type: ignore[attr-defined]
        sys.modules["bfcl_eval.constants.model_config"] = stub
    from bfcl_eval.constants.enums import Language
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker

    def run(candidate: Candidate) -> tuple[bool, str]:
        result = ast_checker(
            copy.deepcopy(candidate.functions),
            copy.deepcopy(candidate.output),
            copy.deepcopy(candidate.possible_answer),
            Language.PYTHON,
            candidate.category,
            MODEL_NAME,
        )
        return bool(result["valid"]), result.get("error_type", "valid")

    return run


def data_dir() -> Path:
    import bfcl_eval

    return Path(bfcl_eval.__file__).parent / "data"


def ours(candidate: Candidate) -> tuple[bool, str]:
    calls = [(name, args) for call in candidate.output for name, args in call.items()]
    verdict = check(candidate.category, candidate.functions, calls, candidate.possible_answer)
    return verdict.valid, verdict.reason


class EvaluatorPath:
    """Judges candidates the way `actionforge eval` judges a model's answers: the question
    imported by the BFCL importer (once per question), the answer through `judge`."""

    def __init__(self) -> None:
        self.references: dict[str, Sample] = {}
        self.verifier = FormatVerifier()

    def __call__(self, candidate: Candidate) -> bool:
        reference = self.references.get(candidate.id)
        if reference is None:
            question = {
                "id": candidate.id,
                "question": [[{"role": "user", "content": "?"}]],
                "function": candidate.functions,
            }
            reference = sample_from_question(question, candidate.possible_answer, "bfcl", 1)
            self.references = {candidate.id: reference}
        calls = [
            ToolCall(name=name, arguments=arguments)
            for call in candidate.output
            for name, arguments in call.items()
        ]
        return judge(ParsedOutput(calls), reference, self.verifier).exact_match


@pytest.mark.slow
def test_our_rules_agree_with_bfcls_checker() -> None:
    theirs = bfcl_checker()
    evaluator = EvaluatorPath()
    total = agreed = both_reject = same_reason = evaluator_agreed = 0
    evaluator_disagreements: Counter[str] = Counter()
    by_variant: Counter[tuple[str, bool]] = Counter()
    disagreements: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for candidate in candidates(data_dir()):
        mine, my_reason = ours(candidate)
        try:
            bfcl, bfcl_reason = theirs(candidate)
        except Exception as exc:  # BFCL's checker has no answer for this input
            bfcl, bfcl_reason = None, f"crash:{type(exc).__name__}"
        total += 1
        by_variant[(candidate.variant, mine)] += 1
        judged = evaluator(candidate)
        evaluator_agreed += judged == bfcl
        if judged != bfcl:
            evaluator_disagreements[f"{candidate.variant}: BFCL {bfcl_reason}"] += 1
        if mine == bfcl:
            agreed += 1
            both_reject += not mine
            same_reason += not mine and my_reason == bfcl_reason
            if candidate.variant == "ground_truth" and not mine:
                print(f"both reject the ground truth of {candidate.id}: {my_reason}")
            continue
        key = f"{candidate.variant}: ours {my_reason} / BFCL {bfcl_reason}"
        disagreements[key] += 1
        examples.setdefault(key, f"{candidate.id} {candidate.output}")
    rate = agreed / total
    print(f"\nagreement with BFCL's ast_checker: {agreed}/{total} = {rate:.3%}")
    print(f"same reason where both reject: {same_reason}/{both_reject}")
    for (variant, valid), count in sorted(by_variant.items()):
        print(f"  {variant:24} {'valid' if valid else 'invalid':8} {count}")
    for key, count in disagreements.most_common():
        print(f"disagreement x{count}: {key}\n    e.g. {examples[key][:300]}")
    evaluator_rate = evaluator_agreed / total
    print(f"the evaluator's path agrees: {evaluator_agreed}/{total} = {evaluator_rate:.3%}")
    for key, count in evaluator_disagreements.most_common(12):
        print(f"  evaluator disagreement x{count}: {key}")
    assert total > 10_000
    assert rate >= FLOOR
    assert evaluator_rate >= FLOOR


def test_the_comparison_sees_a_rule_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without string normalisation our verdicts part from BFCL's on many candidates."""
    theirs = bfcl_checker()
    monkeypatch.setattr("trainer.bfcl_rules.normalise_string", lambda text: text)
    sample = list(itertools.islice(candidates(data_dir()), 3000))
    agreed = sum(ours(c)[0] == theirs(c)[0] for c in sample)
    assert agreed / len(sample) < FLOOR
