"""The database schema: SQLAlchemy 2.0 declarative rows, portable between SQLite and PostgreSQL.

Rows live only here and in :mod:`billbridge.store.repositories`; everything outside the store
works with the attrs domain classes of :mod:`billbridge.domain.models`.

Portability choices, each made once here:

* Identifiers are uuid4 text (``String(36)``): the same on both databases, readable in logs and
  creatable by the caller before anything is saved.
* Enumerations are plain strings, not database enums: adding a run status is then a code change,
  not a migration (PostgreSQL enums cannot drop values and need ``ALTER TYPE`` outside
  transactions on older servers).
* Timestamps use :class:`UTCDateTime`, which stores UTC and always reads back aware UTC.
* Documents whose numbers must stay exact (bills, ledger state) are stored as JSON *text* written
  by :func:`billbridge.domain.models.dumps`; configuration goes in ``JSON`` columns. The engine's
  JSON
  serialiser is :func:`billbridge.domain.models.dumps` as well (see
  :mod:`billbridge.store.database`),
  so a ``Decimal`` in event details or a destination config is kept exactly.
* Constraint names come from one naming convention (or are given explicitly where the
  convention would pass PostgreSQL's 63 character limit), so that migrations and SQLite's batch
  mode can refer to them by the same name on both databases.

Keep :mod:`billbridge.store.migrations` in step with this module: a test compares the migrated
schema with this metadata on both databases.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TextClause,
    UniqueConstraint,
    bindparam,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from billbridge.domain.models import RunStatus

__all__ = [
    "GLOBAL_SCOPE",
    "NAMING_CONVENTION",
    "OPEN_RUN_STATUSES",
    "ApiKeyRow",
    "BillRow",
    "CredentialRow",
    "DecimalText",
    "EventRow",
    "ExternalMappingRow",
    "FeedCursorRow",
    "IntegrationRow",
    "LedgerRow",
    "OAuthAppRow",
    "RunAttemptRow",
    "RunRow",
    "SkipRow",
    "TenantStateRow",
    "UTCDateTime",
    "WebhookDeliveryRow",
    "WebhookEndpointRow",
    "metadata",
    "new_id",
    "open_runs",
    "open_runs_literal",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

ID_LENGTH = 36
"""Length of a uuid4 in its canonical text form."""

GLOBAL_SCOPE = ""
"""``external_mappings.scope`` of a global mapping (one with no integration)."""


def new_id() -> str:
    """A new random identifier for any billbridge record (uuid4 text)."""
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware in UTC.

    PostgreSQL keeps the offset (``timestamptz``) but returns it in the session's time zone;
    SQLite keeps no offset at all and returns naive values. Normalising both directions here
    means repositories never see a naive or non-UTC time, and SQLite's text comparison of
    timestamps (``created_at >= :since``) orders correctly because every stored value has the
    same offset and format.

    Naive datetimes are refused rather than guessed: a naive time reaching the store is a bug.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} given to the store: use aware UTC"
            )
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # SQLite's DATETIME drops tzinfo without converting; we converted above.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class DecimalText(TypeDecorator[Decimal]):
    """An exact decimal stored as its text (``"1234.50"``), read back as a ``Decimal``.

    SQLite has no exact numeric type (SQLAlchemy's ``Numeric`` goes through float there and
    warns), and these amounts are shown, never summed in SQL: text keeps them exact on both
    databases.
    """

    impl = String(50)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"{value!r} given to a decimal column: use Decimal")
        return str(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


def _id_column(**kwargs: Any) -> Any:
    return mapped_column(String(ID_LENGTH), primary_key=True, **kwargs)


class Base(DeclarativeBase):
    """Declarative base bound to billbridge's :data:`metadata`."""

    metadata = metadata
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[str]: JSON()}


