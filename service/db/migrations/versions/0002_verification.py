"""Verification: Python catalogs' source, the dedup stage's fingerprints, keys and frontier.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add catalogs.document, jobs.dedup_frontier, samples.fingerprint and dedup_keys."""
    # Plain ADD COLUMN, never a batch copy of the table: on SQLite with foreign keys on,
    # dropping the old copy of jobs would cascade to every batch and sample.
    op.add_column("catalogs", sa.Column("document", sa.Text(), nullable=True))
    op.add_column(
        "jobs",
        sa.Column("dedup_frontier", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column("samples", sa.Column("fingerprint", sa.LargeBinary(), nullable=True))
    op.create_table(
        "dedup_keys",
        sa.Column("sample_id", sa.String(length=64), nullable=False),
        sa.Column("slot", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("key", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["sample_id"], ["samples.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("sample_id", "slot"),
    )
    op.create_index("ix_dedup_keys_key", "dedup_keys", ["key"])


def downgrade() -> None:
    """Drop what `upgrade` added."""
    op.drop_index("ix_dedup_keys_key", table_name="dedup_keys")
    op.drop_table("dedup_keys")
    # DROP COLUMN (SQLite 3.35+), for the same reason as above.
    op.drop_column("samples", "fingerprint")
    op.drop_column("jobs", "dedup_frontier")
    op.drop_column("catalogs", "document")
