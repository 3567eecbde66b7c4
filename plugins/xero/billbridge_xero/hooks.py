"""billbridge hooks for Xero (destination ``xero``).

Hooks stay thin: they declare the destination and delegate to :mod:`billbridge_xero.translate`
(bill → document, pure), :mod:`billbridge_xero.send` (create, update, batches, reconciliation)
and :mod:`billbridge_xero.client` (HTTP, limits, errors).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs
import httpx

from billbridge import hookimpl
from billbridge.domain.lines import fallback_config_errors
from billbridge.domain.models import Account, Bill, Credential, LedgerEntry, loads
from billbridge.domain.schemas import custom_field_name_errors
from billbridge.domain.tax import rate_errors
from billbridge.errors import (
    AuthenticationFailed,
    DestinationValidationError,
    FieldError,
    RateLimited,
    TransientError,
)
from billbridge.plugin.batches import prepare_each
from billbridge.plugin.contract import (
    Connection,
    Delivery,
    DeliveryOutcome,
    Destination,
    ExternalEntity,
    ExternalEntityPage,
    InvoiceStatus,
    Limits,
    OAuthCallback,
    OAuthSpec,
    ResolvedMappings,
    SendResult,
    TenantChoice,
    load_panel_schema,
)
from billbridge_xero.client import XeroClient, api_host
from billbridge_xero.send import planned_request, prepare, send_document, send_documents
from billbridge_xero.status import BATCH_SIZE as STATUS_BATCH_SIZE
from billbridge_xero.status import REQUESTS as STATUS_REQUESTS
from billbridge_xero.status import fetch_statuses, list_bank_accounts
from billbridge_xero.translate import translate_bill

KEY = "xero"
API_BASE = "https://api.xero.com/api.xro/2.0"
EXTERNAL_TABLES = (
    "Contact",
    "Item",
    "Account",
    "TaxRate",
    "TrackingCategory",
    "BrandingTheme",
    "BankAccount",
)

#: Scopes for apps created since March 2026 (granular); older apps use accounting.transactions.
#: Set BILLBRIDGE_XERO_SCOPES (space-separated) to override; offline_access is always added.
DEFAULT_SCOPES = ("accounting.invoices", "accounting.contacts", "accounting.settings.read")
SCOPES_ENV = "BILLBRIDGE_XERO_SCOPES"

# Per tenant, from Xero's documentation: 60 calls a minute, 5 in flight, 5,000 a day (1,000 on
# the free tier since 2026: set BILLBRIDGE_XERO_DAILY_CAP), 10,000 a minute per app; 50 invoices
# per request.
LIMITS = Limits(
    requests_per_minute=60,
    concurrency=5,
    batch_size=50,
    daily_cap=5000,
    app_requests_per_minute=10_000,
    # Status read-back: 50 documents per call, in at most 3 requests (status.py).
    status_batch_size=STATUS_BATCH_SIZE,
    status_requests=STATUS_REQUESTS,
)
DAILY_CAP_ENV = "BILLBRIDGE_XERO_DAILY_CAP"


def limits() -> Limits:
    """Xero's limits, with the daily cap from ``BILLBRIDGE_XERO_DAILY_CAP`` when it is set.

    :raises ValueError: the variable is not a positive whole number (the plugin then fails to
        load, by name, rather than run with a cap nobody asked for).
    """
    configured = os.environ.get(DAILY_CAP_ENV, "").strip()
    if not configured:
        return LIMITS
    if not configured.isdigit() or int(configured) < 1:
        raise ValueError(f"{DAILY_CAP_ENV} must be a positive whole number, got {configured!r}")
    return attrs.evolve(LIMITS, daily_cap=int(configured))


def scopes() -> tuple[str, ...]:
    """The scopes to ask for: configuration, plus ``offline_access`` for a refresh token."""
    configured = os.environ.get(SCOPES_ENV, "").split()
    chosen = tuple(configured) if configured else DEFAULT_SCOPES
    return ("offline_access", *(s for s in chosen if s != "offline_access"))


def oauth_spec() -> OAuthSpec:
    """Xero's OAuth 2.0 endpoints: single-use refresh tokens with a 30-minute grace."""
    return OAuthSpec(
        authorize_url="https://login.xero.com/identity/connect/authorize",
        token_url="https://identity.xero.com/connect/token",
        revoke_url="https://identity.xero.com/connect/revocation",
        scopes=scopes(),
        client_auth="basic",
        access_token_lifetime=1800,
        rotating_refresh_token=True,
        refresh_token_grace=1800,
        refresh_token_lifetime=60 * 24 * 3600,
        revoke_body="form",
    )


