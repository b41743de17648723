"""The embedded queue: kombu's SQLAlchemy transport on a SQLite file in the data directory.

It needs no service, survives restarts, and is shared by the API and the worker processes of
one machine. Two things make it practical: the file is prepared before workers start, and
workers poll it often while jobs run but rarely when idle.
"""

from __future__ import annotations

from typing import Any

from celery import bootsteps

from service.settings import Settings

# kombu polls a database queue at a fixed interval (1 s by default), and with prefetch 1 a
# worker waits out that interval after every task. Polling often only while work flows keeps
# batches moving without an idle worker spending several per cent of a core on polls.
BUSY_POLL_SECONDS = 0.02
IDLE_POLL_SECONDS = 0.5
DRAIN_SECONDS = 0.5
# Messages each pool process holds: with one, a process that finished its task waits for the
# next poll to find another (10 ms on average, as long as a 50-sample template batch takes);
# with two, the next is at hand. A worker killed loses its held messages' places in the queue,
# which the sweep re-sends from the database as it does for a running task's.
PREFETCH_MULTIPLIER = 2


def prefetch_multiplier(settings: Settings) -> int:
    """Messages per pool process a worker holds: the embedded queue's, or one for a broker that
    delivers as soon as a process is free (Redis), so batches spread over the fleet's workers."""
    return PREFETCH_MULTIPLIER if settings.embedded_broker else 1


class AdaptivePolling(bootsteps.StartStopStep):
    """Worker consumer step: poll every BUSY_POLL_SECONDS after a message arrived, and every
    IDLE_POLL_SECONDS once nothing came for a whole drain (DRAIN_SECONDS)."""

    requires = ("celery.worker.consumer.connection:Connection",)

    def start(self, consumer: Any) -> None:
        transport = consumer.connection.transport
        drain = transport.drain_events

        def drain_adaptively(connection: Any, timeout: float | None = None) -> Any:
            # Celery's loop notices a shutdown request between drains only (2 s each), so a
            # stopping worker would wait out one: drain in shorter spells.
            if timeout is None or timeout > DRAIN_SECONDS:
                timeout = DRAIN_SECONDS
            try:
                delivered = drain(connection, timeout=timeout)
            except TimeoutError:  # socket.timeout: nothing arrived for a whole drain
                transport.polling_interval = IDLE_POLL_SECONDS
                raise
            transport.polling_interval = BUSY_POLL_SECONDS
            return delivered

        transport.polling_interval = BUSY_POLL_SECONDS
        transport.drain_events = drain_adaptively
