"""Initial schema: credentials, integrations, external mappings, runs, events, ledger, bills.

Written by hand to match :mod:`billbridge.store.tables` at the time (a test checks that the
migrated schema equals the metadata on SQLite and PostgreSQL). Migrations are snapshots: they use
plain SQLAlchemy types, never the application's classes, so later changes to ``tables.py`` cannot
change what this revision does.

Revision ID: 0001_initial
Revises:
Create Date: 2025-11-21
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id(name: str = "id") -> sa.Column[str]:
    # uuid4 text
    return sa.Column(name, sa.String(36), nullable=False)


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create every table of the first schema."""
    op.create_table(
        "credentials",
        _id(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("destination", sa.String(64), nullable=False),
        sa.Column("entity_type", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        _timestamp("created_at"),
        _timestamp("expires_at", nullable=True),
        sa.Column("tenant_id", sa.String(200), nullable=True),
        sa.Column("tenant_name", sa.String(500), nullable=True),
        sa.Column("access_token_enc", sa.Text(), nullable=True),
        sa.Column("refresh_token_enc", sa.Text(), nullable=True),
        _timestamp("access_token_expires_at", nullable=True),
        _timestamp("refresh_token_expires_at", nullable=True),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("oauth_state_hash", sa.String(64), nullable=True),
        sa.Column("oauth_state_used", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_credentials"),
        sa.UniqueConstraint("oauth_state_hash", name="uq_credentials_oauth_state_hash"),
    )
    op.create_index("ix_credentials_destination", "credentials", ["destination"])

    op.create_table(
        "integrations",
        _id(),
        sa.Column("destination", sa.String(64), nullable=False),
        sa.Column("entity_type", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("global_config", sa.JSON(), nullable=False),
        sa.Column("entity_config", sa.JSON(), nullable=False),
        sa.Column("destination_config", sa.JSON(), nullable=False),
        sa.Column("credential_id", sa.String(36), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("consecutive_errors", sa.Integer(), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_integrations"),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
            name="fk_integrations_credential_id_credentials",
            ondelete="SET NULL",
        ),
    )
    op.create_index("ix_integrations_destination", "integrations", ["destination"])
    op.create_index("ix_integrations_credential_id", "integrations", ["credential_id"])

    op.create_table(
        "external_mappings",
        _id(),
        sa.Column("m3ter_entity", sa.String(64), nullable=False),
        sa.Column("m3ter_id", sa.String(200), nullable=False),
        sa.Column("external_system", sa.String(64), nullable=False),
        sa.Column("external_table", sa.String(64), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("integration_id", sa.String(36), nullable=True),
        sa.Column("scope", sa.String(36), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_external_mappings"),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.id"],
            name="fk_external_mappings_integration_id_integrations",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "m3ter_entity",
            "m3ter_id",
            "external_system",
            "external_table",
            "scope",
            name="uq_external_mappings_key",
        ),
    )
    op.create_index(
        "ix_external_mappings_external",
        "external_mappings",
        ["external_system", "external_table", "external_id"],
    )
    op.create_index("ix_external_mappings_integration_id", "external_mappings", ["integration_id"])

    op.create_table(
        "runs",
        _id(),
        sa.Column("integration_id", sa.String(36), nullable=False),
        sa.Column("bill_id", sa.String(200), nullable=False),
        sa.Column("bill_version", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=True),
        sa.Column("external_url", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("replayed_from", sa.String(36), nullable=True),
        _timestamp("next_attempt_at", nullable=True),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        _timestamp("claimed_until", nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.id"],
            name="fk_runs_integration_id_integrations",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["replayed_from"],
            ["runs.id"],
            name="fk_runs_replayed_from_runs",
            ondelete="SET NULL",
        ),
    )
    op.create_index("ix_runs_integration_bill", "runs", ["integration_id", "bill_id"])
    op.create_index("ix_runs_bill_id", "runs", ["bill_id"])
    op.create_index("ix_runs_due", "runs", ["status", "next_attempt_at"])
    op.create_index("ix_runs_replayed_from", "runs", ["replayed_from"])
    op.create_index("ix_runs_created_at", "runs", ["created_at"])

    op.create_table(
        "events",
        _id(),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("integration_id", sa.String(36), nullable=True),
        sa.Column("run_id", sa.String(36), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        _timestamp("created_at"),
        _timestamp("actioned_at", nullable=True),
        sa.Column("actioned_by", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.id"],
            name="fk_events_integration_id_integrations",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_events_integration_id", "events", ["integration_id"])
    op.create_index("ix_events_created_at", "events", ["created_at"])

    op.create_table(
        "delivery_ledger",
        _id("integration_id"),
        sa.Column("bill_id", sa.String(200), nullable=False),
        sa.Column("bill_version", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("external_number", sa.String(200), nullable=True),
        sa.Column("external_url", sa.Text(), nullable=True),
        sa.Column("state", sa.Text(), nullable=False),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("integration_id", "bill_id", name="pk_delivery_ledger"),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.id"],
            name="fk_delivery_ledger_integration_id_integrations",
            ondelete="CASCADE",
        ),
    )

    op.create_table(
        "bills",
        sa.Column("bill_id", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("account_document", sa.Text(), nullable=False),
        _timestamp("received_at"),
        sa.PrimaryKeyConstraint("bill_id", "version", name="pk_bills"),
    )
    op.create_index("ix_bills_account_id", "bills", ["account_id"])


def downgrade() -> None:
    """Drop everything (children first)."""
    for table in (
        "bills",
        "delivery_ledger",
        "events",
        "runs",
        "external_mappings",
        "integrations",
        "credentials",
    ):
        op.drop_table(table)