@hookimpl
def register_destinations() -> Sequence[Destination]:
    """Xero (one host; Xero's Demo Company stands in for a sandbox)."""
    return [
        Destination(
            key=KEY,
            title="Xero",
            description="Sales invoices and credit notes in a Xero organisation.",
            schema=load_panel_schema("billbridge_xero"),
            external_tables=EXTERNAL_TABLES,
            limits=limits(),
            oauth=oauth_spec(),
            account_table="Contact",
            item_table="Item",
            api_base_url=API_BASE,
            system_name="Xero",
        )
    ]


@hookimpl
def validate_config(destination: str, config: Mapping[str, Any]) -> Sequence[FieldError]:
    """Checks the panel schema cannot express (fallback items allowed are chosen, a tax type
    has one rate, a tracking category is listed once)."""
    errors = custom_field_name_errors(config, "accountManagerEmailCustomField")
    errors.extend(fallback_config_errors(config))
    errors.extend(rate_errors(config, "taxType"))
    seen: dict[str, int] = {}
    for index, category in enumerate(config.get("trackingCategories") or ()):
        name = str(category.get("name", "")).strip().casefold()
        if name in seen:
            errors.append(
                FieldError(
                    f"/trackingCategories/{index}/name",
                    f"tracking category {category.get('name')!r} is already used in line "
                    f"{seen[name] + 1}; Xero takes one option per category",
                )
            )
        seen.setdefault(name, index)
    return errors


# --- authenticate ------------------------------------------------------------------------------


@hookimpl
def authenticate(
    destination: str,
    credential: Credential,
    callback: OAuthCallback,
    http: httpx.Client,
    api_base_url: str,
) -> Sequence[TenantChoice]:
    """The organisations a completed Xero consent connected: one choice per ``tenantId``.

    Xero's tokens name no tenant; ``GET https://api.xero.com/connections`` (the API host, not
    the accounting path) lists the tenants the user connected to the app. Only
    ``ORGANISATION`` tenants take invoices (practices do not).
    """
    url = api_host(api_base_url or API_BASE) + "/connections"
    headers = {
        "Authorization": f"Bearer {callback.access_token.reveal()}",
        "Accept": "application/json",
    }
    try:
        response = http.get(url, headers=headers)
    except httpx.TimeoutException as exc:
        raise TransientError(f"Xero did not answer GET /connections in time ({exc!r})") from exc
    except httpx.TransportError as exc:
        raise TransientError(
            f"the connection to Xero failed on GET /connections ({exc!r})"
        ) from exc
    if response.status_code == 429:
        raise RateLimited(
            "Xero's rate limit was reached listing the connections",
            retry_after=float(response.headers.get("Retry-After") or 60),
            scope=(response.headers.get("X-Rate-Limit-Problem") or "minute").lower(),
        )
    if response.status_code >= 500:
        raise TransientError(f"Xero failed on GET /connections (HTTP {response.status_code})")
    if not response.is_success:
        raise AuthenticationFailed(
            f"Xero refused the new access token on GET /connections (HTTP "
            f"{response.status_code}); connect the credential {credential.name!r} again"
        )
    try:
        connections = loads(response.content)
    except ValueError:
        raise TransientError("Xero answered GET /connections with something not JSON") from None
    choices = [
        TenantChoice(
            tenant_id=str(c["tenantId"]),
            name=c.get("tenantName"),
            data={
                key: c[key]
                for key in ("id", "authEventId", "tenantType", "createdDateUtc", "updatedDateUtc")
                if c.get(key) is not None
            },
        )
        for c in (connections if isinstance(connections, list) else [])
        if isinstance(c, Mapping)
        and c.get("tenantId")
        and str(c.get("tenantType", "ORGANISATION")).upper() == "ORGANISATION"
    ]
    if not choices:
        raise AuthenticationFailed(
            "the Xero consent connected no organisation; connect again and choose an "
            "organisation on Xero's consent page"
        )
    return choices


