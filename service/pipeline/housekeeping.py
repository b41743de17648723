"""What the sweep deletes once it has served its time."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from service.db.models import IdempotentRequestRecord, utcnow


def forget_old_answers(session: Session, kept_hours: float) -> int:
    """Delete the first answers to Idempotency-Keys stored more than `kept_hours` ago; the
    number deleted."""
    cutoff = utcnow() - timedelta(hours=kept_hours)
    result = session.execute(
        delete(IdempotentRequestRecord).where(IdempotentRequestRecord.created_at < cutoff)
    )
    return int(getattr(result, "rowcount", 0) or 0)
