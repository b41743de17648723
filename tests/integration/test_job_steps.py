"""The job engine's steps run by hand, on SQLite and on PostgreSQL: the real tasks executed in
this process (Celery's `apply`), so each step's effect on the database can be checked exactly.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import redis
from engine_helpers import JOB_GENERATOR, insert_catalog
from plugins_for_tests import REJECT_EVERY, CrashingStage, ExplodingGenerator
from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.db.engine import make_engine, session_factory
from service.db.models import (
    BatchRecord,
    JobRecord,
    SampleRecord,
    VerdictRecord,
    as_utc,
    utcnow,
)
from service.errors import InvalidRequest, NotFound
from service.pipeline.batches import MAX_ATTEMPTS, generate_batch
from service.pipeline.counts import compute_counts, progress_counts, refresh_counts
from service.pipeline.leases import BatchClaim, claim_step, renewing
from service.pipeline.lifecycle import cancel_job, lock_job
from service.pipeline.spec import JobSpec
from service.pipeline.submit import create_job, derive_seed
from service.queue.app import GENERATE_TASK, VERIFY_TASK, celery_for, prepare_embedded_queue
from service.queue.broker_status import waiting_messages
from service.queue.sending import VERIFY_QUEUE, ActionForgeCelery
from service.queue.sweep import SweepResult, sweep_once
from service.queue.tasks import MAX_RETRIES
from service.settings import Settings

Sessions = sessionmaker[Session]


@pytest.fixture
def settings(migrated_database_url: str, tmp_path: Path) -> Settings:
    """This test's database; an embedded queue in tmp_path takes the messages tasks send."""
    settings = Settings(data_dir=tmp_path / "data", database_url=migrated_database_url)
    prepare_embedded_queue(settings)
    return settings


def new_job(sessions: Sessions, settings: Settings, catalog_id: str, **spec: object) -> str:
    with sessions() as session:
        job = create_job(session, catalog_id, JobSpec.model_validate(spec), settings)
        session.commit()
        return job.id


def generate(settings: Settings, batch_id: str) -> None:
    celery_for(settings).tasks[GENERATE_TASK].apply(args=[batch_id])


def verify(settings: Settings, batch_id: str) -> None:
    celery_for(settings).tasks[VERIFY_TASK].apply(args=[batch_id])


def batch_rows(sessions: Sessions, batch_id: str) -> list[tuple[str, int, str]]:
    with sessions() as session:
        rows = session.execute(
            select(SampleRecord.id, SampleRecord.position, SampleRecord.data["query"].as_string())
            .where(SampleRecord.batch_id == batch_id)
            .order_by(SampleRecord.position)
        )
        return [(r[0], r[1], r[2]) for r in rows]


def set_batch_status(sessions: Sessions, batch_id: str, status: str) -> None:
    with sessions() as session:
        session.execute(update(BatchRecord).where(BatchRecord.id == batch_id).values(status=status))
        session.commit()


def load_job(sessions: Sessions, job_id: str) -> JobRecord:
    with sessions() as session:
        job = session.get(JobRecord, job_id)
        assert job is not None
        return job


def batch_statuses(sessions: Sessions, job_id: str) -> list[str]:
    with sessions() as session:
        return list(
            session.scalars(
                select(BatchRecord.status)
                .where(BatchRecord.job_id == job_id)
                .order_by(BatchRecord.index)
            )
        )


def test_create_job_plans_deterministic_batches_without_committing(
    sessions: Sessions, settings: Settings
) -> None:
    insert_catalog(sessions, "travel")
    with sessions() as session:
        job = create_job(session, "travel", JobSpec(n=120, batch_size=50, seed=3), settings)
        session.flush()
        batches = session.scalars(
            select(BatchRecord).where(BatchRecord.job_id == job.id).order_by(BatchRecord.index)
        ).all()
        assert [b.id for b in batches] == [f"{job.id}-{i:06d}" for i in range(3)]
        assert [b.size for b in batches] == [50, 50, 20]
        assert [b.seed for b in batches] == [derive_seed(3, i) for i in range(3)]
        assert len({b.seed for b in batches}) == 3
        assert job.status == "queued"
        assert job.spec["batch_size"] == 50
        assert job.counts["generated"] == 0
        session.rollback()
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(JobRecord)) == 0


