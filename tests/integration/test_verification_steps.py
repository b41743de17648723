"""The execution and dedup stages in the job engine, on SQLite and on PostgreSQL: the real
tasks run in this process (Celery's `apply`), batches verified in chosen orders, and what they
store checked in the database: observations, verdicts, the funnel and which copies are kept."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from engine_helpers import TRAVEL_CATALOG
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import (
    BatchRecord,
    CatalogRecord,
    DedupKeyRecord,
    JobRecord,
    SampleRecord,
    VerdictRecord,
)
from service.errors import InvalidRequest
from service.pipeline.counts import refresh_counts
from service.pipeline.lifecycle import cancel_job
from service.pipeline.spec import JobSpec
from service.pipeline.submit import create_job
from service.queue.app import GENERATE_TASK, VERIFY_TASK, celery_for, prepare_embedded_queue
from service.settings import Settings
from unified.catalogs import load_catalog, load_catalog_bytes
from unified.model import Sample
from verifiers.dedup import DedupStage
from verifiers.mock_api import MockApi
from verifiers.stages import STAGES, StageBase, StageContext
from verifiers.verdict import Verdict

Sessions = sessionmaker[Session]
TRAVEL = load_catalog(TRAVEL_CATALOG)
CALCULATOR = '''"""A small calculator."""


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b
'''
FULL = ["format", "execution", "dedup"]


@pytest.fixture
def settings(migrated_database_url: str, tmp_path: Path) -> Settings:
    """This test's database; an embedded queue in tmp_path takes the messages tasks send."""
    settings = Settings(data_dir=tmp_path / "data", database_url=migrated_database_url)
    prepare_embedded_queue(settings)
    return settings


def add_catalog(sessions: Sessions, sha256: str | None = None, *, python: bool = False) -> str:
    """Store the travel catalog (or the calculator module, with its source); `sha256` stands
    for another document with the same tools."""
    catalog = load_catalog_bytes(CALCULATOR.encode(), "calc.py") if python else TRAVEL
    catalog_id = uuid.uuid4().hex
    with sessions() as session, session.begin():
        session.add(
            CatalogRecord(
                id=catalog_id,
                name="calc.py" if python else TRAVEL_CATALOG.name,
                kind=catalog.kind,
                title=catalog.title,
                sha256=sha256 or catalog.sha256,
                tools=[t.model_dump(mode="json", by_alias=True) for t in catalog.tools],
                document=CALCULATOR if python else None,
            )
        )
    return catalog_id


def new_job(sessions: Sessions, settings: Settings, catalog_id: str, **spec: Any) -> str:
    with sessions() as session:
        job = create_job(session, catalog_id, JobSpec.model_validate(spec), settings)
        session.commit()
        return job.id


def run_task(settings: Settings, task: str, batch_id: str) -> None:
    celery_for(settings).tasks[task].apply(args=[batch_id])


def generate_all(settings: Settings, job_id: str, batches: int) -> None:
    for index in range(batches):
        run_task(settings, GENERATE_TASK, f"{job_id}-{index:06d}")


def verify_in_order(settings: Settings, job_id: str, order: list[int]) -> None:
    for index in order:
        run_task(settings, VERIFY_TASK, f"{job_id}-{index:06d}")


def load_job(sessions: Sessions, job_id: str) -> JobRecord:
    with sessions() as session:
        job = session.get(JobRecord, job_id)
        assert job is not None
        return job


def outcomes(sessions: Sessions, job_id: str) -> list[tuple[int, str, str | None, str | None]]:
    """(position, status, stage, reason) of every sample, in position order."""
    with sessions() as session:
        rows = session.execute(
            select(
                SampleRecord.position, SampleRecord.status, SampleRecord.stage, SampleRecord.reason
            )
            .where(SampleRecord.job_id == job_id)
            .order_by(SampleRecord.position)
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]


def dedup_details(sessions: Sessions, job_id: str) -> list[tuple[int, str | None]]:
    """(position, detail) of every dedup verdict, job ids written as JOB."""
    with sessions() as session:
        rows = session.execute(
            select(SampleRecord.position, VerdictRecord.detail)
            .join(VerdictRecord, VerdictRecord.sample_id == SampleRecord.id)
            .where(SampleRecord.job_id == job_id, VerdictRecord.stage == "dedup")
            .order_by(SampleRecord.position)
        )
        return [(p, d.replace(job_id, "JOB") if d else d) for p, d in rows]


