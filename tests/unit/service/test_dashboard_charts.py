"""The dashboard's pure parts: the bars of its charts, its number formats, where a login may
send the browser, and the package data an installed wheel needs."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from service.api.schemas import FunnelStep
from service.dashboard.charts import (
    MetricBar,
    funnel_bars,
    overall_by_version,
    version_comparison,
)
from service.dashboard.rendering import number, percent, safe_next
from trainer.evaluate import Counts, EvalReport

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "service" / "dashboard"


def test_funnel_bars_are_shares_of_the_samples_generated() -> None:
    funnel = [
        FunnelStep(step="generated", samples=200),
        FunnelStep(step="format", samples=150, rejected=50),
        FunnelStep(step="dedup", samples=149, rejected=1),
        FunnelStep(step="accepted", samples=149),
    ]
    bars = funnel_bars(funnel)
    assert [(b.step, b.samples_width, b.rejected_width) for b in bars] == [
        ("generated", 100.0, 0.0),
        ("format", 75.0, 25.0),
        ("dedup", 74.5, 0.5),
        ("accepted", 74.5, 0.0),
    ]


def test_an_empty_funnel_has_empty_bars() -> None:
    bars = funnel_bars([FunnelStep(step="generated", samples=0)])
    assert [(b.samples_width, b.rejected_width) for b in bars] == [(0.0, 0.0)]


def report(hits: int, samples: int, style_hits: int) -> dict[str, object]:
    overall = Counts(samples=samples, call_samples=samples, exact_correct=hits)
    parallel = Counts(samples=4, call_samples=4, exact_correct=style_hits)
    return EvalReport(overall=overall, by_style={"parallel": parallel}).to_dict()


def test_a_version_is_compared_with_the_base_model_and_its_parent_per_style() -> None:
    metrics = {
        "eval": report(6, 8, 3),
        "base": {"report": report(2, 8, 1)},
        "parent": {"version": 1, "report": report(4, 8, 2)},
    }
    groups = version_comparison(metrics, 2)
    assert [group.group for group in groups] == ["overall", "parallel"]
    assert [(b.model, b.role, b.value) for b in groups[0].bars] == [
        ("base", "base", 0.25),
        ("v1", "previous", 0.5),
        ("v2", "version", 0.75),
    ]
    assert [b.value for b in groups[1].bars] == [0.25, 0.5, 0.75]
    assert [b.width for b in groups[1].bars] == [25.0, 50.0, 75.0]

    first = version_comparison({"eval": report(6, 8, 3), "base": {"report": report(2, 8, 1)}}, 1)
    assert [b.model for b in first[0].bars] == ["base", "v1"]
    assert version_comparison({}, 1) == []


def test_a_metric_without_samples_has_no_value_and_no_bar() -> None:
    metrics = {"eval": report(6, 8, 3), "base": {"report": report(2, 8, 1)}}
    groups = version_comparison(metrics, 1, metric="irrelevance_accuracy")
    assert [b.value for b in groups[0].bars] == [None, None]
    assert MetricBar("v1", None).width == 0.0


def test_overall_by_version_starts_with_the_newest_base_figure() -> None:
    versions = [
        (2, {"eval": report(6, 8, 3), "base": {"report": report(3, 8, 1)}}),
        (1, {"eval": report(4, 8, 2), "base": {"report": report(2, 8, 1)}}),
        (3, {}),  # queued: not evaluated
    ]
    bars = overall_by_version(versions)
    assert [(b.model, b.value, b.role) for b in bars] == [
        ("base", 0.375, "base"),
        ("v1", 0.5, "version"),
        ("v2", 0.75, "version"),
    ]
    assert overall_by_version([(1, {})]) == []


def test_numbers_and_shares_read_as_the_cli_prints_them() -> None:
    assert number(1234567) == "1,234,567"
    assert number(37.94, 1) == "37.9"
    assert number(None) == "-"
    assert percent(0.125) == "12.5%"
    assert percent(5, 400) == "1.2%"
    assert percent(3, 0) == "-"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/jobs/abc?show=all", "/jobs/abc?show=all"),
        (None, "/"),
        ("", "/"),
        ("https://elsewhere.example/", "/"),
        ("//elsewhere.example/", "/"),
        ("/\\elsewhere.example", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_a_login_sends_the_browser_only_to_a_page_of_this_site(
    target: str | None, expected: str
) -> None:
    assert safe_next(target) == expected


def test_every_template_and_asset_is_package_data() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = pyproject["tool"]["setuptools"]["package-data"]["service.dashboard"]
    shipped = {
        path.relative_to(DASHBOARD)
        for path in DASHBOARD.rglob("*")
        if path.is_file() and path.suffix not in {".py", ".pyc"}
    }
    assert {Path("templates/job.html"), Path("static/dashboard.js")} <= shipped
    assert {path for path in shipped if not any(path.match(p) for p in declared)} == set()
