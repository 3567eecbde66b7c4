"""Delivery: routing skips, run attempts, and shared tenant rate-limit state.

Revision ID: 0003_delivery
Revises: 0002_oauth_apps
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_delivery"
down_revision: str | Sequence[str] | None = "0002_oauth_apps"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``skips``, ``run_attempts`` and ``tenant_states``."""
    op.create_table(
        "skips",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("integration_id", sa.String(36), nullable=False),
        sa.Column("bill_id", sa.String(200), nullable=False),
        sa.Column("bill_version", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_skips"),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.id"],
            name="fk_skips_integration_id_integrations",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_skips_bill_id", "skips", ["bill_id"])
    op.create_index("ix_skips_created_at", "skips", ["created_at"])
    op.create_index("ix_skips_integration_bill", "skips", ["integration_id", "bill_id"])
    op.create_table(
        "run_attempts",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_run_attempts"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_run_attempts_run_id_runs", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_run_attempts_run_id", "run_attempts", ["run_id"])
    op.create_table(
        "tenant_states",
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("blocked_reason", sa.Text(), nullable=True),
        sa.Column("counters", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_tenant_states"),
    )


def downgrade() -> None:
    """Drop the delivery tables."""
    op.drop_table("tenant_states")
    op.drop_index("ix_run_attempts_run_id", table_name="run_attempts")
    op.drop_table("run_attempts")
    op.drop_index("ix_skips_integration_bill", table_name="skips")
    op.drop_index("ix_skips_created_at", table_name="skips")
    op.drop_index("ix_skips_bill_id", table_name="skips")
    op.drop_table("skips")