def samples_of(sessions: Sessions, job_id: str, status: str | None = None) -> list[Sample]:
    with sessions() as session:
        where = [SampleRecord.job_id == job_id]
        if status is not None:
            where.append(SampleRecord.status == status)
        return [
            Sample.model_validate(data)
            for data in session.scalars(
                select(SampleRecord.data).where(*where).order_by(SampleRecord.position)
            )
        ]


def test_the_execution_stage_stores_each_calls_result_in_the_sample(
    sessions: Sessions, settings: Settings
) -> None:
    catalog_id = add_catalog(sessions)
    job_id = new_job(
        sessions, settings, catalog_id, n=30, batch_size=10, seed=5, verify=["format", "execution"]
    )
    generate_all(settings, job_id, 3)
    before = samples_of(sessions, job_id)
    verify_in_order(settings, job_id, [2, 0, 1])

    job = load_job(sessions, job_id)
    assert job.status == "succeeded"
    after = samples_of(sessions, job_id)
    api = MockApi(TRAVEL.tools)
    called = 0
    for old, new in zip(before, after, strict=True):
        assert new.query == old.query
        for old_step, new_step in zip(old.steps, new.steps, strict=True):
            assert old_step.results == []
            assert new_step.results == [api.call(c).body for c in old_step.tool_calls]
            called += len(new_step.results)
    assert called > 30
    with sessions() as session:
        stages = session.execute(
            select(VerdictRecord.stage, func.count())
            .join(SampleRecord, SampleRecord.id == VerdictRecord.sample_id)
            .where(SampleRecord.job_id == job_id)
            .group_by(VerdictRecord.stage)
        ).all()
    assert dict(stages) == {"format": 30, "execution": 30}
    assert [step["step"] for step in job.counts["funnel"]] == [
        "generated",
        "format",
        "execution",
        "accepted",
    ]
    assert job.counts["accepted"] == 30


def test_python_catalogs_run_their_functions_in_the_sandbox(
    sessions: Sessions, settings: Settings
) -> None:
    catalog_id = add_catalog(sessions, python=True)
    job_id = new_job(
        sessions, settings, catalog_id, n=6, seed=1, styles={"simple": 1},
        verify=["format", "execution"],
    )  # fmt: skip
    generate_all(settings, job_id, 1)
    verify_in_order(settings, job_id, [0])
    assert load_job(sessions, job_id).status == "succeeded"
    samples = samples_of(sessions, job_id)
    assert len(samples) == 6
    for sample in samples:
        for step in sample.steps:
            expected = [c.arguments["a"] + c.arguments["b"] for c in step.tool_calls]  # type: ignore[index]
            assert step.results == expected


def test_the_funnel_counts_every_stage_in_order_with_example_ids(
    sessions: Sessions, settings: Settings
) -> None:
    catalog_id = add_catalog(sessions)
    job_id = new_job(
        sessions, settings, catalog_id, n=40, batch_size=10, seed=3, generator="duplicating",
        verify=FULL,
    )  # fmt: skip
    generate_all(settings, job_id, 4)
    verify_in_order(settings, job_id, [1, 3, 0, 2])

    job = load_job(sessions, job_id)
    assert job.status == "succeeded"
    counts = job.counts
    rows = outcomes(sessions, job_id)
    rejected = [row for row in rows if row[1] == "rejected"]
    by_group: dict[tuple[str | None, str | None], list[int]] = {}
    for position, _, stage, reason in rejected:
        by_group.setdefault((stage, reason), []).append(position)
    unknown = by_group[("format", "unknown_tool")]
    assert unknown == [p for p in range(40) if p % 10 % 4 == 0]  # the generator counts per batch
    passed = 40 - len(unknown)
    kept = [row[0] for row in rows if row[1] == "accepted"]
    assert counts["generated"] == 40
    assert counts["accepted"] == len(kept) > 0
    assert counts["funnel"] == [
        {"step": "generated", "samples": 40, "rejected": 0},
        {"step": "format", "samples": passed, "rejected": len(unknown)},
        {"step": "execution", "samples": passed, "rejected": 0},
        {"step": "dedup", "samples": len(kept), "rejected": passed - len(kept)},
        {"step": "accepted", "samples": len(kept), "rejected": 0},
    ]
    assert counts["by_stage"] == {
        "format": {"passed": passed, "rejected": len(unknown)},
        "execution": {"passed": passed, "rejected": 0},
        "dedup": {"passed": len(kept), "rejected": passed - len(kept)},
    }
    assert {("dedup", "duplicate"), ("dedup", "near_duplicate")} <= set(by_group)
    expected = [
        {
            "stage": stage,
            "reason": reason,
            "samples": len(positions),
            "examples": [f"{job_id}-{p // 10:06d}-{p % 10}" for p in positions[:5]],
        }
        for (stage, reason), positions in by_group.items()
    ]
    order = {"format": 0, "execution": 1, "dedup": 2}
    expected.sort(key=lambda e: (-e["samples"], order[e["stage"]], e["reason"]))
    assert counts["rejections"] == expected
    assert sum(e["samples"] for e in expected) == counts["rejected"] == 40 - len(kept)
    with sessions() as session:
        assert refresh_counts(session, job_id) == counts


