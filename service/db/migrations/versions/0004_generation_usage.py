"""What generating each batch cost: LLM requests, tokens and seconds.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add batches.usage (JSON, nullable)."""
    op.add_column("batches", sa.Column("usage", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop batches.usage."""
    op.drop_column("batches", "usage")