class CredentialRow(Base):
    """A connection to one destination tenant; tokens only ever stored encrypted."""

    __tablename__ = "credentials"

    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(200))
    destination: Mapped[str] = mapped_column(String(64), index=True)
    entity_type: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    # Only INCOMPLETE credentials expire (the 10 minute consent window).
    expires_at: Mapped[datetime | None]
    tenant_id: Mapped[str | None] = mapped_column(String(200))
    tenant_name: Mapped[str | None] = mapped_column(String(500))
    # Fernet tokens (billbridge.secrets.SecretBox): never plaintext.
    access_token_enc: Mapped[str | None] = mapped_column(Text)
    refresh_token_enc: Mapped[str | None] = mapped_column(Text)
    access_token_expires_at: Mapped[datetime | None]
    refresh_token_expires_at: Mapped[datetime | None]
    scopes: Mapped[list[str]]
    data: Mapped[dict[str, Any]]
    # sha256 hex of the OAuth ``state``: the state itself is a bearer secret and never stored.
    oauth_state_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    oauth_state_used: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bumped on every update; lets token refresh detect that another worker refreshed first.
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Who is refreshing the tokens, and until when (a lease: the exchange with the provider
    # happens with no transaction open, see services/credentials.py).
    refresh_owner: Mapped[str | None] = mapped_column(String(200))
    refresh_until: Mapped[datetime | None]


class OAuthAppRow(Base):
    """The OAuth app billbridge uses for one destination (client secret only encrypted)."""

    __tablename__ = "oauth_apps"

    destination: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(500))
    client_secret_enc: Mapped[str] = mapped_column(Text)
    redirect_uri: Mapped[str | None] = mapped_column(String(2000))
    updated_at: Mapped[datetime]


class IntegrationRow(Base):
    """One configured bill flow to one destination."""

    __tablename__ = "integrations"

    id: Mapped[str] = _id_column()
    destination: Mapped[str] = mapped_column(String(64), index=True)
    entity_type: Mapped[str] = mapped_column(String(64))
    # Copied from global_config["name"] so lists can sort and search without reading JSON.
    name: Mapped[str] = mapped_column(String(200))
    global_config: Mapped[dict[str, Any]]
    entity_config: Mapped[dict[str, Any]]
    destination_config: Mapped[dict[str, Any]]
    credential_id: Mapped[str | None] = mapped_column(
        ForeignKey("credentials.id", ondelete="SET NULL"), index=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean)
    version: Mapped[int] = mapped_column(Integer)
    consecutive_errors: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ExternalMappingRow(Base):
    """``(m3ter entity, id) → (external system, table, id)``, global or linked to an integration."""

    __tablename__ = "external_mappings"

    id: Mapped[str] = _id_column()
    m3ter_entity: Mapped[str] = mapped_column(String(64))
    m3ter_id: Mapped[str] = mapped_column(String(200))
    external_system: Mapped[str] = mapped_column(String(64))
    external_table: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(200))
    integration_id: Mapped[str | None] = mapped_column(
        ForeignKey("integrations.id", ondelete="CASCADE"), index=True
    )
    # integration_id, or GLOBAL_SCOPE for a global mapping. SQL unique constraints treat NULLs
    # as distinct, so a constraint over integration_id would let two identical global mappings
    # in; `scope` is never NULL. (PostgreSQL 15 has NULLS NOT DISTINCT; SQLite has no equivalent.)
    scope: Mapped[str] = mapped_column(String(ID_LENGTH))
    created_at: Mapped[datetime]

    __table_args__ = (
        # Also serves lookups by (m3ter_entity, m3ter_id): they are its leading columns.
        UniqueConstraint(
            "m3ter_entity",
            "m3ter_id",
            "external_system",
            "external_table",
            "scope",
            name="uq_external_mappings_key",
        ),
        Index("ix_external_mappings_external", "external_system", "external_table", "external_id"),
    )


class RunRow(Base):
    """One attempt to deliver one bill version through one integration."""

    __tablename__ = "runs"

    id: Mapped[str] = _id_column()
    integration_id: Mapped[str] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"))
    # Indexed alone too: "every run of this bill" is asked across integrations.
    bill_id: Mapped[str] = mapped_column(String(200), index=True)
    bill_version: Mapped[int] = mapped_column(Integer)
    account_id: Mapped[str | None] = mapped_column(String(200))
    # Indexed through (status, next_attempt_at) below: status is its leading column.
    status: Mapped[str] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    external_id: Mapped[str | None] = mapped_column(String(200))
    external_url: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    # SET NULL: deleting an old run must not delete the replays made from it.
    replayed_from: Mapped[str | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), index=True
    )
    next_attempt_at: Mapped[datetime | None]
    # Worker lease (not part of the domain Run): who is delivering it, and until when.
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_until: Mapped[datetime | None]
    # The batch the run was last sent in, kept while that batch's outcome is unknown (a lost
    # answer, a dead worker): the run is sent again with exactly the same batch, whose
    # idempotency key then makes the destination answer instead of creating twice.
    batch_key: Mapped[str | None] = mapped_column(String(36), index=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_runs_integration_bill", "integration_id", "bill_id"),
        # The worker's question: which runs are due now?
        Index("ix_runs_due", "status", "next_attempt_at"),
    )