def test_dedup_keeps_the_same_samples_whatever_order_the_batches_are_stored_in(
    sessions: Sessions, settings: Settings
) -> None:
    spec = {"n": 50, "batch_size": 10, "seed": 8, "generator": "duplicating", "verify": FULL}
    results = []
    for order in ([0, 1, 2, 3, 4], [4, 2, 3, 0, 1], [3, 4, 1, 2, 0]):
        # A catalog of its own per run (another document): earlier runs are not compared.
        catalog_id = add_catalog(sessions, sha256=uuid.uuid4().hex + uuid.uuid4().hex)
        job_id = new_job(sessions, settings, catalog_id, **spec)
        generate_all(settings, job_id, 5)
        verify_in_order(settings, job_id, order[:-1])
        verified = set(order[:-1])
        waiting = [
            row
            for row in outcomes(sessions, job_id)
            if row[1] == "generated" and row[0] // 10 in verified
        ]
        if order[-1] == 4:
            assert waiting == []  # every batch below the last one was there to judge
        else:
            assert waiting, "batches above the missing one wait for it"
            assert all(row[0] > order[-1] * 10 for row in waiting)
            assert load_job(sessions, job_id).dedup_frontier == order[-1]
        verify_in_order(settings, job_id, order[-1:])
        job = load_job(sessions, job_id)
        assert (job.status, job.dedup_frontier) == ("succeeded", 5)
        results.append((outcomes(sessions, job_id), dedup_details(sessions, job_id)))
    assert results[0] == results[1] == results[2]
    rows, details = results[0]
    kept = [row[0] for row in rows if row[1] == "accepted"]
    assert len(kept) >= 3
    assert all(row[1] in ("accepted", "rejected") for row in rows)
    named = [int(m) for _, d in details if d for m in re.findall(r"JOB-\d+-(\d+)'", d)]
    assert named, "duplicates name the sample they duplicate"
    with sessions() as session:
        keys = session.scalar(
            select(func.count(func.distinct(DedupKeyRecord.sample_id)))
            .join(SampleRecord, SampleRecord.id == DedupKeyRecord.sample_id)
            .where(SampleRecord.status != "accepted")
        )
        assert keys == 0, "only kept samples are looked up again"


