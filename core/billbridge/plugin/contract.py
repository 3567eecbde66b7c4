"""The values that cross the hook boundary between the core and destination plugins.

Plugins build :class:`Destination` (with :class:`Limits` and :class:`OAuthSpec`) in
``register_destinations`` and return :class:`TenantChoice`, :class:`ExternalEntityPage`,
:class:`SendResult` and :class:`InvoiceStatus` from the other hooks. The core hands them
:class:`Connection`, :class:`ResolvedMappings`, :class:`Delivery` and :class:`OAuthCallback`.
All are frozen attrs classes: plugins never see database rows or sessions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from decimal import Decimal
from importlib import resources
from types import MappingProxyType
from typing import Any

import attrs
import httpx

from billbridge.domain.models import (
    Account,
    Bill,
    InvoiceState,
    LedgerEntry,
    Secret,
    frozen_map,
)

__all__ = [
    "Connection",
    "Delivery",
    "Destination",
    "ExternalEntity",
    "ExternalEntityPage",
    "InvoicePayment",
    "InvoiceState",
    "InvoiceStatus",
    "Limits",
    "OAuthCallback",
    "OAuthSpec",
    "ResolvedMappings",
    "SendResult",
    "TenantChoice",
    "load_panel_schema",
]


@attrs.frozen
class Limits:
    """What a destination tolerates per tenant; the core's rate limiter keeps to it.

    ``None`` means "no limit known". Figures come from the provider's documentation
    (REFERENCE.md) and can be overridden per deployment.
    """

    requests_per_minute: int | None = None
    """Requests per tenant per minute."""
    requests_per_second: int | None = None
    """Requests per tenant per second."""
    concurrency: int | None = None
    """Requests in flight per tenant; ``send_bill`` runs this many at once (1 when unset)."""
    batch_size: int = 1
    """Deliveries per ``send_bills`` request (1: no batching)."""
    batch_requests_per_minute: int | None = None
    """Batch requests per tenant per minute, counted apart from the others."""
    daily_cap: int | None = None
    """Requests per tenant per rolling day; when spent, the tenant's runs wait."""
    app_requests_per_minute: int | None = None
    """The provider's limit per app across all tenants (e.g. Xero's 10,000 a minute)."""
    status_batch_size: int = 50
    """Documents per ``fetch_invoice_status`` call (the size of one filtered or batch query)."""
    status_requests: int = 1
    """Requests one ``fetch_invoice_status`` call may make at most: the core waits for that many
    rate-limit slots before each call."""

    def to_dict(self) -> dict[str, int | None]:
        """Plain dict, e.g. for ``billbridge plugins --json``."""
        return attrs.asdict(self)


@attrs.frozen
class OAuthSpec:
    """How to connect to a destination with OAuth 2.0 (authorization code grant).

    The core runs the protocol (oauthlib) and the transport (httpx); the plugin only declares
    the endpoints and its quirks here.
    """

    authorize_url: str
    """The provider's consent page (https). ``BILLBRIDGE_<KEY>_AUTHORIZE_URL`` overrides it."""
    token_url: str
    """The token endpoint (https). ``BILLBRIDGE_<KEY>_TOKEN_URL`` overrides it."""
    scopes: tuple[str, ...]
    """The scopes to ask for; include the one that gives a refresh token (often
    ``offline_access``)."""
    revoke_url: str | None = None
    """The revocation endpoint, or ``None``. ``BILLBRIDGE_<KEY>_REVOKE_URL`` overrides it."""
    client_auth: str = "basic"
    """How the core authenticates the app at the token and revoke endpoints, as the provider
    documents it: ``"basic"``, the client id and secret in an HTTP Basic header (QuickBooks,
    Xero); ``"body"``, ``client_id`` and ``client_secret`` in the request body."""
    access_token_lifetime: int = 3600
    """Seconds an access token lives when the token response does not say (``expires_in``)."""
    rotating_refresh_token: bool = True
    """True when every refresh returns a new refresh token and the old one stops working."""
    refresh_token_grace: int = 0
    """Seconds a spent refresh token still works after rotation (Xero: 30 minutes), else 0."""
    refresh_token_lifetime: int | None = None
    """Seconds a refresh token lives, when the token response does not say."""
    extra_authorize_params: Mapping[str, str] = attrs.field(factory=dict, converter=frozen_map)
    """Extra query parameters on the consent URL."""
    token_request_headers: Mapping[str, str] = attrs.field(factory=dict, converter=frozen_map)
    """Extra headers on token requests (e.g. QuickBooks' hard-expiry opt-in)."""
    revoke_body: str = "form"
    """The revoke endpoint's body: ``"json"`` (QuickBooks ``{"token": …}``) or ``"form"``."""


