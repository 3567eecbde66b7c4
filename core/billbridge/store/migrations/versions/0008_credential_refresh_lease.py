"""A lease on refreshing a credential's tokens, instead of a lock held during the exchange.

Revision ID: 0008_credential_refresh_lease
Revises: 0007_one_open_run_per_version
Create Date: 2026-12-03

Refreshes were serialized by locking the credential's row for the whole exchange with the
provider; on SQLite that lock is the database's write lock, so every other writer waited for
an HTTP round trip. A worker now takes a short lease (who, until when) in its own transaction,
talks to the provider with no transaction open, and stores the tokens with the lease.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_credential_refresh_lease"
down_revision: str | Sequence[str] | None = "0007_one_open_run_per_version"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``credentials.refresh_owner`` and ``credentials.refresh_until``."""
    with op.batch_alter_table("credentials") as batch:
        batch.add_column(sa.Column("refresh_owner", sa.String(200), nullable=True))
        batch.add_column(sa.Column("refresh_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop the two lease columns."""
    with op.batch_alter_table("credentials") as batch:
        batch.drop_column("refresh_until")
        batch.drop_column("refresh_owner")
