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
    requests_per_second: int | None = None
    concurrency: int | None = None
    batch_size: int = 1
    batch_requests_per_minute: int | None = None
    daily_cap: int | None = None
    app_requests_per_minute: int | None = None
    #: Documents per ``fetch_invoice_status`` call (the size of one filtered or batch query).
    status_batch_size: int = 50
    #: Requests one ``fetch_invoice_status`` call may make at most: the core waits for that
    #: many rate-limit slots before each call.
    status_requests: int = 1

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
    token_url: str
    scopes: tuple[str, ...]
    revoke_url: str | None = None
    #: ``"basic"``: client id/secret in an HTTP Basic header (QuickBooks, Xero);
    #: ``"body"``: in the form body.
    client_auth: str = "basic"
    access_token_lifetime: int = 3600
    #: True when every refresh returns a new refresh token and the old one stops working.
    rotating_refresh_token: bool = True
    #: Seconds a spent refresh token still works after rotation (Xero: 30 minutes), else 0.
    refresh_token_grace: int = 0
    refresh_token_lifetime: int | None = None
    #: Extra query parameters on the consent URL.
    extra_authorize_params: Mapping[str, str] = attrs.field(factory=dict, converter=frozen_map)
    #: Extra headers on token requests (e.g. QuickBooks' hard-expiry opt-in).
    token_request_headers: Mapping[str, str] = attrs.field(factory=dict, converter=frozen_map)
    #: The revoke endpoint's body: ``"json"`` (QuickBooks ``{"token": …}``) or ``"form"``.
    revoke_body: str = "form"


@attrs.frozen
class Destination:
    """One external system a plugin serves, as ``register_destinations`` declares it.

    ``key`` is the one name used everywhere (entry point, database, CLI); ``schema`` is the
    configuration panel (JSON Schema draft-07) a UI renders; ``external_tables`` are the tables
    ``list_external_entities`` can list (the values a panel's ``x-external-table`` may name and
    the tables external mappings point at).
    """

    key: str
    title: str
    schema: Mapping[str, Any] = attrs.field(converter=frozen_map)
    external_tables: tuple[str, ...]
    entity_types: tuple[str, ...] = ("Bill",)
    description: str = ""
    limits: Limits = Limits()
    oauth: OAuthSpec | None = None
    #: The external table accounts map to (Customer for QuickBooks, Contact for Xero).
    account_table: str = "Customer"
    #: The external table products/aggregations map to.
    item_table: str = "Item"
    #: Base URL of the destination's API; configuration may override it (tests, emulators).
    api_base_url: str | None = None
    #: A short name of the external system as people know it (used in messages).
    system_name: str = ""

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
    """What the provider's redirect brought back, and the token response for it.

    ``params`` are the callback's query parameters (``code``, ``state``, ``realmId``...);
    ``token`` is the token endpoint's JSON answer with secrets wrapped in :class:`Secret`
    by the core before the plugin sees it (``access_token``, ``refresh_token``).
    """

    params: Mapping[str, str] = attrs.field(converter=frozen_map)
    access_token: Secret
    tenant_hint: str | None = None


@attrs.frozen
class TenantChoice:
    """A tenant (QuickBooks company, Xero organisation) a completed consent gives access to."""

    tenant_id: str
    name: str | None = None
    data: Mapping[str, Any] = attrs.field(factory=dict, converter=frozen_map)


