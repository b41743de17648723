"""Samples say which layout of the unified model their JSON was dumped with.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add samples.layout (NULL for the rows stored before: they are checked as before)."""
    op.add_column("samples", sa.Column("layout", sa.String(32), nullable=True))


def downgrade() -> None:
    """Drop samples.layout."""
    op.drop_column("samples", "layout")
