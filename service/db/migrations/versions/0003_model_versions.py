"""Model versions: continual LoRA training runs per catalog and the samples each trained on.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out here so that this revision does not change when the models do.
JSON_DOCUMENT = sa.JSON()
TIMESTAMP = sa.DateTime(timezone=True)
ONE_ACTIVE_VERSION = sa.text("status IN ('queued', 'training')")


def upgrade() -> None:
    """Create model_versions (one active version per catalog) and model_version_samples."""
    op.create_table(
        "model_versions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("catalog_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.String(length=32), nullable=True),
        sa.Column("base_model", sa.Text(), nullable=False),
        sa.Column("adapter_path", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("config", JSON_DOCUMENT, nullable=False),
        sa.Column("new_samples", sa.Integer(), nullable=False),
        sa.Column("replay_samples", sa.Integer(), nullable=False),
        sa.Column("heldout_samples", sa.Integer(), nullable=False),
        sa.Column("dropped_too_long", sa.Integer(), nullable=False),
        sa.Column("metrics", JSON_DOCUMENT, nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("lease_expires_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["catalog_id"], ["catalogs.id"]),
        sa.ForeignKeyConstraint(["parent_id"], ["model_versions.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("catalog_id", "version"),
    )
    op.create_index("ix_model_versions_catalog_id", "model_versions", ["catalog_id"])
    op.create_index("ix_model_versions_status", "model_versions", ["status"])
    op.create_index(
        "ix_model_versions_one_active",
        "model_versions",
        ["catalog_id"],
        unique=True,
        sqlite_where=ONE_ACTIVE_VERSION,
        postgresql_where=ONE_ACTIVE_VERSION,
    )

    op.create_table(
        "model_version_samples",
        sa.Column("version_id", sa.String(length=32), nullable=False),
        sa.Column("sample_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["model_versions.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["sample_id"], ["samples.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("version_id", "sample_id"),
    )
    op.create_index("ix_model_version_samples_sample_id", "model_version_samples", ["sample_id"])


def downgrade() -> None:
    """Drop what `upgrade` added."""
    op.drop_index("ix_model_version_samples_sample_id", table_name="model_version_samples")
    op.drop_table("model_version_samples")
    op.drop_index("ix_model_versions_one_active", table_name="model_versions")
    op.drop_index("ix_model_versions_status", table_name="model_versions")
    op.drop_index("ix_model_versions_catalog_id", table_name="model_versions")
    op.drop_table("model_versions")