def test_create_job_takes_the_batch_size_from_settings_when_the_spec_has_none(
    sessions: Sessions, settings: Settings
) -> None:
    insert_catalog(sessions, "travel")
    job_id = new_job(sessions, settings.model_copy(update={"batch_size": 7}), "travel", n=15)
    assert load_job(sessions, job_id).spec["batch_size"] == 7
    assert len(batch_statuses(sessions, job_id)) == 3


@pytest.mark.parametrize(
    ("catalog", "spec", "error", "message"),
    [
        (
            "nope",
            {"n": 5},
            NotFound,
            r"^catalog 'nope' does not exist; upload the catalog first \(POST /v1/catalogs\) "
            r"and use the id it returns$",
        ),
        (
            "travel",
            {"n": 5, "generator": "nope"},
            InvalidRequest,
            r"^generator: Unknown generator 'nope'\. Known: .*\btemplate\b.*; "
            r"set 'generator' to one of them$",
        ),
        (
            "travel",
            {"n": 5, "verify": ["format", "nope"]},
            InvalidRequest,
            r"^verify: Unknown verification stage 'nope'\. Known: .*\bformat\b.*; "
            r"list only known stages$",
        ),
        (
            "travel",
            {"n": 5, "verify": ["format", "format"]},
            InvalidRequest,
            r"^verify: stage 'format' is listed more than once; list each stage once$",
        ),
    ],
    ids=["unknown-catalog", "unknown-generator", "unknown-stage", "repeated-stage"],
)
def test_create_job_refuses_what_cannot_run(
    sessions: Sessions,
    settings: Settings,
    catalog: str,
    spec: dict[str, object],
    error: type[Exception],
    message: str,
) -> None:
    insert_catalog(sessions, "travel")
    with sessions() as session, pytest.raises(error, match=message):
        create_job(session, catalog, JobSpec.model_validate(spec), settings)


def test_rerunning_a_batch_writes_no_duplicates(sessions: Sessions, settings: Settings) -> None:
    insert_catalog(sessions, "travel")
    job_id = new_job(
        sessions,
        settings,
        "travel",
        n=60,
        batch_size=40,
        generator=JOB_GENERATOR,
        verify=["format"],
    )
    first = f"{job_id}-000000"

    generate(settings, first)
    stored = batch_rows(sessions, first)
    assert [row[0] for row in stored] == [f"{first}-{i}" for i in range(40)]
    assert [row[1] for row in stored] == list(range(40))

    generate(settings, first)  # a second copy of the task: the batch is generated already
    assert batch_rows(sessions, first) == stored
    # A copy that read the batch before the first one committed regenerates it: same rows.
    set_batch_status(sessions, first, "planned")
    generate(settings, first)
    assert batch_rows(sessions, first) == stored

    verify(settings, first)
    verify(settings, first)
    set_batch_status(sessions, first, "generated")
    verify(settings, first)
    with sessions() as session:
        verdicts = session.execute(
            select(func.count(), func.count(func.distinct(VerdictRecord.sample_id)))
            .join(SampleRecord, SampleRecord.id == VerdictRecord.sample_id)
            .where(SampleRecord.batch_id == first)
        ).one()
        assert tuple(verdicts) == (40, 40)
        undecided = session.scalar(
            select(func.count())
            .select_from(SampleRecord)
            .where(SampleRecord.batch_id == first, SampleRecord.status == "generated")
        )
        assert undecided == 0

    second = f"{job_id}-000001"
    generate(settings, second)
    verify(settings, second)
    job = load_job(sessions, job_id)
    assert job.status == "succeeded"
    assert job.finished_at is not None
    counts = job.counts
    assert counts["generated"] == 60
    assert counts["accepted"] + counts["rejected"] == 60
    assert counts["batches"] == {"verified": 2}
    assert counts["by_stage"]["format"]["passed"] == counts["accepted"]
    assert counts["by_stage"]["format"]["rejected"] == counts["rejected"]
    assert sum(counts["by_reason"].values()) == counts["rejected"]
    with sessions() as session:
        again = refresh_counts(session, job_id)
        assert refresh_counts(session, job_id) == again == counts
        assert (
            session.scalar(
                select(func.count(func.distinct(SampleRecord.position))).where(
                    SampleRecord.job_id == job_id
                )
            )
            == 60
        )