def test_a_later_job_on_the_same_catalog_rejects_what_an_earlier_one_kept(
    sessions: Sessions, settings: Settings
) -> None:
    spec = {"n": 20, "batch_size": 10, "seed": 2, "generator": "duplicating", "verify": FULL}
    first = new_job(sessions, settings, add_catalog(sessions), **spec)
    generate_all(settings, first, 2)
    verify_in_order(settings, first, [1, 0])
    kept = [row[0] for row in outcomes(sessions, first) if row[1] == "accepted"]
    assert kept

    # The same document uploaded again is the same catalog; the same seed, the same samples.
    second = new_job(sessions, settings, add_catalog(sessions), **spec)
    generate_all(settings, second, 2)
    verify_in_order(settings, second, [0, 1])
    again = outcomes(sessions, second)
    assert [row for row in again if row[1] == "accepted"] == []
    assert [row[3] for row in again if row[0] in kept] == ["duplicate"] * len(kept)
    first_ids = {f"'{first}-{p // 10:06d}-{p % 10}'" for p in kept}
    for position, detail in dedup_details(sessions, second):
        if position in kept:
            assert detail is not None and any(i in detail for i in first_ids)

    other = new_job(sessions, settings, add_catalog(sessions, sha256="e" * 64), **spec)
    generate_all(settings, other, 2)
    verify_in_order(settings, other, [0, 1])
    assert [row[0] for row in outcomes(sessions, other) if row[1] == "accepted"] == kept


def test_cancelling_a_job_judges_the_batches_left_waiting(
    sessions: Sessions, settings: Settings
) -> None:
    catalog_id = add_catalog(sessions)
    job_id = new_job(
        sessions, settings, catalog_id, n=30, batch_size=10, seed=4, generator="duplicating",
        verify=FULL,
    )  # fmt: skip
    generate_all(settings, job_id, 3)
    verify_in_order(settings, job_id, [2])
    assert any(row[1] == "generated" for row in outcomes(sessions, job_id) if row[0] >= 20)
    with sessions() as session:
        cancel_job(session, job_id)
        session.commit()
    job = load_job(sessions, job_id)
    assert (job.status, job.dedup_frontier) == ("cancelled", 3)
    judged = [row for row in outcomes(sessions, job_id) if row[0] >= 20]
    assert all(row[1] in ("accepted", "rejected") for row in judged)
    assert any(row[1] == "accepted" for row in judged)
    assert job.counts["by_stage"]["dedup"]["passed"] == sum(r[1] == "accepted" for r in judged)
    with sessions() as session:
        statuses = session.scalars(
            select(BatchRecord.status)
            .where(BatchRecord.job_id == job_id)
            .order_by(BatchRecord.index)
        ).all()
    assert statuses == ["cancelled", "cancelled", "verified"]


def test_dedup_must_be_the_last_stage_of_a_job(sessions: Sessions, settings: Settings) -> None:
    catalog_id = add_catalog(sessions)
    with pytest.raises(InvalidRequest) as raised:
        new_job(sessions, settings, catalog_id, n=5, verify=["dedup", "format"])
    assert str(raised.value) == (
        "verify: stage 'dedup' must come last (it compares the samples that passed every other "
        "stage); move it after 'format'"
    )


def test_a_batch_verified_again_after_its_turn_is_judged_again_the_same_way(
    sessions: Sessions, settings: Settings
) -> None:
    catalog_id = add_catalog(sessions)
    job_id = new_job(
        sessions, settings, catalog_id, n=20, batch_size=10, seed=6, generator="duplicating",
        verify=FULL,
    )  # fmt: skip
    generate_all(settings, job_id, 2)
    verify_in_order(settings, job_id, [0])
    first = outcomes(sessions, job_id)[:10]
    with sessions() as session:
        keys = session.scalar(select(func.count()).select_from(DedupKeyRecord))
        batch = session.get(BatchRecord, f"{job_id}-000000")
        assert batch is not None
        batch.status = "generated"  # as if a copy of the task had read it before the claim
        session.commit()
    verify_in_order(settings, job_id, [0, 1])
    assert outcomes(sessions, job_id)[:10] == first
    assert load_job(sessions, job_id).status == "succeeded"
    with sessions() as session:
        kept = session.scalar(
            select(func.count())
            .select_from(SampleRecord)
            .where(SampleRecord.job_id == job_id, SampleRecord.status == "accepted")
        )
        again = session.scalar(select(func.count()).select_from(DedupKeyRecord))
    # Each kept sample has its exact key and one key per MinHash band, stored once.
    per_sample = 1 + 8
    assert keys == per_sample * sum(row[1] == "accepted" for row in first)
    assert again == per_sample * (kept or 0)


