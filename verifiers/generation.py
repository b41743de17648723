"""The `generation` stage: rejects the samples whose generation failed (an LLM answer cut off at
its token limit, a request the backend refused, an answer that did not parse, a prompt too long
for the model's context even trimmed) and the
instruction-following samples whose response breaks a constraint their instruction states
(recorded in `meta.extra["constraints"]`, checked by `unified.constraints.check_constraint`).

In a conversation (a sample with follow-up turns) a constraint that names its turn
(`"turn": N`, 1-based) binds the last answer of that turn; one that names none binds the
conversation's last answer, as it binds a single-turn sample's. A constraint naming a turn the
conversation does not have is itself broken (`constraint_violated`, saying so).

The LLM generator keeps such samples, marked in `meta.extra`, instead of dropping them, so that
every requested sample is accounted for in the job's funnel; this stage is where they leave,
each with its own reason. It runs first: the other stages have nothing to check in them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llm.output import (
    BACKEND_ERROR,
    BLUEPRINT_FAILED,
    BLUEPRINT_NOT_FOLLOWED,
    PROMPT_TOO_LONG,
    TRUNCATED,
    UNPARSEABLE,
    generation_failure,
)
from unified.constraints import check_constraint
from unified.model import Sample
from verifiers.stages import StageBase, StageContext
from verifiers.verdict import Reason, Verdict

STAGE = "generation"

REASONS = {
    TRUNCATED: Reason.truncated,
    BACKEND_ERROR: Reason.generation_error,
    UNPARSEABLE: Reason.unparseable_output,
    PROMPT_TOO_LONG: Reason.prompt_too_long,
    BLUEPRINT_FAILED: Reason.blueprint_failed,
    BLUEPRINT_NOT_FOLLOWED: Reason.blueprint_not_followed,
}


def generation_verdict(sample: Sample) -> Verdict:
    """Accept a sample unless it records a failed generation or its response breaks one of
    its instruction's constraints."""
    failure = generation_failure(sample)
    if failure is not None:
        kind, detail = failure
        return Verdict.reject(STAGE, REASONS.get(kind, Reason.generation_error), detail)
    for constraint in sample.meta.extra.get("constraints") or []:
        stated = constraint.get("text") or constraint.get("kind")
        turn = constraint.get("turn")
        if turn is None:
            problem = check_constraint(constraint, sample.final_answer() or "")
        else:
            answer, problem = _turn_answer(sample, turn)
            problem = problem or check_constraint(constraint, answer)
        if problem is not None:
            where = f"turn {turn}: " if turn is not None else ""
            return Verdict.reject(
                STAGE, Reason.constraint_violated, f"{where}constraint {stated!r}: {problem}"
            )
    return Verdict.accept(STAGE)


def _turn_answer(sample: Sample, turn: Any) -> tuple[str, str | None]:
    """The last answer of turn `turn` (1-based), or why the constraint cannot name it."""
    turns = sample.conversation()
    if isinstance(turn, bool) or not isinstance(turn, int) or not 1 <= turn <= len(turns):
        return "", (
            f"it names turn {turn!r}, and the conversation has {len(turns)} turn(s); give a "
            "turn number from 1, or none for the last answer"
        )
    answers = [step.answer for step in turns[turn - 1].steps if step.answer is not None]
    return (answers[-1] if answers else ""), None


class GenerationStage(StageBase):
    """Rejects failed generations with `truncated`, `generation_error`, `unparseable_output` or
    `prompt_too_long`, multi_turn conversations whose blueprint failed on the mock API or was
    not followed with `blueprint_failed` or `blueprint_not_followed`, and broken instruction
    constraints with `constraint_violated`."""

    name = STAGE
    judges_conversations = True

    def verify_batch(self, samples: Sequence[Sample], context: StageContext) -> list[Verdict]:
        """One verdict per sample, in order."""
        return [generation_verdict(sample) for sample in samples]