def test_counts_by_reason_come_from_the_format_stage(
    sessions: Sessions, settings: Settings
) -> None:
    insert_catalog(sessions, "travel")
    job_id = new_job(
        sessions, settings, "travel", n=12, batch_size=12, generator="counting", verify=["format"]
    )
    generate(settings, f"{job_id}-000000")
    verify(settings, f"{job_id}-000000")
    counts = load_job(sessions, job_id).counts
    rejected = len(range(0, 12, REJECT_EVERY))
    assert counts["rejected"] == rejected
    assert counts["by_reason"] == {"unknown_tool": rejected}
    assert counts["by_stage"] == {"format": {"passed": 12 - rejected, "rejected": rejected}}
    with sessions() as session:
        reasons = session.execute(
            select(SampleRecord.stage, SampleRecord.reason, VerdictRecord.detail)
            .join(VerdictRecord, VerdictRecord.sample_id == SampleRecord.id)
            .where(SampleRecord.status == "rejected")
        ).all()
    assert {(stage, reason) for stage, reason, _ in reasons} == {("format", "unknown_tool")}
    assert all("no tool named 'no_such_tool'" in detail for _, _, detail in reasons)


def test_cancel_stops_new_batches(sessions: Sessions, settings: Settings) -> None:
    insert_catalog(sessions, "travel")
    job_id = new_job(sessions, settings, "travel", n=150, batch_size=50, generator="counting")
    generate(settings, f"{job_id}-000000")
    verify(settings, f"{job_id}-000000")
    generate(settings, f"{job_id}-000001")
    assert load_job(sessions, job_id).status == "running"

    with sessions() as session:
        cancelled = cancel_job(session, job_id)
        session.commit()
    assert cancelled.status == "cancelled"

    generate(settings, f"{job_id}-000002")  # was queued before the cancel: does nothing now
    verify(settings, f"{job_id}-000001")
    job = load_job(sessions, job_id)
    assert job.status == "cancelled"
    assert job.finished_at is not None
    assert batch_statuses(sessions, job_id) == ["verified", "cancelled", "cancelled"]
    assert batch_rows(sessions, f"{job_id}-000002") == []
    assert job.counts["generated"] == 100
    assert job.counts["accepted"] + job.counts["rejected"] == 50
    assert job.counts["batches"] == {"verified": 1, "cancelled": 2}

    with sessions() as session:
        assert cancel_job(session, job_id).status == "cancelled"  # again: nothing changes
        with pytest.raises(NotFound) as missing:
            cancel_job(session, "nope")
    assert "job 'nope' does not exist; list the jobs with GET /v1/jobs" in str(missing.value)


def test_cancelling_a_finished_job_says_why_not(sessions: Sessions, settings: Settings) -> None:
    insert_catalog(sessions, "travel")
    job_id = new_job(sessions, settings, "travel", n=5, generator="counting")
    generate(settings, f"{job_id}-000000")
    verify(settings, f"{job_id}-000000")
    with sessions() as session, pytest.raises(InvalidRequest) as raised:
        cancel_job(session, job_id)
    assert str(raised.value) == (
        f"job '{job_id}' already succeeded; only queued or running jobs can be cancelled"
    )


def test_a_catalog_without_tools_fails_the_job_with_its_reason(
    sessions: Sessions, settings: Settings
) -> None:
    insert_catalog(sessions, "empty", empty=True)
    job_id = new_job(sessions, settings, "empty", n=100, batch_size=50, generator=JOB_GENERATOR)
    generate(settings, f"{job_id}-000000")
    job = load_job(sessions, job_id)
    assert job.status == "failed"
    assert job.error == (
        f"batch 0 failed: job {job_id}: catalog 'empty' (travel_api.yaml) has no tools to "
        "generate calls for; upload a catalog with at least one tool and submit the job again"
    )
    assert batch_statuses(sessions, job_id) == ["failed", "cancelled"]
    generate(settings, f"{job_id}-000001")
    assert batch_rows(sessions, f"{job_id}-000001") == []
    assert load_job(sessions, job_id).error == job.error


