"""The queues and the broker's transport options, without the Celery app: what the Celery app is
built with, and what prepares the embedded queue's file and creates its queues before any process
sends to or reads them (`run` and `serve` do it before their workers start, without importing
Celery's worker side or the tasks)."""

from __future__ import annotations

import sqlite3
from typing import Any

from kombu import Connection, Exchange, Queue
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from service.queue.sending import QUEUES
from service.settings import Settings

# Redis re-delivers a message nobody acknowledged within this time; tasks are shorter.
MIN_VISIBILITY_TIMEOUT = 3600


def task_queues() -> list[Queue]:
    """One queue per task kind, each on its own direct exchange."""
    return [Queue(name, Exchange(name), routing_key=name) for name in QUEUES]


def transport_options(settings: Settings) -> dict[str, Any]:
    """The broker's transport options for `settings`."""
    if settings.embedded_broker:
        # NullPool: no SQLite connection outlives an operation, so none crosses a fork into
        # the worker's child processes; the timeout waits out other processes' writes.
        return {"poolclass": NullPool, "connect_args": {"timeout": 30}}
    # A train task may outlive this: its message, re-delivered meanwhile, finds the catalog
    # held by the running task's lease and does nothing (see service.training.runs).
    return {"visibility_timeout": max(MIN_VISIBILITY_TIMEOUT, 2 * settings.task_time_limit)}


def declare_embedded_queues(settings: Settings) -> None:
    """Create the embedded queue's queues. Whoever first sends to or reads a queue creates it,
    and two processes doing so at once collide on the queue's name (an IntegrityError from the
    API's first submission as the workers start): declared before either starts, they exist.
    A no-op with an external broker."""
    if not settings.embedded_broker:
        return
    url = settings.resolved_broker_url()
    with Connection(url, transport_options=transport_options(settings)) as connection:
        channel = connection.default_channel
        for queue in task_queues():
            queue.bind(channel).declare()


def prepare_embedded_queue(settings: Settings) -> None:
    """Create the data directory, put the embedded queue's SQLite file in WAL mode, and drop
    the messages consumed before.

    WAL lets the API enqueue while workers poll; the mode is stored in the file, so doing it
    once is enough. kombu marks a consumed message invisible and never deletes it, and nothing
    reads it again, so the file would only grow. A no-op with an external broker.
    """
    if not settings.embedded_broker:
        return
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = make_url(settings.resolved_broker_url().removeprefix("sqla+")).database
    connection = sqlite3.connect(str(path), timeout=30)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        tables = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'kombu_message'"
        ).fetchall()
        if tables:
            with connection:
                connection.execute("DELETE FROM kombu_message WHERE visible = 0")
    finally:
        connection.close()
