"""What the API reads at each scrape instead of counting it: jobs by status (from the
database) and messages waiting per queue (from the broker: Redis list lengths, or the embedded
queue's table). A source that does not answer leaves its series out and sets
`actionforge_dependency_up{dependency=...}` to 0; the scrape itself never fails."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import JobRecord, JobStatus
from service.queue.app import QUEUES, celery_for
from service.queue.broker_status import waiting_messages
from service.settings import Settings

BROKER_TIMEOUT_SECONDS = 0.5


def jobs_by_status(session: Session) -> dict[str, int]:
    """The number of jobs in each status, every status named (0 where none)."""
    counts = {status.value: 0 for status in JobStatus}
    rows = session.execute(select(JobRecord.status, func.count()).group_by(JobRecord.status))
    for status, n in rows:
        counts[str(status)] = n
    return counts


class ServiceState:
    """A collector of the service's state as the database and the broker tell it now."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        self._sessions = sessions
        self._settings = settings

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "actionforge_dependency_up",
            "Whether the database and the broker answered this scrape (1) or not (0).",
            labels=["dependency"],
        )
        try:
            with self._sessions() as session:
                counts = jobs_by_status(session)
        except SQLAlchemyError:
            up.add_metric(["database"], 0)
        else:
            up.add_metric(["database"], 1)
            jobs = GaugeMetricFamily("actionforge_jobs", "Jobs by status, now.", labels=["status"])
            for status, n in counts.items():
                jobs.add_metric([status], n)
            yield jobs
        try:
            waiting = waiting_messages(celery_for(self._settings), QUEUES, BROKER_TIMEOUT_SECONDS)
        except Exception:  # kombu raises many kinds for a broker that is away
            up.add_metric(["broker"], 0)
        else:
            up.add_metric(["broker"], 1)
            queues = GaugeMetricFamily(
                "actionforge_queue_messages",
                "Messages waiting in each queue of the broker, now (taken by a worker but not "
                "yet acknowledged: not counted).",
                labels=["queue"],
            )
            for queue, n in waiting.items():
                queues.add_metric([queue], n)
            yield queues
        yield up