def test_a_generator_that_refuses_the_spec_fails_the_job_at_once(
    sessions: Sessions, settings: Settings
) -> None:
    insert_catalog(sessions, "travel")
    job_id = new_job(sessions, settings, "travel", n=10, generator="refusing")
    generate(settings, f"{job_id}-000000")
    job = load_job(sessions, job_id)
    assert job.status == "failed"
    assert job.error == (
        "batch 0 failed: style 'multiple' needs at least 2 tools; the catalog has 1"
    )
    with sessions() as session:
        batch = session.get(BatchRecord, f"{job_id}-000000")
        assert batch is not None
        assert batch.attempts == 1  # bad input is not retried
        assert batch.error == "style 'multiple' needs at least 2 tools; the catalog has 1"


def test_a_crashing_generator_is_retried_then_fails_the_job(
    sessions: Sessions, settings: Settings
) -> None:
    insert_catalog(sessions, "travel")
    job_id = new_job(sessions, settings, "travel", n=10, generator="exploding")
    ExplodingGenerator.calls = 0
    generate(settings, f"{job_id}-000000")
    assert ExplodingGenerator.calls == MAX_RETRIES + 1
    job = load_job(sessions, job_id)
    assert job.status == "failed"
    assert job.error == (
        "batch 0 failed: ZeroDivisionError: the generator divided by zero "
        f"(after {MAX_RETRIES + 1} attempts)"
    )


def test_a_crashing_stage_is_retried_then_fails_the_job(
    sessions: Sessions, settings: Settings
) -> None:
    insert_catalog(sessions, "travel")
    job_id = new_job(
        sessions, settings, "travel", n=10, generator="counting", verify=["format", "crashing"]
    )
    generate(settings, f"{job_id}-000000")
    CrashingStage.calls = 0
    verify(settings, f"{job_id}-000000")
    assert CrashingStage.calls == MAX_RETRIES + 1
    job = load_job(sessions, job_id)
    assert job.status == "failed"
    assert job.error == f"batch 0 failed: KeyError: 'verdict' (after {MAX_RETRIES + 1} attempts)"
    assert job.counts["generated"] == 10
    assert job.counts["batches"] == {"failed": 1}


def test_a_batch_started_too_often_fails_instead_of_looping(
    sessions: Sessions, settings: Settings
) -> None:
    insert_catalog(sessions, "travel")
    job_id = new_job(sessions, settings, "travel", n=10, generator="counting")
    batch_id = f"{job_id}-000000"
    with sessions() as session:  # as if workers had died on it MAX_ATTEMPTS times
        session.execute(
            update(BatchRecord).where(BatchRecord.id == batch_id).values(attempts=MAX_ATTEMPTS)
        )
        session.commit()
    generate(settings, batch_id)
    job = load_job(sessions, job_id)
    assert job.status == "failed"
    assert job.error is not None
    assert f"batch 0 was started {MAX_ATTEMPTS} times without finishing" in job.error
    assert "raise AF_TASK_TIME_LIMIT or lower the batch size" in job.error


def test_tasks_for_unknown_batches_do_nothing(sessions: Sessions, settings: Settings) -> None:
    generate(settings, "no-such-batch")
    verify(settings, "no-such-batch")
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(SampleRecord)) == 0


def test_the_sweep_sends_lost_batches_once_and_finishes_orphaned_jobs(
    sessions: Sessions, settings: Settings, clean_redis: str
) -> None:
    settings = settings.model_copy(
        update={"broker_url": clean_redis, "sweep_interval_seconds": 0.01}
    )
    insert_catalog(sessions, "travel")
    open_job = new_job(sessions, settings, "travel", n=30, batch_size=10, generator="counting")
    generate(settings, f"{open_job}-000000")
    orphaned = new_job(sessions, settings, "travel", n=10, generator="counting")
    generate(settings, f"{orphaned}-000000")
    verify(settings, f"{orphaned}-000000")
    cancelled = new_job(sessions, settings, "travel", n=10, generator="counting")
    with sessions() as session:
        # The worker that verified the orphaned job's last batch died before finishing it.
        session.execute(
            update(JobRecord)
            .where(JobRecord.id == orphaned)
            .values(status="running", finished_at=None, counts={})
        )
        cancel_job(session, cancelled)
        session.commit()
    app = celery_for(settings)
    client = redis.Redis.from_url(clean_redis)
    client.flushdb()  # the queue died: every message is lost

    # Not yet idle past the lease: nothing is sent, a message may still be on its way.
    assert sweep_once(app, sessions, "worker-a") == SweepResult(sent=0, finished_jobs=1)
    finished = load_job(sessions, orphaned)
    assert finished.status == "succeeded"
    assert finished.counts["generated"] == 10
    with sessions() as session:  # as if the lease had passed
        idle_since = utcnow() - timedelta(seconds=settings.batch_lease_seconds + 1)
        session.execute(update(BatchRecord).values(sent_at=idle_since))
        session.commit()
    time.sleep(0.02)  # the sweep's fleet lease ends
    assert sweep_once(app, sessions, "worker-b") == SweepResult(sent=3)
    assert client.llen("generate") == 2
    assert client.llen("verify") == 1
    with sessions() as session:
        session.execute(update(BatchRecord).values(sent_at=idle_since))
        session.commit()
    time.sleep(0.02)
    # The messages wait in the broker: sending them again would only duplicate them.
    assert sweep_once(app, sessions, "worker-a") == SweepResult(sent=0)
    assert client.llen("generate") == 2
    assert load_job(sessions, cancelled).status == "cancelled"
    client.close()


