"""The numbers behind the dashboard's bar charts, which the templates draw as inline SVG: a
job's funnel, and a model version's held-out metrics next to the base model's and its parent's.
Pure functions of what the REST API returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from service.api.model_schemas import OVERALL
from service.api.schemas import FunnelStep


@dataclass(frozen=True)
class FunnelBar:
    """One step of a funnel: its samples and those it rejected, as shares (0-100) of the
    samples generated (of the largest step when nothing was generated yet)."""

    step: str
    samples: int
    rejected: int
    samples_width: float
    rejected_width: float


def funnel_bars(funnel: Sequence[FunnelStep]) -> list[FunnelBar]:
    """Bars for generated -> each stage -> accepted; a stage's bar shows what it passed, then
    what it rejected after it."""
    scale = max([step.samples + step.rejected for step in funnel] + [1])
    return [
        FunnelBar(
            step=step.step,
            samples=step.samples,
            rejected=step.rejected,
            samples_width=_share(step.samples, scale),
            rejected_width=_share(step.rejected, scale),
        )
        for step in funnel
    ]


@dataclass(frozen=True)
class MetricBar:
    """One model's value of a metric (None: no samples to compute it on) and its bar width
    (0-100, the value as a percentage). `role`: base, previous or version."""

    model: str
    value: float | None
    role: str = "version"

    @property
    def width(self) -> float:
        return 0.0 if self.value is None else round(max(0.0, min(1.0, self.value)) * 100, 2)


@dataclass(frozen=True)
class MetricGroup:
    """A metric of one group of held-out samples (overall, or one query style) for each
    model compared: the base model, the parent version (when there is one) and the version."""

    group: str
    bars: list[MetricBar]


def version_comparison(
    metrics: dict[str, Any], version: int, metric: str = "accuracy"
) -> list[MetricGroup]:
    """`metric` overall and per style for the base model, the parent version and version
    `version`, from a version's `metrics` (`eval`, `base.report`, `parent.report`); empty
    before it was evaluated."""
    own = metrics.get("eval") or {}
    if not own:
        return []
    reports = [("base", "base", (metrics.get("base") or {}).get("report") or {})]
    parent = metrics.get("parent") or {}
    if parent.get("report"):
        reports.append((f"v{parent.get('version', '?')}", "previous", parent["report"]))
    reports.append((f"v{version}", "version", own))
    groups = [OVERALL, *(own.get("by_style") or {})]
    return [
        MetricGroup(
            group=group,
            bars=[
                MetricBar(model, _metric(report, group, metric), role)
                for model, role, report in reports
            ],
        )
        for group in groups
    ]


def _metric(report: dict[str, Any], group: str, metric: str) -> float | None:
    values = report.get(OVERALL) if group == OVERALL else (report.get("by_style") or {}).get(group)
    value = (values or {}).get(metric)
    return float(value) if isinstance(value, int | float) else None


def _share(part: int, whole: int) -> float:
    return round(100 * part / whole, 2) if whole else 0.0


def overall_by_version(
    versions: Sequence[tuple[int, dict[str, Any]]], metric: str = "accuracy"
) -> list[MetricBar]:
    """`metric` on all held-out samples for the base model, then for each version evaluated,
    oldest first, from (version number, metrics) pairs. The base model's figure is the newest
    one (evaluation sets grow as a catalog's samples do)."""
    evaluated = sorted((n, m) for n, m in versions if m.get("eval"))
    if not evaluated:
        return []
    base = (evaluated[-1][1].get("base") or {}).get("report") or {}
    return [
        MetricBar("base", _metric(base, OVERALL, metric), "base"),
        *(MetricBar(f"v{n}", _metric(m["eval"], OVERALL, metric)) for n, m in evaluated),
    ]
