"""Asking the broker, with a short timeout, whether it answers and how many messages wait in
each queue (messages taken by a worker but not yet acknowledged are not counted)."""

from __future__ import annotations

from collections.abc import Sequence

from kombu import Connection
from kombu.exceptions import ChannelError

from service.queue.sending import ActionForgeCelery


def waiting_messages(
    app: ActionForgeCelery, queues: Sequence[str], timeout: float = 1.0
) -> dict[str, int]:
    """Messages waiting in each of `queues`; raises what kombu raises when the broker does
    not answer within about `timeout` seconds."""
    sizes: dict[str, int] = {}
    options = dict(app.conf.broker_transport_options or {})
    if not app.settings.embedded_broker:
        options.update(socket_timeout=timeout, socket_connect_timeout=timeout)
    with Connection(
        app.conf.broker_url, connect_timeout=timeout, transport_options=options
    ) as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
        channel = connection.default_channel
        for queue in queues:
            try:
                sizes[queue] = channel.queue_declare(queue=queue, passive=True).message_count
            except ChannelError:  # an empty Redis queue does not exist
                sizes[queue] = 0
    return sizes
