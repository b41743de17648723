"""The embedded queue: a kombu SQLite queue in the data directory, prepared before workers start."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kombu import Connection

from service.queue.app import celery_for, prepare_embedded_queue
from service.settings import Settings


def test_preparing_the_embedded_queue_keeps_pending_messages_and_drops_consumed_ones(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    prepare_embedded_queue(settings)
    queue_file = tmp_path / "data" / "queue.db"
    assert queue_file.exists()
    with Connection(settings.resolved_broker_url()) as connection:
        queue = connection.SimpleQueue("generate")
        for n in range(3):
            queue.put({"n": n})
        consumed = queue.get(timeout=5)
        consumed.ack()
        queue.close()

    prepare_embedded_queue(settings)

    with sqlite3.connect(queue_file) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        rows = db.execute("SELECT visible, count(*) FROM kombu_message GROUP BY visible")
        assert rows.fetchall() == [(1, 2)]
    with Connection(settings.resolved_broker_url()) as connection:
        queue = connection.SimpleQueue("generate")
        assert [queue.get(timeout=5).payload for _ in range(2)] == [{"n": 1}, {"n": 2}]
        queue.close()


def test_the_celery_app_takes_its_broker_and_reliability_options_from_settings(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path, task_time_limit=120)
    app = celery_for(settings)
    assert app is celery_for(settings)
    conf = app.conf
    assert conf.broker_url == f"sqla+sqlite:///{(tmp_path / 'queue.db').resolve()}"
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    # Two messages per pool process on the embedded queue: the next is at hand, not a poll away.
    assert conf.worker_prefetch_multiplier == 2
    assert (conf.task_time_limit, conf.task_soft_time_limit) == (120, 96)
    assert conf.task_ignore_result
    assert [q.name for q in conf.task_queues] == ["generate", "verify", "train"]
    assert conf.task_routes == {
        "actionforge.generate_batch": {"queue": "generate"},
        "actionforge.verify_batch": {"queue": "verify"},
        "actionforge.train": {"queue": "train"},
    }
    assert {"actionforge.generate_batch", "actionforge.verify_batch"} <= set(app.tasks)
    redis_app = celery_for(settings.model_copy(update={"broker_url": "redis://127.0.0.1:6379/3"}))
    assert redis_app.conf.broker_url == "redis://127.0.0.1:6379/3"
    assert redis_app.conf.broker_transport_options["visibility_timeout"] >= 3600
    assert redis_app.conf.worker_prefetch_multiplier == 1


def test_serve_declares_the_queues_before_the_api_or_a_worker_uses_them(tmp_path: Path) -> None:
    """Whoever first touches a queue of the embedded broker creates it; the API's first send and
    a starting worker doing it at once collided on the queue's name. `prepare` (what `serve` and
    `run` do first) leaves every queue in place, so neither has to create one."""
    from service.cli.commands.local import prepare

    settings = Settings(data_dir=tmp_path / "data")
    prepare(settings)
    with sqlite3.connect(tmp_path / "data" / "queue.db") as db:
        names = [row[0] for row in db.execute("SELECT name FROM kombu_queue ORDER BY id")]
    assert names == ["generate", "verify", "train"]
    prepare(settings)  # again, as the next start does: nothing to create, nothing fails
