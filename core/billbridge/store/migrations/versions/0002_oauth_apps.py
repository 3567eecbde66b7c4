"""OAuth apps per destination, with the client secret encrypted.

Revision ID: 0002_oauth_apps
Revises: 0001_initial
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_oauth_apps"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``oauth_apps``."""
    op.create_table(
        "oauth_apps",
        sa.Column("destination", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(500), nullable=False),
        sa.Column("client_secret_enc", sa.Text(), nullable=False),
        sa.Column("redirect_uri", sa.String(2000), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("destination", name="pk_oauth_apps"),
    )


def downgrade() -> None:
    """Drop ``oauth_apps``."""
    op.drop_table("oauth_apps")
