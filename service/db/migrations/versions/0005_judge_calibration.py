"""How a job's semantic judge did on its calibration set.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add jobs.judge_calibration (JSON, nullable)."""
    op.add_column("jobs", sa.Column("judge_calibration", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop jobs.judge_calibration."""
    op.drop_column("jobs", "judge_calibration")