@attrs.frozen
class Destination:
    """One external system a plugin serves, as ``register_destinations`` declares it.

    ``key`` is the one name used everywhere (entry point, database, CLI); ``schema`` is the
    configuration panel (JSON Schema draft-07) a UI renders; ``external_tables`` are the tables
    ``list_external_entities`` can list (the values a panel's ``x-external-table`` may name and
    the tables external mappings point at).
    """

    key: str
    """The destination key: entry point name, database value, ``--destination`` argument (lower-case
    letters, digits, underscores)."""
    title: str
    """The name people see ("QuickBooks Online")."""
    schema: Mapping[str, Any] = attrs.field(converter=frozen_map)
    """The configuration panel, a JSON Schema draft-07 (``load_panel_schema``)."""
    external_tables: tuple[str, ...]
    """The tables ``list_external_entities`` can list; the values ``x-external-table`` may name and
    external mappings may point at."""
    entity_types: tuple[str, ...] = ("Bill",)
    """The m3ter entity types delivered (``("Bill",)``)."""
    description: str = ""
    """A sentence for people choosing a destination."""
    limits: Limits = Limits()
    """What one tenant tolerates (:class:`Limits`)."""
    oauth: OAuthSpec | None = None
    """How to connect (:class:`OAuthSpec`), or ``None`` for a destination without OAuth."""
    account_table: str = "Customer"
    """The external table accounts map to (``Customer`` for QuickBooks, ``Contact`` for Xero); when
    it is among ``external_tables`` the core refuses bills whose account is not mapped there."""
    item_table: str = "Item"
    """The external table products and aggregations map to."""
    api_base_url: str | None = None
    """The real API's root; ``BILLBRIDGE_<KEY>_API_BASE_URL`` overrides it (emulators, proxies).
    Required with OAuth."""
    system_name: str = ""
    """How messages name the external system ("the webhook receiver")."""

    def describe(self) -> dict[str, Any]:
        """A JSON-able description (what ``billbridge plugins --json`` prints per destination)."""
        return {
            "key": self.key,
            "title": self.title,
            "description": self.description,
            "entityTypes": list(self.entity_types),
            "externalTables": list(self.external_tables),
            "accountTable": self.account_table,
            "itemTable": self.item_table,
            "limits": self.limits.to_dict(),
            "auth": "oauth2" if self.oauth else "none",
            "scopes": list(self.oauth.scopes) if self.oauth else [],
        }


def load_panel_schema(package: str, name: str = "schema.json") -> dict[str, Any]:
    """Read a plugin's panel schema shipped inside its package (works from a wheel too)."""
    text = resources.files(package).joinpath(name).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@attrs.frozen
class OAuthCallback:
    """What the provider's redirect brought back, and the access token the core got for it.

    ``authenticate`` receives it to learn which tenant the new token is for.
    """

    params: Mapping[str, str] = attrs.field(converter=frozen_map)
    """The consent redirect's query parameters: ``code``, ``state``, and what the provider adds
    (QuickBooks' ``realmId``)."""
    access_token: Secret
    """The access token the code was exchanged for (a ``Secret``: call ``.reveal()`` only to send
    it)."""
    tenant_hint: str | None = None
    """The tenant the user asked for, when known (QuickBooks' ``realmId``, ``--tenant``)."""


