"""Continual training in the service, on SQLite and PostgreSQL, with real LoRA training of the
tiny test model: the held-out split, the new-sample threshold, continual rounds with replay,
one run per catalog, and a version a dead worker left behind being taken over."""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker
from tiny_model import cached_tiny_model

from generators.base import GenerationRequest
from generators.template.generator import TemplateGenerator
from service.db.engine import make_engine, session_factory
from service.db.models import (
    BatchRecord,
    BatchStatus,
    CatalogRecord,
    JobRecord,
    JobStatus,
    ModelVersionRecord,
    ModelVersionSampleRecord,
    SampleRecord,
    SampleStatus,
    utcnow,
)
from service.pipeline.counts import empty_counts
from service.pipeline.spec import JobSpec
from service.settings import Settings
from service.training.data import new_sample_ids
from service.training.heldout import is_heldout, split_heldout
from service.training.outcome import fail_version
from service.training.runs import claim_run, maybe_train
from service.training.versions import NotEnoughSamples, VersionBusy, create_version, stale_runs
from unified.catalogs import load_catalog

ROOT = Path(__file__).resolve().parents[3]
TRAVEL_CATALOG = ROOT / "examples" / "travel_api.yaml"
HELDOUT = 0.25
REPLAY_RATIO = 0.5
TRAIN_CONFIG = f"""\
lora_r: 4
lora_alpha: 8
lora_dropout: 0.0
learning_rate: 0.005
max_steps: 2
batch_size: 4
max_length: 4096
replay_ratio: {REPLAY_RATIO}
"""

Sessions = sessionmaker[Session]


# --- helpers -------------------------------------------------------------------------------


def add_catalog(sessions: Sessions) -> str:
    catalog = load_catalog(TRAVEL_CATALOG)
    catalog_id = uuid.uuid4().hex
    with sessions() as session, session.begin():
        session.add(
            CatalogRecord(
                id=catalog_id,
                name=TRAVEL_CATALOG.name,
                kind=catalog.kind,
                title=catalog.title,
                sha256=catalog.sha256,
                tools=[tool.model_dump(mode="json", by_alias=True) for tool in catalog.tools],
            )
        )
    return catalog_id


def add_accepted(sessions: Sessions, catalog_id: str, n: int, seed: int) -> list[str]:
    """A finished job of the catalog holding `n` accepted template samples; their ids. The job's
    id follows from `seed`, so which samples are held out is known (seed 1: 5 of the first 12,
    7 of 16; seed 2: 4 of 12)."""
    tools = load_catalog(TRAVEL_CATALOG).tools
    job_id = f"job{seed:029d}"
    batch_id = f"{job_id}-000000"
    request = GenerationRequest(
        n=n, seed=seed, id_prefix=f"{batch_id}-", options={"created": "2026-01-01T00:00:00+00:00"}
    )
    samples = TemplateGenerator().generate(tools, request)
    with sessions() as session, session.begin():
        session.add(
            JobRecord(
                id=job_id,
                catalog_id=catalog_id,
                spec=JobSpec(n=n).model_dump(mode="json"),
                status=JobStatus.succeeded,
                counts=empty_counts(["format"]),
            )
        )
        session.flush()
        session.add(
            BatchRecord(
                id=batch_id, job_id=job_id, index=0, size=n, seed=seed, status=BatchStatus.verified
            )
        )
        session.flush()
        session.execute(
            insert(SampleRecord),
            [
                {
                    "id": sample.id,
                    "job_id": job_id,
                    "batch_id": batch_id,
                    "position": position,
                    "status": SampleStatus.accepted,
                    "stage": "format",
                    "data": sample.model_dump(mode="json", by_alias=True),
                }
                for position, sample in enumerate(samples)
            ],
        )
    return [sample.id for sample in samples]


def trainable(ids: list[str]) -> list[str]:
    return split_heldout(ids, HELDOUT)[0]


