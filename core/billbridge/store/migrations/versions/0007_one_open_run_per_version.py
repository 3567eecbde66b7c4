"""At most one open run per bill version and integration, enforced by the database.

Revision ID: 0007_one_open_run_per_version
Revises: 0006_http_api
Create Date: 2026-12-03

Routing checks the open runs before queueing one, but two submissions of the same bill
committing at the same moment (on PostgreSQL, or from several processes) could each see none
and queue one each. A unique partial index makes the second insert a no-op instead. Open
duplicates left by that race before this revision end as ERROR, naming the run kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_one_open_run_per_version"
down_revision: str | Sequence[str] | None = "0006_http_api"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out, not imported (see 0005): the open statuses in the order queries repeat them.
_OPEN = "status IN ('WAITING', 'AWAITING_RETRY', 'RATE_LIMIT_RETRY', 'STARTED')"


def upgrade() -> None:
    """Close open duplicates (keeping the oldest), then create ``uq_runs_open_version``."""
    op.execute(
        sa.text(
            """
            UPDATE runs SET status = 'ERROR',
                error = 'a duplicate of another open run for the same bill version (closed '
                        || 'when the database started to refuse duplicates)',
                claimed_by = NULL, claimed_until = NULL, batch_key = NULL
            WHERE status IN ('WAITING', 'AWAITING_RETRY', 'RATE_LIMIT_RETRY', 'STARTED')
              AND EXISTS (
                SELECT 1 FROM runs AS kept
                WHERE kept.integration_id = runs.integration_id
                  AND kept.bill_id = runs.bill_id
                  AND kept.bill_version = runs.bill_version
                  AND kept.status IN ('WAITING', 'AWAITING_RETRY', 'RATE_LIMIT_RETRY', 'STARTED')
                  AND (kept.created_at < runs.created_at
                       OR (kept.created_at = runs.created_at AND kept.id < runs.id))
            )
            """
        )
    )
    op.create_index(
        "uq_runs_open_version",
        "runs",
        ["integration_id", "bill_id", "bill_version"],
        unique=True,
        sqlite_where=sa.text(_OPEN),
        postgresql_where=sa.text(_OPEN),
    )


def downgrade() -> None:
    """Drop ``uq_runs_open_version``."""
    op.drop_index("uq_runs_open_version", table_name="runs")
