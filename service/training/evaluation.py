"""A newly trained adapter's evaluation on the catalog's held-out samples, next to the base
model's (cached per evaluation set) and the parent version's, with the deltas between them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.settings import Settings
from service.training.data import TrainingPlan
from service.training.lease import Lease

if TYPE_CHECKING:
    from trainer.evaluate import EvalReport


def evaluate_version(
    plan: TrainingPlan, adapter: Path, parent_adapter: Path | None, settings: Settings, lease: Lease
) -> dict[str, Any]:
    """The new adapter's report on the held-out samples, the base model's (cached per
    evaluation set) and the parent's (its own when made on the same set), and the deltas."""
    from trainer.evaluate import EvalReport

    if not plan.heldout:
        return {}

    def run(adapter_dir: Path | None) -> EvalReport:
        from trainer.evaluate import evaluate

        return evaluate(
            plan.version.base_model,
            plan.heldout,
            adapter_dir,
            max_new_tokens=settings.train_eval_max_new_tokens,
            progress=lease.check,
        ).report

    report = run(adapter)
    if plan.cached_base is not None:
        base = plan.cached_base
    else:
        base = {
            "heldout_digest": plan.heldout_digest,
            "report": run(None).to_dict(),
            "evaluated_by": plan.version.id,
        }
    base_report = EvalReport.from_dict(base["report"])
    found: dict[str, Any] = {
        "eval": report.to_dict(),
        "base": base,
        "compare": {"base": _deltas(base_report, report), "parent": None},
    }
    if plan.parent is not None and parent_adapter is not None:
        before = plan.parent.metrics.get("eval") if plan.parent.metrics else None
        same_set = (plan.parent.metrics.get("heldout") or {}).get("digest") == plan.heldout_digest
        parent_report = EvalReport.from_dict(before) if before and same_set else run(parent_adapter)
        found["parent"] = {
            "version_id": plan.parent.id,
            "version": plan.parent.version,
            "report": parent_report.to_dict(),
        }
        found["compare"]["parent"] = _deltas(parent_report, report)
    lease.check()
    return found


def _deltas(before: EvalReport, after: EvalReport) -> list[dict[str, Any]]:
    from trainer.evaluate import compare

    return [
        {
            "group": delta.group,
            "metric": delta.metric,
            "before": delta.before,
            "after": delta.after,
            "change": delta.change,
        }
        for delta in compare(before, after)
    ]
