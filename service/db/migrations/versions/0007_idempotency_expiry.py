"""Idempotency answers expire: index their creation time for the sweep's deletes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Index idempotent_requests.created_at."""
    op.create_index("ix_idempotent_requests_created_at", "idempotent_requests", ["created_at"])


def downgrade() -> None:
    """Drop the index."""
    op.drop_index("ix_idempotent_requests_created_at", table_name="idempotent_requests")
