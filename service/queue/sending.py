"""Names of the queues and tasks, the app type the tasks run on, and sending work to them: what
the tasks, the API and the workers share without importing the app that registers the tasks."""

from __future__ import annotations

from collections.abc import Iterable

from celery import Celery

from service.settings import Settings

GENERATE_QUEUE = "generate"
VERIFY_QUEUE = "verify"
TRAIN_QUEUE = "train"
QUEUES = (GENERATE_QUEUE, VERIFY_QUEUE, TRAIN_QUEUE)
GENERATE_TASK = "actionforge.generate_batch"
VERIFY_TASK = "actionforge.verify_batch"
TRAIN_TASK = "actionforge.train"
# A broker that is away fails a send within about a second (the API answers meanwhile, and
# the sweep sends the batch again once the broker is back).
SEND_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.3}


class ActionForgeCelery(Celery):
    """A Celery app that knows the Settings it was built from (tasks read the database URL)."""

    settings: Settings
    # Whether this process's worker consumes the verify queue: its generate tasks then verify
    # the batch they stored at once, instead of sending it through the broker.
    verifies_here: bool = False


def send_batches(app: ActionForgeCelery, task_name: str, batch_ids: Iterable[str]) -> int:
    """Enqueue `task_name` for each batch over one broker connection; how many were sent."""
    sent = 0
    with app.producer_or_acquire() as producer:
        for batch_id in batch_ids:
            app.send_task(
                task_name, args=[batch_id], producer=producer, retry_policy=SEND_RETRY_POLICY
            )
            sent += 1
    return sent


def send_training(app: ActionForgeCelery, catalog_id: str, countdown: float = 0.0) -> None:
    """Enqueue a train task for the catalog (after `countdown` seconds)."""
    app.send_task(TRAIN_TASK, args=[catalog_id], countdown=countdown or None)
