"""Batches keep what they added to their job's funnel.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add batches.tally."""
    op.add_column("batches", sa.Column("tally", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop batches.tally."""
    op.drop_column("batches", "tally")