#: Statuses of runs that are not finished, in the order the partial indexes below spell them.
OPEN_RUN_STATUSES: tuple[str, ...] = (
    RunStatus.WAITING.value,
    RunStatus.AWAITING_RETRY.value,
    RunStatus.RATE_LIMIT_RETRY.value,
    RunStatus.STARTED.value,
)


def open_runs() -> ColumnElement[bool]:
    """``runs.status IN (<open statuses>)``, with the statuses written into the SQL.

    A partial index serves a query only when the query's WHERE clause contains the index's
    condition (SQLite wants it term for term, PostgreSQL must be able to prove it). Bound
    parameters defeat both, so the statuses are rendered as literals; every query that claims or
    counts open runs adds this term to reach :data:`ix_runs_open`.
    """
    return RunRow.status.in_(
        bindparam("open_run_statuses", list(OPEN_RUN_STATUSES), literal_execute=True)
    )


def open_runs_literal() -> TextClause:
    """:func:`open_runs` as literal SQL text, where no bound parameter may appear (the
    predicate of ``ON CONFLICT``, which the database matches against a partial index)."""
    # The statuses are this module's constants, never input: quoting them here is safe.
    listed = ", ".join(f"'{status}'" for status in OPEN_RUN_STATUSES)
    return text(f"status IN ({listed})")


# The queue's hot path. Claiming asks for one integration's oldest due runs; with only
# ix_runs_due the database read every run the integration ever had and sorted them, so each
# claim cost grew with the run history (quadratic over a backlog). This index holds open runs
# only (finished ones drop out of it) and is already in claiming order.
Index(
    "ix_runs_open",
    RunRow.integration_id,
    RunRow.created_at,
    RunRow.id,
    sqlite_where=open_runs(),
    postgresql_where=open_runs(),
)
# At most one open run per bill version and integration: two submissions racing (another
# process, PostgreSQL's concurrency) cannot both queue one; the second insert does nothing.
Index(
    "uq_runs_open_version",
    RunRow.integration_id,
    RunRow.bill_id,
    RunRow.bill_version,
    unique=True,
    sqlite_where=open_runs(),
    postgresql_where=open_runs(),
)
# Claiming first looks for a batch whose outcome is unknown: rare rows, so a partial index on
# exactly those makes the look-up free instead of a scan of the integration's runs.
Index(
    "ix_runs_unsettled",
    RunRow.integration_id,
    RunRow.created_at,
    sqlite_where=RunRow.batch_key.is_not(None),
    postgresql_where=RunRow.batch_key.is_not(None),
)


class SkipRow(Base):
    """A routing decision not to send a bill version through an integration, and why."""

    __tablename__ = "skips"

    id: Mapped[str] = _id_column()
    integration_id: Mapped[str] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"))
    bill_id: Mapped[str] = mapped_column(String(200), index=True)
    bill_version: Mapped[int] = mapped_column(Integer)
    account_id: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)

    __table_args__ = (Index("ix_skips_integration_bill", "integration_id", "bill_id"),)


class RunAttemptRow(Base):
    """One try at delivering a run: when, by which worker, and how it ended."""

    __tablename__ = "run_attempts"

    id: Mapped[str] = _id_column()
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)


class TenantStateRow(Base):
    """Rate-limit state of one destination tenant, shared by every worker.

    ``lease_*`` is the worker currently delivering to the tenant (one at a time, so that the
    tenant's limits are kept in one place); the counters carry the tenant's usage across
    leases and workers.
    """

    __tablename__ = "tenant_states"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None]
    blocked_until: Mapped[datetime | None]
    blocked_reason: Mapped[str | None] = mapped_column(Text)
    counters: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class EventRow(Base):
    """Something a person must act on."""

    __tablename__ = "events"

    id: Mapped[str] = _id_column()
    type: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    integration_id: Mapped[str | None] = mapped_column(
        ForeignKey("integrations.id", ondelete="CASCADE"), index=True
    )
    # No foreign key: an event outlives the run it was about (runs may be pruned).
    run_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    details: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(index=True)
    actioned_at: Mapped[datetime | None]
    actioned_by: Mapped[str | None] = mapped_column(String(200))