# --- list_external_entities ----------------------------------------------------------------------


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _plain(value: Any) -> Any:
    """Extra values as plain JSON types (Decimals as text, so no precision is lost)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _matches(search: str | None, *values: Any) -> bool:
    if not search:
        return True
    needle = search.casefold()
    return any(needle in _text(v).casefold() for v in values)


def _contacts(client: XeroClient, search: str | None, cursor: str | None) -> ExternalEntityPage:
    try:
        page = int(cursor) if cursor else 1
    except ValueError:
        raise DestinationValidationError(f"not a Contact page cursor: {cursor!r}") from None
    if page < 1:
        raise DestinationValidationError(f"not a Contact page cursor: {cursor!r}")
    contacts, more = client.list_contacts(page=page, search=search or None)
    items = tuple(
        ExternalEntity(
            id=_text(c.get("ContactID")),
            name=_text(c.get("Name")),
            extra=_plain(
                {
                    k: c[k]
                    for k in (
                        "ContactNumber",
                        "AccountNumber",
                        "EmailAddress",
                        "ContactStatus",
                        "IsCustomer",
                        "DefaultCurrency",
                    )
                    if c.get(k) is not None
                }
            ),
        )
        for c in contacts
        if c.get("ContactID")
    )
    return ExternalEntityPage(items=items, next_cursor=str(page + 1) if more else None)


def _items(client: XeroClient, search: str | None, cursor: str | None) -> ExternalEntityPage:
    entities = []
    for item in client.list_items():
        # Items flagged as not sold cannot go on a sales invoice.
        if not item.get("Code") or item.get("IsSold") is False:
            continue
        if not _matches(search, item.get("Code"), item.get("Name"), item.get("Description")):
            continue
        details = item.get("SalesDetails")
        sales: Mapping[str, Any] = details if isinstance(details, Mapping) else {}
        entities.append(
            ExternalEntity(
                id=_text(item["Code"]),
                name=_text(item.get("Name") or item["Code"]),
                extra=_plain(
                    {
                        "ItemID": item.get("ItemID"),
                        "Description": item.get("Description"),
                        "SalesAccountCode": sales.get("AccountCode"),
                        "SalesTaxType": sales.get("TaxType"),
                        "UnitPrice": sales.get("UnitPrice"),
                    }
                ),
            )
        )
    return ExternalEntityPage(items=tuple(entities))


def _accounts(client: XeroClient, search: str | None, cursor: str | None) -> ExternalEntityPage:
    # Sales lines post to revenue: Xero's Class REVENUE (types REVENUE, SALES, OTHERINCOME).
    accounts = client.list_accounts(where='Class=="REVENUE"')
    entities = tuple(
        ExternalEntity(
            id=_text(a["Code"]),
            name=_text(a.get("Name")),
            extra=_plain(
                {k: a.get(k) for k in ("AccountID", "Type", "Class", "TaxType", "Description")}
            ),
        )
        for a in accounts
        if a.get("Code")
        and a.get("Status", "ACTIVE") == "ACTIVE"
        and _matches(search, a.get("Code"), a.get("Name"))
    )
    return ExternalEntityPage(items=entities)


def _tax_rates(client: XeroClient, search: str | None, cursor: str | None) -> ExternalEntityPage:
    entities = tuple(
        ExternalEntity(
            id=_text(r["TaxType"]),
            name=_text(r.get("Name") or r["TaxType"]),
            extra=_plain({k: r.get(k) for k in ("EffectiveRate", "DisplayTaxRate", "Status")}),
        )
        for r in client.list_tax_rates()
        if r.get("TaxType")
        and r.get("Status", "ACTIVE") == "ACTIVE"
        and r.get("CanApplyToRevenue", True) is not False
        and _matches(search, r.get("TaxType"), r.get("Name"))
    )
    return ExternalEntityPage(items=entities)


def _tracking_categories(
    client: XeroClient, search: str | None, cursor: str | None
) -> ExternalEntityPage:
    # The panel stores tracking categories by *name* (invoice lines name them: Tracking[].Name),
    # so the name is the id; the active options are listed for the option picker.
    entities = []
    for category in client.list_tracking_categories():
        if not category.get("Name") or category.get("Status", "ACTIVE") != "ACTIVE":
            continue
        if not _matches(search, category.get("Name")):
            continue
        options = [
            _text(o.get("Name"))
            for o in category.get("Options") or []
            if isinstance(o, Mapping) and o.get("Status", "ACTIVE") == "ACTIVE"
        ]
        entities.append(
            ExternalEntity(
                id=_text(category["Name"]),
                name=_text(category["Name"]),
                extra={
                    "TrackingCategoryID": category.get("TrackingCategoryID"),
                    "options": options,
                },
            )
        )
    return ExternalEntityPage(items=tuple(entities))


def _branding_themes(
    client: XeroClient, search: str | None, cursor: str | None
) -> ExternalEntityPage:
    entities = tuple(
        ExternalEntity(
            id=_text(t["BrandingThemeID"]),
            name=_text(t.get("Name")),
            extra=_plain({k: t.get(k) for k in ("SortOrder", "Type")}),
        )
        for t in client.list_branding_themes()
        if t.get("BrandingThemeID") and _matches(search, t.get("Name"))
    )
    return ExternalEntityPage(items=entities)


_LISTERS: dict[str, Callable[[XeroClient, str | None, str | None], ExternalEntityPage]] = {
    "Contact": _contacts,
    "Item": _items,
    "Account": _accounts,
    "TaxRate": _tax_rates,
    "TrackingCategory": _tracking_categories,
    "BrandingTheme": _branding_themes,
    "BankAccount": lambda client, search, _cursor: list_bank_accounts(client, search),
}


@hookimpl
def list_external_entities(
    destination: str,
    connection: Connection,
    table: str,
    search: str | None,
    cursor: str | None,
) -> ExternalEntityPage:
    """One page of Contacts, Items, Accounts, TaxRates, TrackingCategories or BrandingThemes.

    Contacts are paged by Xero (100 a page; the cursor is the next page number) and searched
    with Xero's ``searchTerm``. The other lists are not paged by Xero and come back whole, in one
    page, filtered here (case-insensitive contains) by ``search``: Items by code (the id the
    Item mappings hold), Accounts by code (revenue accounts only), TaxRates by ``TaxType``
    (those usable on revenue), TrackingCategories by name (with their options), BrandingThemes
    by id, BankAccounts (for the payment method mapping) by name or code.
    """
    lister = _LISTERS.get(table)
    if lister is None:
        raise DestinationValidationError(
            f"Xero has no list {table!r}; the tables are {', '.join(EXTERNAL_TABLES)}"
        )
    return lister(XeroClient(connection), search, cursor)


# --- send_bill / send_bills ----------------------------------------------------------------------


@hookimpl
def send_bill(
    destination: str,
    connection: Connection,
    bill: Bill,
    account: Account,
    config: Mapping[str, Any],
    mappings: ResolvedMappings,
    previous: LedgerEntry | None,
    idempotency_key: str,
) -> SendResult:
    """Create the Xero invoice (or credit note) for a bill version, or update the earlier one.

    A bill whose total is negative becomes an ``ACCRECCREDIT`` credit note. Creation is a
    ``PUT`` carrying an ``Idempotency-Key`` derived from ``idempotency_key``; a number that
    Xero says is taken is reconciled with the document made for the same bill before. With
    ``previous`` the document ``previous.external_id`` is updated with a ``POST``.
    """
    document = translate_bill(bill, account, config, mappings)
    return send_document(
        XeroClient(connection), document, previous=previous, idempotency_key=idempotency_key
    )


@hookimpl
def preview_bill(
    destination: str,
    bill: Bill,
    account: Account,
    config: Mapping[str, Any],
    mappings: ResolvedMappings,
    previous: LedgerEntry | None,
) -> Mapping[str, Any]:
    """The request ``send_bill`` would send first: ``PUT`` to create or ``POST`` to update.

    Pure (translation only, no network), and built from the same translation and element as
    ``send_bill``, so what people check is what Xero receives.
    """
    return planned_request(translate_bill(bill, account, config, mappings), previous)


@hookimpl
def send_bills(
    destination: str,
    connection: Connection,
    deliveries: Sequence[Delivery],
    idempotency_key: str,
) -> Sequence[DeliveryOutcome]:
    """Deliver many bill versions with Xero's batch writes (50 a request, per-document results).

    A delivery whose bill cannot be translated gets that error as its outcome; the rest are
    grouped into creates and updates of invoices and of credit notes (see
    :mod:`billbridge_xero.send`), each request keyed from ``idempotency_key`` (the core's key of
    this set of deliveries) and its body.
    """
    prepared = prepare_each(
        deliveries,
        lambda delivery: prepare(
            translate_bill(delivery.bill, delivery.account, delivery.config, delivery.mappings),
            delivery,
        ),
    )
    return send_documents(XeroClient(connection), prepared, idempotency_key)


# --- reading statuses back ---------------------------------------------------------------------


@hookimpl
def fetch_invoice_status(
    destination: str,
    connection: Connection,
    documents: Sequence[LedgerEntry],
    config: Mapping[str, Any],
) -> Sequence[InvoiceStatus]:
    """Invoices' and credit notes' Status, amounts, payments and credits, read with
    ``?IDs=`` requests (:mod:`~billbridge_xero.status`)."""
    return fetch_statuses(XeroClient(connection), documents, config)
