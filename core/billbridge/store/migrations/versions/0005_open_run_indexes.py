"""Partial indexes for claiming: open runs in claiming order, and runs of unsettled batches.

Revision ID: 0005_open_run_indexes
Revises: 0004_batch_key
Create Date: 2026-11-21

Claiming used to read every run an integration ever had and sort them, so its cost grew with
the run history. Both indexes hold only the few rows the worker asks about.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_open_run_indexes"
down_revision: str | Sequence[str] | None = "0004_batch_key"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out, not imported: a migration must keep meaning what it meant when it was written.
# The order matters (SQLite matches a partial index's condition term for term); it is the order
# of billbridge.store.tables.OPEN_RUN_STATUSES, which queries repeat.
_OPEN = sa.text("status IN ('WAITING', 'AWAITING_RETRY', 'RATE_LIMIT_RETRY', 'STARTED')")
_UNSETTLED = sa.text("batch_key IS NOT NULL")


def upgrade() -> None:
    """Create ``ix_runs_open`` and ``ix_runs_unsettled``."""
    op.create_index(
        "ix_runs_open",
        "runs",
        ["integration_id", "created_at", "id"],
        sqlite_where=_OPEN,
        postgresql_where=_OPEN,
    )
    op.create_index(
        "ix_runs_unsettled",
        "runs",
        ["integration_id", "created_at"],
        sqlite_where=_UNSETTLED,
        postgresql_where=_UNSETTLED,
    )


def downgrade() -> None:
    """Drop the two partial indexes."""
    op.drop_index("ix_runs_unsettled", table_name="runs")
    op.drop_index("ix_runs_open", table_name="runs")