class LedgerRow(Base):
    """Which external invoice a bill became through one integration (one row per bill)."""

    __tablename__ = "delivery_ledger"

    integration_id: Mapped[str] = mapped_column(
        ForeignKey("integrations.id", ondelete="CASCADE"), primary_key=True
    )
    bill_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    bill_version: Mapped[int] = mapped_column(Integer)
    external_id: Mapped[str] = mapped_column(String(200))
    external_number: Mapped[str | None] = mapped_column(String(200))
    external_url: Mapped[str | None] = mapped_column(Text)
    # JSON text via models.dumps: plugin state may hold Decimals that must stay exact.
    state: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]
    # Status read-back (fetch_invoice_status): the document's settlement as last read, and
    # when to read it next (NULL: never again, or never delivered through a plugin that reads).
    invoice_state: Mapped[str | None] = mapped_column(String(16))
    invoice_total: Mapped[Decimal | None] = mapped_column(DecimalText())
    amount_due: Mapped[Decimal | None] = mapped_column(DecimalText())
    amount_paid: Mapped[Decimal | None] = mapped_column(DecimalText())
    amount_credited: Mapped[Decimal | None] = mapped_column(DecimalText())
    invoice_currency: Mapped[str | None] = mapped_column(String(3))
    paid_on: Mapped[date | None] = mapped_column(Date())
    # JSON text via models.dumps (a list of payments with exact amounts).
    payments: Mapped[str | None] = mapped_column(Text)
    status_checked_at: Mapped[datetime | None]
    status_next_check_at: Mapped[datetime | None] = mapped_column(index=True)
    status_error: Mapped[str | None] = mapped_column(Text)


class BillRow(Base):
    """Every bill version received, exactly as it was, so a delivery reads the version it names."""

    __tablename__ = "bills"

    bill_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(String(200), index=True)
    # JSON text via models.dumps: exact Decimals, m3ter's camelCase, unknown fields kept.
    document: Mapped[str] = mapped_column(Text)
    account_document: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime]


# --- the HTTP service (billbridge serve): API keys, webhooks, the activity feed's cursors --------

# The activity feed (events and delivery outcomes, for webhooks and the console's stream) reads
# attempts by the time they finished. Attempts are only ever inserted, so this index costs one
# insert per attempt and never slows the updates of the runs table.
Index("ix_run_attempts_finished_at", RunAttemptRow.finished_at)


class ApiKeyRow(Base):
    """A key for the HTTP API. Only its hash is stored: the key is shown once, when made."""

    __tablename__ = "api_keys"

    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(200))
    # The key's first characters, shown in lists so a person can tell keys apart.
    prefix: Mapped[str] = mapped_column(String(16))
    # sha256 hex of the whole key. Keys are 256 random bits, so there is no dictionary to guess
    # from and a fast hash is enough; it lets every request be checked with one indexed lookup.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class WebhookEndpointRow(Base):
    """A URL told about events and delivery outcomes, with the secret its requests are signed
    with (encrypted: billbridge needs it back to sign)."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = _id_column()
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(500))
    # Event types it wants (``integration.*.error``, ``run.<status>``); empty: every type.
    event_types: Mapped[list[str]]
    secret_enc: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookDeliveryRow(Base):
    """One notification to one endpoint: what was sent, how often, and how it ended."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = _id_column()
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    # What the notification is about (``event:<id>``, ``attempt:<run id>:<number>``): the feed is
    # read with an overlap, and this key makes a second reading queue nothing twice.
    dedupe_key: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None]
    claimed_until: Mapped[datetime | None]
    response_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("endpoint_id", "dedupe_key"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "created_at"),
    )


class FeedCursorRow(Base):
    """How far a reader of the activity feed (the webhook queue) has read."""

    __tablename__ = "feed_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[datetime]
    updated_at: Mapped[datetime]
