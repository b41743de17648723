"""The Celery application, built from Settings: queues, reliability options and task routes.

The database holds every piece of state; the broker only says which batch to work on next, so
results are ignored and a lost message is sent again from the database (see
`service.queue.sweep`).
"""

from __future__ import annotations

from typing import Any

from service.queue.declare import (
    declare_embedded_queues,
    prepare_embedded_queue,
    task_queues,
    transport_options,
)
from service.queue.embedded import AdaptivePolling, prefetch_multiplier
from service.queue.sending import (
    GENERATE_QUEUE,
    GENERATE_TASK,
    QUEUES,
    TRAIN_QUEUE,
    TRAIN_TASK,
    VERIFY_QUEUE,
    VERIFY_TASK,
    ActionForgeCelery,
    send_batches,
)
from service.queue.tasks import register_tasks
from service.settings import Settings

__all__ = [
    "GENERATE_TASK",
    "QUEUES",
    "TRAIN_TASK",
    "VERIFY_TASK",
    "ActionForgeCelery",
    "celery_for",
    "declare_embedded_queues",
    "make_celery",
    "prepare_embedded_queue",
    "send_batches",
]


def make_celery(settings: Settings) -> ActionForgeCelery:
    """A new Celery app for `settings`, with the generate, verify and train tasks registered."""
    app = ActionForgeCelery("actionforge", set_as_current=False)
    app.settings = settings
    soft_limit = max(settings.task_time_limit - 30, settings.task_time_limit * 4 // 5)
    app.conf.update(
        broker_url=settings.resolved_broker_url(),
        broker_transport_options=transport_options(settings),
        broker_connection_retry_on_startup=True,
        task_queues=task_queues(),
        task_default_queue=GENERATE_QUEUE,
        task_routes={
            GENERATE_TASK: {"queue": GENERATE_QUEUE},
            VERIFY_TASK: {"queue": VERIFY_QUEUE},
            TRAIN_TASK: {"queue": TRAIN_QUEUE},
        },
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=prefetch_multiplier(settings),
        task_time_limit=settings.task_time_limit,
        task_soft_time_limit=soft_limit,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        worker_send_task_events=False,
        # The embedded queue has no fanout exchanges, which remote control needs.
        worker_enable_remote_control=not settings.embedded_broker,
    )
    if settings.embedded_broker:
        app.steps["consumer"].add(AdaptivePolling)
    register_tasks(app)
    return app


_APPS: dict[tuple[Any, ...], ActionForgeCelery] = {}


def celery_for(settings: Settings) -> ActionForgeCelery:
    """The app for `settings`, built once per process and per broker/database pair."""
    key = (
        settings.resolved_broker_url(),
        settings.resolved_database_url(),
        settings.task_time_limit,
        settings.train_time_limit,
        settings.train_enabled,
    )
    app = _APPS.get(key)
    if app is None:
        app = _APPS[key] = make_celery(settings)
    return app