def test_one_sweep_at_a_time_across_the_fleet(sessions: Sessions, settings: Settings) -> None:
    app = celery_for(settings.model_copy(update={"sweep_interval_seconds": 60}))
    assert sweep_once(app, sessions, "worker-a") == SweepResult()
    assert sweep_once(app, sessions, "worker-b") is None


def test_a_copy_of_a_task_arriving_while_another_holds_the_batch_does_nothing(
    sessions: Sessions, settings: Settings
) -> None:
    insert_catalog(sessions, "travel")
    job_id = new_job(sessions, settings, "travel", n=10, generator="counting")
    batch_id = f"{job_id}-000000"
    with sessions() as session:
        assert claim_step(session, batch_id, "planned", BatchClaim(holder="first")) == 1
        session.commit()
    assert generate_batch(sessions, batch_id, claim=BatchClaim(holder="second")) is None
    assert batch_rows(sessions, batch_id) == []
    # The holder itself (a retry of the same task) goes on.
    assert generate_batch(sessions, batch_id, claim=BatchClaim(holder="first")) == "generated"
    with sessions() as session:
        batch = session.get(BatchRecord, batch_id)
        assert batch is not None
        assert (batch.status, batch.running_until, batch.claimed_by) == ("generated", None, None)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_holding_a_job_to_cancel_it_does_not_block_storing_its_batches(
    migrated_database_url: str, sessions: Sessions, settings: Settings
) -> None:
    insert_catalog(sessions, "travel")
    job_id = new_job(sessions, settings, "travel", n=20, batch_size=10, generator="counting")
    generate(settings, f"{job_id}-000000")
    impatient = make_engine(migrated_database_url)
    # Waiting for a lock now raises at once instead of waiting (or deadlocking) for good.
    event.listen(impatient, "connect", lambda dbapi, _: dbapi.execute("SET lock_timeout = '1s'"))
    with sessions() as holder:
        # The lock cancel_job and the verify step take on the job's row, held open...
        assert lock_job(holder, job_id) is not None
        # ...while a worker stores a batch, whose sample rows refer to the job.
        assert generate_batch(session_factory(impatient), f"{job_id}-000001")
        holder.rollback()
    impatient.dispose()
    assert len(batch_rows(sessions, f"{job_id}-000001")) == 10