class SameQueryStage(StageBase):
    """An ordered stage of a plug-in: rejects a sample whose query, letter for letter, was kept
    before in job order. Records the positions it is asked to judge, in order."""

    name = "same_query"
    ordered = True
    judged: ClassVar[list[str]] = []

    def verify_batch(self, samples: Sequence[Sample], context: StageContext) -> list[Verdict]:
        raise AssertionError("the job engine runs an ordered stage through judge_in_order")

    def prepare(self, sample: Sample) -> bytes:
        return sample.query.encode()

    def lookup_keys(self, prepared: bytes) -> list[tuple[int, int]]:
        return [(0, int.from_bytes(hashlib.blake2b(prepared, digest_size=7).digest(), "big"))]

    def judge_in_order(
        self,
        waiting: Sequence[tuple[str, bytes]],
        kept_before: Iterable[tuple[str, bytes]],
        options: object = None,
    ) -> list[Verdict]:
        kept = {query: sample_id for sample_id, query in kept_before}
        verdicts = []
        for sample_id, query in waiting:
            SameQueryStage.judged.append(sample_id)
            if query in kept:
                verdicts.append(Verdict.reject(self.name, "same_query", f"as '{kept[query]}'"))
            else:
                kept[query] = sample_id
                verdicts.append(Verdict.accept(self.name))
        return verdicts


class CountingDedupStage(DedupStage):
    """The built-in dedup stage, registered anew under its name, counting what it judges."""

    judged: ClassVar[int] = 0

    def judge_in_order(
        self,
        waiting: Sequence[tuple[str, bytes]],
        kept_before: Iterable[tuple[str, bytes]],
        options: object = None,
    ) -> list[Verdict]:
        CountingDedupStage.judged += len(waiting)
        return super().judge_in_order(waiting, kept_before, options)


def test_a_plugin_ordered_stage_runs_in_position_order_with_its_own_state(
    sessions: Sessions, settings: Settings
) -> None:
    STAGES.register("same_query", f"{__name__}:SameQueryStage")
    SameQueryStage.judged.clear()
    try:
        spec = {"n": 30, "batch_size": 10, "seed": 4, "generator": "duplicating"}
        catalog_id = add_catalog(sessions)
        dedup_job = new_job(sessions, settings, catalog_id, **spec, verify=FULL)
        generate_all(settings, dedup_job, 3)
        verify_in_order(settings, dedup_job, [0, 1, 2])
        job_id = new_job(sessions, settings, catalog_id, **spec, verify=["format", "same_query"])
        generate_all(settings, job_id, 3)
        verify_in_order(settings, job_id, [2, 0, 1])
    finally:
        STAGES.unregister("same_query")
    rows = outcomes(sessions, job_id)
    judged_positions = [int(sample_id.rsplit("-", 2)[1]) * 10 + int(sample_id.rsplit("-", 1)[1])
                        for sample_id in SameQueryStage.judged]  # fmt: skip
    assert judged_positions == sorted(judged_positions), "judged in position order"
    kept = [row for row in rows if row[1] == "accepted"]
    # Few distinct queries (three cities, each with or without one word more): each kept once
    # by this stage, later copies rejected, although dedup kept the same queries in the earlier
    # job on this catalog (that is dedup's state, not this stage's).
    assert {row[2] for row in kept} == {"same_query"}
    assert 0 < len(kept) <= 9
    assert {row[3] for row in rows if row[2] == "same_query" and row[1] == "rejected"} == {
        "same_query"
    }
    assert load_job(sessions, job_id).status == "succeeded"


def test_the_dedup_stage_registered_under_its_name_is_what_the_engine_runs(
    sessions: Sessions, settings: Settings
) -> None:
    STAGES.register("dedup", f"{__name__}:CountingDedupStage")
    CountingDedupStage.judged = 0
    try:
        spec = {"n": 20, "batch_size": 10, "seed": 3, "generator": "duplicating", "verify": FULL}
        job_id = new_job(sessions, settings, add_catalog(sessions, sha256="c" * 64), **spec)
        generate_all(settings, job_id, 2)
        verify_in_order(settings, job_id, [1, 0])
    finally:
        STAGES.register("dedup", "verifiers.dedup:DedupStage")
    passed_format = [row for row in outcomes(sessions, job_id) if row[2] == "dedup"]
    assert CountingDedupStage.judged == len(passed_format) > 0