@attrs.frozen
class TenantChoice:
    """A tenant (QuickBooks company, Xero organisation) a completed consent gives access to."""

    tenant_id: str
    """The tenant's id at the provider; ``Connection.tenant_id`` later."""
    name: str | None = None
    """Its name, shown to the user who chooses."""
    data: Mapping[str, Any] = attrs.field(factory=dict, converter=frozen_map)
    """Anything to keep with the credential (plain values only)."""


@attrs.frozen
class Connection:
    """A ready-to-use connection to one destination tenant, built by the core per call.

    ``access_token`` is fresh (the core refreshed it if it was about to expire). ``http`` is a
    client the core owns (timeouts, connection pool); plugins must not close it. ``api_base_url``
    is the destination's API root, already overridden by configuration where that applies.
    """

    destination: str
    """The destination key."""
    tenant_id: str
    """The tenant to act on (a realm, an organisation); for a destination without OAuth, the
    integration's id."""
    access_token: Secret
    """A fresh access token (a ``Secret``; empty without OAuth). The core refreshed it if it was
    about to expire and refreshes it once more when a hook raises ``TokenExpired``."""
    http: httpx.Client
    """An ``httpx.Client`` the core owns (timeouts, connection pool): use it, never close it."""
    api_base_url: str
    """The API root, with ``BILLBRIDGE_<KEY>_API_BASE_URL`` applied (an emulator in tests)."""
    credential_id: str | None = None
    """The credential behind the connection, or ``None``."""
    settings: Mapping[str, Any] = attrs.field(factory=dict, converter=frozen_map)
    """Per-connection settings the core passes on (empty today)."""
    report_limit: Callable[[str, int], None] | None = attrs.field(default=None, eq=False)
    """Where ``limit_left`` reports to (``None``: nowhere); call ``limit_left``, not this."""

    def limit_left(self, scope: str, remaining: int) -> None:
        """Tell the core how much of a limit the destination says is left (no-op if unused)."""
        if self.report_limit is not None:
            self.report_limit(scope, remaining)


@attrs.frozen
class ExternalEntity:
    """One option from the external system (a customer, an item, a tax code...)."""

    id: str
    """The record's id in the destination: what mappings and the panel store."""
    name: str
    """What people see in a picker; search matches it."""
    extra: Mapping[str, Any] = attrs.field(factory=dict, converter=frozen_map)
    """More to show or filter by (a currency, a code, an email)."""

    def to_dict(self) -> dict[str, Any]:
        """``{id, name, extra}`` for JSON output."""
        return {"id": self.id, "name": self.name, "extra": dict(self.extra)}


@attrs.frozen
class ExternalEntityPage:
    """One page of options; ``next_cursor`` is ``None`` on the last page."""

    items: tuple[ExternalEntity, ...]
    """The page's records."""
    next_cursor: str | None = None
    """Pass it back as ``cursor`` for the next page; ``None`` on the last page."""


def _freeze_entries(
    value: Mapping[tuple[str, str, str], str],
) -> Mapping[tuple[str, str, str], str]:
    return MappingProxyType(dict(value))


@attrs.frozen
class ResolvedMappings:
    """External mappings for one delivery, already resolved by the core.

    Linked mappings (for this integration) win over global ones; when the integration enforces
    its own mappings, only linked ones are here. Keys are ``(m3ter entity, m3ter id,
    external table)``.
    """

    entries: Mapping[tuple[str, str, str], str] = attrs.field(
        factory=dict, converter=_freeze_entries
    )
    """``(m3ter entity, m3ter id, external table) → external id``, read-only; use ``get``."""

    def get(self, entity: str, entity_id: str | None, table: str) -> str | None:
        """The external id for ``entity_id`` in ``table``, or ``None`` when unmapped."""
        if entity_id is None:
            return None
        return self.entries.get((entity, entity_id, table))

    def __len__(self) -> int:
        return len(self.entries)


