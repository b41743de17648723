"""Liveness: batch send times and task leases, the sweep's lease, workers seen, idempotent
requests.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add batches.sent_at, running_until, claimed_by; create leases, workers_seen and
    idempotent_requests."""
    op.add_column("batches", sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("batches", sa.Column("running_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("batches", sa.Column("claimed_by", sa.String(length=64), nullable=True))
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "workers_seen",
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("hostname"),
    )
    op.create_index("ix_workers_seen_seen_at", "workers_seen", ["seen_at"])
    op.create_table(
        "idempotent_requests",
        sa.Column("route", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("location", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("route", "key"),
    )


def downgrade() -> None:
    """Drop what upgrade added."""
    op.drop_table("idempotent_requests")
    op.drop_index("ix_workers_seen_seen_at", table_name="workers_seen")
    op.drop_table("workers_seen")
    op.drop_table("leases")
    op.drop_column("batches", "claimed_by")
    op.drop_column("batches", "running_until")
    op.drop_column("batches", "sent_at")
