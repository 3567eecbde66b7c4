"""Runs remember the batch they were sent in until its outcome is known.

Revision ID: 0004_batch_key
Revises: 0003_delivery
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_batch_key"
down_revision: str | Sequence[str] | None = "0003_delivery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``runs.batch_key``."""
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("batch_key", sa.String(36), nullable=True))
        batch.create_index("ix_runs_batch_key", ["batch_key"])


def downgrade() -> None:
    """Drop ``runs.batch_key``."""
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_batch_key")
        batch.drop_column("batch_key")