@attrs.frozen
class SendResult:
    """What a created or updated invoice became in the destination.

    ``state`` is whatever the plugin needs to update it later (e.g. QuickBooks' ``SyncToken``,
    the document type); the core stores it in the delivery ledger and hands it back as
    ``previous.state``.
    """

    external_id: str
    """The document's id in the destination; ``previous.external_id`` when a later version updates
    it."""
    number: str | None = None
    """The number the destination gave the invoice, if any."""
    url: str | None = None
    """Where people see the invoice (http or https), if any."""
    state: Mapping[str, Any] = attrs.field(factory=dict, converter=frozen_map)
    """Whatever is needed to update the document later (QuickBooks' ``SyncToken``, the document
    type); JSON-able, handed back as ``previous.state``."""
    created: bool = True
    """True for a create, False for an update."""


@attrs.frozen
class Delivery:
    """One bill version to send in a batch (``send_bills``).

    The fields mean what ``send_bill``'s arguments of the same names mean; ``key`` identifies
    the delivery in the results.
    """

    key: str
    """Identifies the delivery among the batch's outcomes."""
    bill: Bill
    """As ``send_bill``'s ``bill``."""
    account: Account
    """As ``send_bill``'s ``account``."""
    config: Mapping[str, Any] = attrs.field(converter=frozen_map)
    """As ``send_bill``'s ``config`` (panel defaults filled in)."""
    mappings: ResolvedMappings
    """As ``send_bill``'s ``mappings``."""
    previous: LedgerEntry | None
    """As ``send_bill``'s ``previous``."""
    idempotency_key: str
    """This delivery's own key, as ``send_bill``'s ``idempotency_key``."""


DeliveryOutcome = SendResult | Exception
"""Per-delivery result of ``send_bills``: a result, or the exception that delivery raised."""


@attrs.frozen
class InvoicePayment:
    """One payment (or credit) applied to a delivered document, as the destination records it."""

    amount: Decimal
    """The amount applied to this document, in its currency."""
    date: date | None = None
    """When it was paid (or the credit applied)."""
    kind: str = "payment"
    """``"payment"``, or ``"credit"`` for a credit note / credit memo applied to it."""
    external_id: str | None = None
    """The payment's (or credit's) id at the destination."""
    method: str | None = None
    """The destination's id of how it was paid (QuickBooks ``PaymentMethod``, Xero bank
    ``Account``), when known."""
    method_name: str | None = None
    """That method's name, when known."""
    reported_as: str | None = None
    """The label the integration's panel maps ``method`` to, for reporting."""
    reference: str | None = None
    """The payment's reference, when it has one."""

    def to_dict(self) -> dict[str, object]:
        """camelCase, unset fields left out (what the ledger stores and the API shows)."""
        values = {
            "amount": self.amount,
            "date": self.date.isoformat() if self.date is not None else None,
            "kind": self.kind,
            "externalId": self.external_id,
            "method": self.method,
            "methodName": self.method_name,
            "reportedAs": self.reported_as,
            "reference": self.reference,
        }
        return {k: v for k, v in values.items() if v is not None}


def _payments(items: Iterable[InvoicePayment]) -> tuple[InvoicePayment, ...]:
    return tuple(items)


@attrs.frozen
class InvoiceStatus:
    """What a delivered document has become at the destination (``fetch_invoice_status``)."""

    external_id: str
    """The document's id, as ``send_bill`` returned it."""
    state: InvoiceState
    """Unpaid, partly paid, paid, voided or deleted
    (:class:`~billbridge.domain.models.InvoiceState`)."""
    total: Decimal | None = None
    """The document's total as the destination has it now (0 once voided)."""
    amount_due: Decimal | None = None
    """What is left to pay."""
    amount_paid: Decimal = Decimal("0")
    """The sum of payments applied."""
    amount_credited: Decimal = Decimal("0")
    """The sum of credit notes / credit memos applied."""
    currency: str | None = None
    """The document's currency code."""
    paid_on: date | None = None
    """When it was paid in full (``None`` unless ``state`` is paid)."""
    payments: tuple[InvoicePayment, ...] = attrs.field(default=(), converter=_payments)
    """The payments and credits applied, oldest first, where the destination tells them."""
