"""A batch's tally: what it added to its job's funnel, stored with the batch when its samples
are stored (generated) and verified, so that a running job's progress is a sum over its batches
rather than a recount of every sample and verdict: the cost of a progress update stays flat as
a job grows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from verifiers.verdict import Verdict

# (status, stage, reason) of one sample, as service.pipeline.batches decides it.
Outcome = tuple[str, str | None, str | None]


def generated_tally(samples: int) -> dict[str, Any]:
    """The tally of a batch whose `samples` are stored but not verified yet."""
    return {"generated": samples}


def verified_tally(
    sample_ids: Sequence[str],
    verdicts: Sequence[Sequence[Verdict]],
    outcomes: Sequence[Outcome],
    examples: int,
) -> dict[str, Any]:
    """The tally of a verified batch: samples accepted and rejected, per stage passed and
    rejected, and per (stage, reason) the rejected samples with the first `examples` ids in
    position order (`sample_ids` are in position order)."""
    by_stage: dict[str, dict[str, int]] = {}
    for judged in verdicts:
        for verdict in judged:
            entry = by_stage.setdefault(verdict.stage, {"passed": 0, "rejected": 0})
            entry["passed" if verdict.accepted else "rejected"] += 1
    accepted = rejected = 0
    rejections: dict[tuple[str | None, str | None], dict[str, Any]] = {}
    for sample_id, (status, stage, reason) in zip(sample_ids, outcomes, strict=True):
        if status == "accepted":
            accepted += 1
        elif status == "rejected":
            rejected += 1
            rejection = rejections.setdefault(
                (stage, reason), {"stage": stage, "reason": reason, "samples": 0, "examples": []}
            )
            rejection["samples"] += 1
            if len(rejection["examples"]) < examples:
                rejection["examples"].append(sample_id)
    return {
        "generated": len(sample_ids),
        "accepted": accepted,
        "rejected": rejected,
        "by_stage": by_stage,
        "rejections": list(rejections.values()),
    }


def sum_tallies(tallies: Iterable[dict[str, Any]], examples: int) -> dict[str, Any]:
    """The tallies of a job's batches, given in batch order, added up; each rejection keeps its
    first `examples` ids, which batch order makes the first by position."""
    total: dict[str, Any] = {"generated": 0, "accepted": 0, "rejected": 0, "by_stage": {}}
    rejections: dict[tuple[str | None, str | None], dict[str, Any]] = {}
    for tally in tallies:
        for name in ("generated", "accepted", "rejected"):
            total[name] += tally.get(name, 0)
        for stage, counted in tally.get("by_stage", {}).items():
            entry = total["by_stage"].setdefault(stage, {"passed": 0, "rejected": 0})
            entry["passed"] += counted["passed"]
            entry["rejected"] += counted["rejected"]
        for added in tally.get("rejections", []):
            key = (added["stage"], added["reason"])
            rejection = rejections.setdefault(
                key, {"stage": key[0], "reason": key[1], "samples": 0, "examples": []}
            )
            rejection["samples"] += added["samples"]
            room = examples - len(rejection["examples"])
            if room > 0:
                rejection["examples"].extend(added["examples"][:room])
    total["rejections"] = list(rejections.values())
    return total