@pytest.mark.parametrize(
    ("generator", "stages"),
    [("counting", ["format"]), ("template", ["query", "format", "grounding", "coverage"])],
)
def test_progress_summed_from_batch_tallies_equals_a_recount(
    sessions: Sessions, settings: Settings, generator: str, stages: list[str]
) -> None:
    insert_catalog(sessions, "travel")
    job_id = new_job(
        sessions, settings, "travel", n=95, batch_size=10, generator=generator, verify=stages
    )
    batch_ids = [f"{job_id}-{index:06d}" for index in range(10)]

    def progress_and_recount() -> tuple[dict[str, object], dict[str, object]]:
        with sessions() as session:
            return (
                progress_counts(session, job_id, stages),
                compute_counts(session, job_id, stages),
            )

    for batch_id in batch_ids[:6]:
        generate(settings, batch_id)
    for batch_id in batch_ids[:3]:
        verify(settings, batch_id)
    progress, recount = progress_and_recount()
    assert progress == recount
    assert progress["generated"] == 60
    assert progress["batches"] == {"planned": 4, "generated": 3, "verified": 3}
    for batch_id in batch_ids[6:]:
        generate(settings, batch_id)
    for batch_id in batch_ids[3:]:
        verify(settings, batch_id)
    progress, recount = progress_and_recount()
    assert progress == recount == load_job(sessions, job_id).counts
    assert progress["generated"] == 95
    if (
        generator == "counting"
    ):  # 3 of each 10 rejected (2 of the last 5): the first 5 by position named
        assert progress["rejections"] == [
            {
                "stage": "format",
                "reason": "unknown_tool",
                "samples": 9 * 3 + 2,
                "examples": [f"{job_id}-000000-{i}" for i in (0, 4, 8)]
                + [f"{job_id}-000001-{i}" for i in (0, 4)],
            }
        ]


@pytest.fixture
def verifying_worker_app(settings: Settings) -> Iterator[ActionForgeCelery]:
    """The app of a worker that consumes the verify queue too (the embedded default)."""
    app = celery_for(settings)
    app.verifies_here = True
    yield app
    app.verifies_here = False


def test_a_worker_that_also_verifies_verifies_its_batch_in_the_generate_task(
    sessions: Sessions, settings: Settings, verifying_worker_app: ActionForgeCelery
) -> None:
    insert_catalog(sessions, "travel")
    job_id = new_job(sessions, settings, "travel", n=24, batch_size=12, verify=["format"])
    generate(settings, f"{job_id}-000000")
    with sessions() as session:
        statuses = session.scalars(
            select(BatchRecord.status)
            .where(BatchRecord.job_id == job_id)
            .order_by(BatchRecord.index)
        ).all()
    assert statuses == ["verified", "planned"]
    assert waiting_messages(verifying_worker_app, [VERIFY_QUEUE]) == {VERIFY_QUEUE: 0}
    generate(settings, f"{job_id}-000001")
    job = load_job(sessions, job_id)
    assert (job.status, job.counts["accepted"] + job.counts["rejected"]) == ("succeeded", 24)


def test_verification_that_stops_in_the_generate_task_goes_to_the_verify_queue(
    sessions: Sessions, settings: Settings, verifying_worker_app: ActionForgeCelery
) -> None:
    insert_catalog(sessions, "travel")
    job_id = new_job(
        sessions, settings, "travel", n=10, generator="counting", verify=["format", "crashing"]
    )
    CrashingStage.calls = 0
    generate(settings, f"{job_id}-000000")
    assert CrashingStage.calls == 1
    with sessions() as session:
        batch = session.get(BatchRecord, f"{job_id}-000000")
        assert batch is not None and batch.status == "generated"
    assert waiting_messages(verifying_worker_app, [VERIFY_QUEUE]) == {VERIFY_QUEUE: 1}
    verify(settings, f"{job_id}-000000")  # the verify task retries, then fails the job
    assert load_job(sessions, job_id).status == "failed"


def test_held_leases_are_renewed_until_their_block_ends(
    sessions: Sessions, settings: Settings
) -> None:
    insert_catalog(sessions, "travel")
    job_id = new_job(sessions, settings, "travel", n=20, batch_size=10, generator="counting")
    first, second = f"{job_id}-000000", f"{job_id}-000001"
    short, long = BatchClaim(holder="short", seconds=0.3), BatchClaim(holder="long", seconds=60)
    with sessions() as session:
        claim_step(session, first, "planned", short)
        claim_step(session, second, "planned", long)
        session.commit()

    def lease_end(batch_id: str) -> datetime:
        with sessions() as session:
            batch = session.get(BatchRecord, batch_id)
            assert batch is not None and batch.running_until is not None
            return as_utc(batch.running_until)

    with renewing(sessions, first, short), renewing(sessions, second, long):
        time.sleep(1.0)  # about ten renewals of the short lease, none of the long one due
        assert lease_end(first) > utcnow()
        assert lease_end(second) > utcnow() + timedelta(seconds=55)
    ended = lease_end(first)
    time.sleep(0.5)
    assert lease_end(first) == ended, "no renewal after the block"
    assert ended < utcnow()
