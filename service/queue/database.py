"""Database sessions for code that runs in worker processes and in the API's enqueue path."""

from __future__ import annotations

import os

from sqlalchemy.orm import Session, sessionmaker

from service.db.engine import make_engine, session_factory

_FACTORIES: dict[tuple[int, str], sessionmaker[Session]] = {}


def sessions_for(database_url: str) -> sessionmaker[Session]:
    """A session factory for `database_url`, one engine per process.

    Keyed by process id: a forked worker child must never reuse its parent's connections.
    """
    key = (os.getpid(), database_url)
    factory = _FACTORIES.get(key)
    if factory is None:
        factory = _FACTORIES[key] = session_factory(make_engine(database_url))
    return factory