@attrs.frozen
class Connection:
    """A ready-to-use connection to one destination tenant, built by the core per call.

    ``access_token`` is fresh (the core refreshed it if it was about to expire). ``http`` is a
    client the core owns (timeouts, connection pool); plugins must not close it. ``api_base_url``
    is the destination's API root, already overridden by configuration where that applies.
    """

    destination: str
    tenant_id: str
    access_token: Secret
    http: httpx.Client
    api_base_url: str
    credential_id: str | None = None
    settings: Mapping[str, Any] = attrs.field(factory=dict, converter=frozen_map)
    #: Call with ``(scope, remaining)`` when the destination says how much of a limit is left
    #: (e.g. Xero's ``X-MinLimit-Remaining`` → ``("minute", 12)``, ``X-DayLimit-Remaining`` →
    #: ``("day", 4200)``); the core's rate limiter takes it into account. May be ``None``.
    report_limit: Callable[[str, int], None] | None = attrs.field(default=None, eq=False)

    def limit_left(self, scope: str, remaining: int) -> None:
        """Tell the core how much of a limit the destination says is left (no-op if unused)."""
        if self.report_limit is not None:
            self.report_limit(scope, remaining)


@attrs.frozen
class ExternalEntity:
    """One option from the external system (a customer, an item, a tax code...)."""

    id: str
    name: str
    extra: Mapping[str, Any] = attrs.field(factory=dict, converter=frozen_map)

    def to_dict(self) -> dict[str, Any]:
        """``{id, name, extra}`` for JSON output."""
        return {"id": self.id, "name": self.name, "extra": dict(self.extra)}


@attrs.frozen
class ExternalEntityPage:
    """One page of options; ``next_cursor`` is ``None`` on the last page."""

    items: tuple[ExternalEntity, ...]
    next_cursor: str | None = None


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
    number: str | None = None
    url: str | None = None
    state: Mapping[str, Any] = attrs.field(factory=dict, converter=frozen_map)
    created: bool = True


@attrs.frozen
class Delivery:
    """One bill version to send in a batch (``send_bills``).

    The fields mean what ``send_bill``'s arguments of the same names mean; ``key`` identifies
    the delivery in the results.
    """

    key: str
    bill: Bill
    account: Account
    config: Mapping[str, Any] = attrs.field(converter=frozen_map)
    mappings: ResolvedMappings
    previous: LedgerEntry | None
    idempotency_key: str


DeliveryOutcome = SendResult | Exception
"""Per-delivery result of ``send_bills``: a result, or the exception that delivery raised."""


@attrs.frozen
class InvoicePayment:
    """One payment (or credit) applied to a delivered document, as the destination records it.

    :param amount: the amount applied to this document, in its currency.
    :param date: when it was paid (or the credit applied).
    :param kind: ``"payment"``, or ``"credit"`` for a credit note / credit memo applied to it.
    :param external_id: the payment's (or credit's) id at the destination.
    :param method: the destination's id of how it was paid (QuickBooks ``PaymentMethod``, Xero
        bank ``Account``), when known.
    :param method_name: that method's name, when known.
    :param reported_as: the label the integration's panel maps ``method`` to, for reporting.
    :param reference: the payment's reference, when it has one.
    """

    amount: Decimal
    date: date | None = None
    kind: str = "payment"
    external_id: str | None = None
    method: str | None = None
    method_name: str | None = None
    reported_as: str | None = None
    reference: str | None = None

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
    """What a delivered document has become at the destination (``fetch_invoice_status``).

    :param external_id: the document's id, as ``send_bill`` returned it.
    :param state: unpaid, partly paid, paid, voided or deleted
        (:class:`~billbridge.domain.models.InvoiceState`).
    :param total: the document's total as the destination has it now (0 once voided).
    :param amount_due: what is left to pay.
    :param amount_paid: the sum of payments applied.
    :param amount_credited: the sum of credit notes / credit memos applied.
    :param currency: the document's currency code.
    :param paid_on: when it was paid in full (``None`` unless ``state`` is paid).
    :param payments: the payments and credits applied, oldest first, where the destination
        tells them.
    """

    external_id: str
    state: InvoiceState
    total: Decimal | None = None
    amount_due: Decimal | None = None
    amount_paid: Decimal = Decimal("0")
    amount_credited: Decimal = Decimal("0")
    currency: str | None = None
    paid_on: date | None = None
    payments: tuple[InvoicePayment, ...] = attrs.field(default=(), converter=_payments)