@pytest.fixture
def engine(migrated_database_url: str) -> Iterator[Engine]:
    engine = make_engine(migrated_database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> Sessions:
    return session_factory(engine)


@pytest.fixture
def settings(migrated_database_url: str, tmp_path: Path) -> Settings:
    config = tmp_path / "train.yaml"
    config.write_text(TRAIN_CONFIG)
    return Settings(
        data_dir=tmp_path / "data",
        database_url=migrated_database_url,
        train_base_model=str(cached_tiny_model()),
        train_config=config,
        train_min_new_samples=8,
        train_heldout_fraction=HELDOUT,
        train_eval_samples=4,
        train_eval_max_new_tokens=8,
        train_lease_seconds=30,
    )


def versions(sessions: Sessions, catalog_id: str) -> list[ModelVersionRecord]:
    with sessions() as session:
        return list(
            session.scalars(
                select(ModelVersionRecord)
                .where(ModelVersionRecord.catalog_id == catalog_id)
                .order_by(ModelVersionRecord.version)
            )
        )


def trained_ids(sessions: Sessions, version_id: str) -> set[str]:
    with sessions() as session:
        return set(
            session.scalars(
                select(ModelVersionSampleRecord.sample_id).where(
                    ModelVersionSampleRecord.version_id == version_id
                )
            )
        )


def files_digest(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


# --- the held-out split (pure) -------------------------------------------------------------


def test_the_heldout_split_is_stable_as_data_grows() -> None:
    first = [f"job-a-000000-{i}" for i in range(2000)]
    train_before, heldout_before = split_heldout(first, 0.1)
    grown = first + [f"job-b-000000-{i}" for i in range(8000)]
    train_after, heldout_after = split_heldout(grown, 0.1)

    assert set(heldout_before) <= set(heldout_after)
    assert set(train_before) <= set(train_after)
    assert not set(heldout_after) & set(train_after)
    assert set(heldout_after) | set(train_after) == set(grown)
    assert 0.08 < len(heldout_after) / len(grown) < 0.12
    assert [is_heldout(i, 0.1) for i in first] == [i in heldout_before for i in first]


def test_the_train_task_has_its_queue_and_its_own_time_limit(tmp_path: Path) -> None:
    from service.queue.app import TRAIN_TASK, make_celery

    app = make_celery(Settings(data_dir=tmp_path, task_time_limit=120, train_time_limit=7200))
    assert app.conf.task_routes[TRAIN_TASK] == {"queue": "train"}
    task = app.tasks[TRAIN_TASK]
    assert (task.time_limit, task.soft_time_limit) == (7200, 7140)
    assert (app.conf.task_time_limit, app.conf.task_soft_time_limit) == (120, 96)


def test_a_larger_fraction_holds_out_a_superset() -> None:
    ids = [uuid.UUID(int=i).hex for i in range(3000)]
    assert set(split_heldout(ids, 0.1)[1]) < set(split_heldout(ids, 0.25)[1])


# --- threshold and claims (no training) ----------------------------------------------------


def test_below_the_threshold_nothing_is_created(sessions: Sessions, settings: Settings) -> None:
    catalog_id = add_catalog(sessions)
    ids = add_accepted(sessions, catalog_id, 12, seed=1)
    count = len(trainable(ids))
    assert 0 < count < len(ids), "the test data must hold held-out and trainable samples"
    with sessions() as session:
        assert new_sample_ids(session, catalog_id, HELDOUT) == trainable(ids)

    one_short = settings.model_copy(update={"train_min_new_samples": count + 1})
    assert maybe_train(sessions, catalog_id, one_short) is None
    assert versions(sessions, catalog_id) == []
    with sessions() as session, pytest.raises(NotEnoughSamples) as caught:
        create_version(session, catalog_id, one_short)
    assert str(caught.value) == (
        f"catalog '{catalog_id}' has {count} new accepted samples to train on (not held out, "
        f"not in an earlier version); a run needs {count + 1} (AF_TRAIN_MIN_NEW_SAMPLES) "
        "or force=true"
    )


def test_one_active_version_per_catalog(sessions: Sessions, settings: Settings) -> None:
    catalog_id = add_catalog(sessions)
    add_accepted(sessions, catalog_id, 12, seed=1)
    with sessions() as session:
        queued = create_version(session, catalog_id, settings, force=True)
    assert (queued.status, queued.version, queued.attempt) == ("queued", 1, 0)
    with sessions() as session, pytest.raises(VersionBusy) as caught:
        create_version(session, catalog_id, settings, force=True)
    assert f"already has version 1 ({queued.id}) queued" in str(caught.value)

    # Claims race for the queued version: one wins, the other finds it held.
    first = claim_run(sessions, catalog_id, settings)
    second = claim_run(sessions, catalog_id, settings)
    assert first is not None and (first.version_id, first.attempt) == (queued.id, 1)
    assert second is None
    # A failed version frees the catalog, and its samples count as new again.
    assert fail_version(sessions, queued.id, "given up", attempt=first.attempt)
    with sessions() as session:
        again = create_version(session, catalog_id, settings, force=True)
    assert again.version == 2
    assert trained_ids(sessions, again.id) == trained_ids(sessions, queued.id)


def test_a_starting_worker_finds_the_unfinished_runs(
    sessions: Sessions, settings: Settings
) -> None:
    catalog_id = add_catalog(sessions)
    add_accepted(sessions, catalog_id, 12, seed=1)
    with sessions() as session:
        assert stale_runs(session) == []
        create_version(session, catalog_id, settings, force=True)
        assert stale_runs(session) == [(catalog_id, 0.0)]  # queued: due now
    assert claim_run(sessions, catalog_id, settings) is not None
    with sessions() as session:
        [(found, wait)] = stale_runs(session)
    assert found == catalog_id
    assert settings.train_lease_seconds - 5 < wait <= settings.train_lease_seconds


def test_a_version_started_too_often_fails_with_the_last_error(
    sessions: Sessions, settings: Settings
) -> None:
    catalog_id = add_catalog(sessions)
    add_accepted(sessions, catalog_id, 12, seed=1)
    claim = claim_run(sessions, catalog_id, settings, force=True)
    assert claim is not None
    with sessions() as session:  # as after three attempts that each raised and let go
        session.execute(
            update(ModelVersionRecord)
            .where(ModelVersionRecord.id == claim.version_id)
            .values(
                attempt=3,
                error="RuntimeError: boom",
                lease_expires_at=utcnow() - timedelta(seconds=1),
            )
        )
        session.commit()

    assert claim_run(sessions, catalog_id, settings) is None

    [version] = versions(sessions, catalog_id)
    assert (version.status, version.attempt) == ("failed", 3)
    assert version.error == (
        "started 3 times without finishing (its workers were lost, ran past "
        "AF_TRAIN_TIME_LIMIT or kept failing); the last attempt's error: RuntimeError: boom; "
        "fix that (raise AF_TRAIN_TIME_LIMIT, give the workers more memory), then train again"
    )
    # Not retried on the same samples by itself; forced, or with new samples, it is.
    anything = settings.model_copy(update={"train_min_new_samples": 1})
    assert claim_run(sessions, catalog_id, anything) is None
    with sessions() as session, pytest.raises(NotEnoughSamples, match="version 1 failed on these"):
        create_version(session, catalog_id, anything)
    add_accepted(sessions, catalog_id, 12, seed=2)
    assert claim_run(sessions, catalog_id, anything) is not None


def test_config_overrides_are_checked(sessions: Sessions, settings: Settings) -> None:
    catalog_id = add_catalog(sessions)
    add_accepted(sessions, catalog_id, 12, seed=1)
    with sessions() as session:
        with pytest.raises(Exception, match="unknown key 'max_stepz'; did you mean 'max_steps'"):
            create_version(session, catalog_id, settings, force=True, overrides={"max_stepz": 1})
        with pytest.raises(Exception, match="'output_dir' cannot be set per run"):
            create_version(session, catalog_id, settings, force=True, overrides={"output_dir": "x"})
        version = create_version(
            session, catalog_id, settings, force=True, overrides={"max_steps": 1}
        )
    assert version.config["max_steps"] == 1
    assert version.config["lora_r"] == 4  # from the AF_TRAIN_CONFIG file
    assert version.config["eval_fraction"] == 0.0
    assert version.base_model == str(cached_tiny_model())


# --- real training -------------------------------------------------------------------------


@pytest.mark.slow
def test_continual_rounds_start_from_the_parent_and_replay_its_samples(
    sessions: Sessions, settings: Settings
) -> None:
    catalog_id = add_catalog(sessions)
    first_ids = add_accepted(sessions, catalog_id, 16, seed=1)
    exact = settings.model_copy(update={"train_min_new_samples": len(trainable(first_ids))})

    first = maybe_train(sessions, catalog_id, exact)  # exactly at the threshold

    assert first is not None, "at the threshold a version is trained"
    assert (first.status, first.version, first.parent_id, first.error) == ("ready", 1, None, None)
    assert trained_ids(sessions, first.id) == set(trainable(first_ids))
    assert (first.new_samples, first.replay_samples) == (len(trainable(first_ids)), 0)
    adapter = Path(first.adapter_path or "")
    assert adapter == (settings.data_dir / "models" / catalog_id / "v1").resolve()
    assert (adapter / "adapter_config.json").is_file()
    assert (adapter / "train_metrics.json").is_file()
    assert not list(adapter.parent.glob(".*partial")), "the staging folder is gone"
    metrics = first.metrics
    assert metrics["train"]["steps"] == 2
    assert metrics["train"]["initial_digest"] != metrics["train"]["final_digest"]
    assert metrics["heldout"]["samples"] == first.heldout_samples == 4
    assert metrics["eval"]["overall"]["samples"] == 4
    assert metrics["base"]["evaluated_by"] == first.id
    assert metrics["parent"] is None
    assert {d["group"] for d in metrics["compare"]["base"]} >= {"overall"}
    assert maybe_train(sessions, catalog_id, settings) is None, "nothing new yet"

    first_files = files_digest(adapter)
    second_ids = add_accepted(sessions, catalog_id, 12, seed=2)
    second = maybe_train(sessions, catalog_id, settings)

    assert second is not None
    assert (second.status, second.version, second.parent_id) == ("ready", 2, first.id)
    # Continual: round 2 started from exactly the weights round 1 ended with.
    assert second.metrics["train"]["initial_digest"] == metrics["train"]["final_digest"]
    assert second.metrics["train"]["started_from"] == first.adapter_path
    new = trainable(second_ids)
    assert trained_ids(sessions, second.id) == set(new)
    assert second.replay_samples == round(REPLAY_RATIO * len(new)) > 0
    assert second.metrics["train"]["samples"] == len(new) + second.replay_samples
    # The same held-out samples: the base model's report is reused, the parent's compared.
    assert second.metrics["heldout"]["digest"] == metrics["heldout"]["digest"]
    assert second.metrics["base"] == metrics["base"]
    assert second.metrics["parent"]["version_id"] == first.id
    assert second.metrics["parent"]["report"] == metrics["eval"]
    [accuracy] = [
        delta
        for delta in second.metrics["compare"]["parent"]
        if (delta["group"], delta["metric"]) == ("overall", "accuracy")
    ]
    assert accuracy["before"] == metrics["eval"]["overall"]["accuracy"]
    assert accuracy["after"] == second.metrics["eval"]["overall"]["accuracy"]
    assert files_digest(adapter) == first_files, "version 1's files are as it left them"


@pytest.mark.slow
def test_two_concurrent_runs_train_once(sessions: Sessions, settings: Settings) -> None:
    catalog_id = add_catalog(sessions)
    add_accepted(sessions, catalog_id, 16, seed=1)
    gate = threading.Barrier(2)
    results: list[ModelVersionRecord | None] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            gate.wait()
            results.append(maybe_train(sessions, catalog_id, settings))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(r is None for r in results) == [False, True]
    [version] = versions(sessions, catalog_id)
    assert (version.status, version.version, version.attempt) == ("ready", 1, 1)


@pytest.mark.slow
def test_a_version_left_training_is_taken_over_and_the_ready_one_is_untouched(
    sessions: Sessions, settings: Settings
) -> None:
    catalog_id = add_catalog(sessions)
    add_accepted(sessions, catalog_id, 16, seed=1)
    first = maybe_train(sessions, catalog_id, settings)
    assert first is not None and first.adapter_path is not None
    ready_files = files_digest(Path(first.adapter_path))
    add_accepted(sessions, catalog_id, 12, seed=2)

    # A worker claims version 2, writes half an adapter, and dies.
    dead = claim_run(sessions, catalog_id, settings)
    assert dead is not None and dead.attempt == 1
    models = settings.data_dir.resolve() / "models" / catalog_id
    leftover = models / ".v2-attempt1-999999.partial"
    leftover.mkdir()
    (leftover / "adapter_model.safetensors").write_bytes(b"half written")

    assert maybe_train(sessions, catalog_id, settings) is None, "its lease still runs"
    with sessions() as session:
        session.execute(
            update(ModelVersionRecord)
            .where(ModelVersionRecord.id == dead.version_id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()

    second = maybe_train(sessions, catalog_id, settings)

    assert second is not None
    assert (second.id, second.status, second.attempt, second.parent_id) == (
        dead.version_id,
        "ready",
        2,
        first.id,
    )
    assert second.metrics["train"]["initial_digest"] == first.metrics["train"]["final_digest"]
    assert not leftover.exists()
    assert files_digest(Path(first.adapter_path)) == ready_files
    assert sorted(p.name for p in models.iterdir()) == ["v1", "v2"]
    # The dead worker's attempt can no longer change the version.
    assert not fail_version(sessions, dead.version_id, "late", attempt=dead.attempt)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(ModelVersionRecord)) == 2


@pytest.mark.slow
def test_bad_input_fails_the_version_with_the_reason(
    sessions: Sessions, settings: Settings, tmp_path: Path
) -> None:
    catalog_id = add_catalog(sessions)
    add_accepted(sessions, catalog_id, 12, seed=1)
    not_a_model = tmp_path / "empty-folder"
    not_a_model.mkdir()
    broken = settings.model_copy(update={"train_base_model": str(not_a_model)})

    version = maybe_train(sessions, catalog_id, broken, force=True)

    assert version is not None
    assert version.status == "failed"
    assert version.error == (
        f"{not_a_model}: not a model folder, it has no config.json; give a folder written by "
        "save_pretrained"
    )
    assert not list((settings.data_dir / "models" / catalog_id).iterdir())
    # Its samples are free again: a run with a good base model trains on them.
    retried = maybe_train(sessions, catalog_id, settings, force=True)
    assert retried is not None and (retried.status, retried.version) == ("ready", 2)
    assert trained_ids(sessions, retried.id) == trained_ids(sessions, version.id)
