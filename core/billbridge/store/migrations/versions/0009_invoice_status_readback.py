"""Status read-back: what each delivered document has become at the destination.

Revision ID: 0009_invoice_status_readback
Revises: 0008_credential_refresh_lease
Create Date: 2026-12-10

The delivery ledger gets the document's settlement as last read back through the plugins'
``fetch_invoice_status`` hook (state, amounts, currency, the date it was paid in full, the
payments), when it was read and when it is read next. Documents delivered before this revision
are due at once, so a worker reads each of them back once; settled ones are then left alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_invoice_status_readback"
down_revision: str | Sequence[str] | None = "0008_credential_refresh_lease"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)
# Exact decimals stored as text (billbridge.store.tables.DecimalText).
_AMOUNT = sa.String(50)


def upgrade() -> None:
    """Add the read-back columns and ``ix_delivery_ledger_status_next_check_at``."""
    with op.batch_alter_table("delivery_ledger") as batch:
        batch.add_column(sa.Column("invoice_state", sa.String(16), nullable=True))
        batch.add_column(sa.Column("invoice_total", _AMOUNT, nullable=True))
        batch.add_column(sa.Column("amount_due", _AMOUNT, nullable=True))
        batch.add_column(sa.Column("amount_paid", _AMOUNT, nullable=True))
        batch.add_column(sa.Column("amount_credited", _AMOUNT, nullable=True))
        batch.add_column(sa.Column("invoice_currency", sa.String(3), nullable=True))
        batch.add_column(sa.Column("paid_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("payments", sa.Text(), nullable=True))
        batch.add_column(sa.Column("status_checked_at", _TIME, nullable=True))
        batch.add_column(sa.Column("status_next_check_at", _TIME, nullable=True))
        batch.add_column(sa.Column("status_error", sa.Text(), nullable=True))
        batch.create_index("ix_delivery_ledger_status_next_check_at", ["status_next_check_at"])
    # Everything delivered so far is read back once, from now on.
    op.execute(sa.text("UPDATE delivery_ledger SET status_next_check_at = updated_at"))


def downgrade() -> None:
    """Drop the read-back columns and their index."""
    with op.batch_alter_table("delivery_ledger") as batch:
        batch.drop_index("ix_delivery_ledger_status_next_check_at")
        for column in (
            "status_error",
            "status_next_check_at",
            "status_checked_at",
            "payments",
            "paid_on",
            "invoice_currency",
            "amount_credited",
            "amount_paid",
            "amount_due",
            "invoice_total",
            "invoice_state",
        ):
            batch.drop_column(column)
