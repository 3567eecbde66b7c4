"""The values that cross the hook boundary between the core and destination plugins.

Plugins build :class:`Destination` (with :class:`Limits` and :class:`OAuthSpec`) in
``register_destinations`` and return :class:`TenantChoice`, :class:`ExternalEntityPage` and
:class:`SendResult` from the other hooks. The core hands them :class:`Connection`,
:class:`ResolvedMappings`, :class:`Delivery` and :class:`OAuthCallback`. All are frozen attrs
classes: plugins never see database rows or sessions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from importlib import resources
from types import MappingProxyType
from typing import Any

import attrs
import httpx

from billbridge.domain.models import (
    Account,
    Bill,
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
    """How the core authenticates the app at the token endpoint, as the provider documents it:
    ``"basic"``, the client id and secret in an HTTP Basic header (QuickBooks, Xero); ``"body"``,
    ``client_id`` and ``client_secret`` in the form body."""
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
