"""billbridge hooks for QuickBooks Online (destinations ``quickbooks`` and ``quickbooks_sandbox``).

Hooks stay thin: they declare the destinations and delegate to
:mod:`~billbridge_quickbooks.translate` (bill → payload, pure),
:mod:`~billbridge_quickbooks.delivery` (create, update, reconcile, batch) and
:mod:`~billbridge_quickbooks.client` (transport and error mapping). Both destinations share one
panel and one behaviour; only the API host differs (the OAuth endpoints are the same for both).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import httpx

from billbridge import hookimpl
from billbridge.domain.lines import fallback_config_errors
from billbridge.domain.models import Account, Bill, Credential, LedgerEntry
from billbridge.domain.schemas import custom_field_name_errors
from billbridge.domain.tax import rate_errors
from billbridge.errors import (
    AuthenticationFailed,
    DestinationValidationError,
    FieldError,
    RateLimited,
    TokenExpired,
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
from billbridge_quickbooks.client import QuickBooksClient, quote
from billbridge_quickbooks.delivery import (
    planned_request,
    prepare,
    send_document,
    send_documents,
)
from billbridge_quickbooks.status import BATCH_SIZE as STATUS_BATCH_SIZE
from billbridge_quickbooks.status import REQUESTS as STATUS_REQUESTS
from billbridge_quickbooks.status import fetch_statuses
from billbridge_quickbooks.translate import translate_bill

PRODUCTION = "quickbooks"
SANDBOX = "quickbooks_sandbox"
DESTINATIONS = (PRODUCTION, SANDBOX)

API_HOSTS = {
    PRODUCTION: "https://quickbooks.api.intuit.com",
    SANDBOX: "https://sandbox-quickbooks.api.intuit.com",
}

EXTERNAL_TABLES = ("Customer", "Item", "Account", "TaxCode", "Term", "PaymentMethod")

# Per realm, from Intuit's documentation: 500 requests/minute, 10/second, 40 batch requests a
# minute with at most 30 operations each. Intuit documents no concurrency cap beyond 10/second.
LIMITS = Limits(
    requests_per_minute=500,
    requests_per_second=10,
    concurrency=10,
    batch_size=30,
    batch_requests_per_minute=40,
    # Status read-back: 100 documents per call, in at most 3 queries (status.py).
    status_batch_size=STATUS_BATCH_SIZE,
    status_requests=STATUS_REQUESTS,
)

OAUTH = OAuthSpec(
    authorize_url="https://appcenter.intuit.com/connect/oauth2",
    token_url="https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
    revoke_url="https://developer.api.intuit.com/v2/oauth2/tokens/revoke",
    scopes=("com.intuit.quickbooks.accounting",),
    client_auth="basic",
    access_token_lifetime=3600,
    rotating_refresh_token=True,
    refresh_token_lifetime=8_726_400,
    # Since 2025 refresh tokens have a 5-year hard cap that Intuit reports only on request.
    token_request_headers={"x-include-refresh-token-hard-expires-in": "true"},
    revoke_body="json",
)


@hookimpl
def register_destinations() -> Sequence[Destination]:
    """QuickBooks Online, production and sandbox."""
    schema = load_panel_schema("billbridge_quickbooks")
    common: dict[str, Any] = {
        "schema": schema,
        "external_tables": EXTERNAL_TABLES,
        "limits": LIMITS,
        "oauth": OAUTH,
        "account_table": "Customer",
        "item_table": "Item",
        "system_name": "QuickBooks Online",
    }
    return [
        Destination(
            key=PRODUCTION,
            title="QuickBooks Online",
            description="Invoices and credit memos in a QuickBooks Online company.",
            api_base_url=API_HOSTS[PRODUCTION],
            **common,
        ),
        Destination(
            key=SANDBOX,
            title="QuickBooks Online (sandbox)",
            description="The same as QuickBooks Online, against an Intuit sandbox company.",
            api_base_url=API_HOSTS[SANDBOX],
            **common,
        ),
    ]


@hookimpl
def validate_config(destination: str, config: Mapping[str, Any]) -> Sequence[FieldError]:
    """Checks the panel schema cannot express: the custom field is a name, not an address;
    fallback items allowed are fallback items chosen; a tax code has one rate."""
    errors = custom_field_name_errors(config, "accountManagerEmailCustomField")
    errors.extend(fallback_config_errors(config))
    errors.extend(rate_errors(config, "taxCode"))
    bcc = config.get("bccInvoiceEmail")
    if isinstance(bcc, str) and len(bcc) > 100:
        # QuickBooks stores BillEmailBcc.Address in a 100-character field.
        errors.append(FieldError("/bccInvoiceEmail", "is longer than QuickBooks allows (100)"))
    return errors


# --- connecting --------------------------------------------------------------------------------


@hookimpl
def authenticate(
    destination: str,
    credential: Credential,
    callback: OAuthCallback,
    http: httpx.Client,
    api_base_url: str,
) -> Sequence[TenantChoice]:
    """The company the consent was for: the callback's ``realmId``, named from CompanyInfo.

    QuickBooks grants one company per consent and says which in the redirect's ``realmId``
    (REFERENCE.md). The name is read from ``/companyinfo/{realmId}`` with the new token; when
    QuickBooks is briefly unavailable (5xx, timeout, throttled) the realm is returned without a
    name rather than failing a consent the user has just given.
    """
    realm = (callback.params.get("realmId") or "").strip()
    if not realm:
        raise AuthenticationFailed(
            "QuickBooks' consent callback has no realmId: the user did not pick a company"
        )
    connection = Connection(
        destination=destination,
        tenant_id=realm,
        access_token=callback.access_token,
        http=http,
        api_base_url=api_base_url,
        credential_id=credential.id,
    )
    try:
        info = QuickBooksClient(connection).company_info()
    except TokenExpired as exc:
        # A token minted seconds ago that QuickBooks refuses will not get better by refreshing.
        raise AuthenticationFailed(
            f"QuickBooks refused the new access token for company {realm}", detail=exc.detail
        ) from None
    except (TransientError, RateLimited):
        return [TenantChoice(tenant_id=realm, name=None, data={"realmId": realm})]
    name = info.get("CompanyName") or info.get("LegalName")
    data = {"realmId": realm}
    if info.get("Country"):
        data["country"] = str(info["Country"])
    return [TenantChoice(tenant_id=realm, name=str(name) if name else None, data=data)]


# --- pickers ------------------------------------------------------------------------------------

#: Items per page of ``list_external_entities``.
LIST_PAGE_SIZE = 100


@attrs.frozen
class _Listing:
    entity: str
    name_field: str
    extra_fields: tuple[str, ...]


_LISTINGS = {
    "Customer": _Listing("Customer", "DisplayName", ("CompanyName", "CurrencyRef")),
    "Item": _Listing("Item", "Name", ("Type", "FullyQualifiedName")),
    "Account": _Listing("Account", "Name", ("AccountType", "AcctNum")),
    "TaxCode": _Listing("TaxCode", "Name", ("Description",)),
    "Term": _Listing("Term", "Name", ("DueDays",)),
    "PaymentMethod": _Listing("PaymentMethod", "Name", ("Type",)),
}


def _plain(value: Any) -> Any:
    # References are {"value", "name"}: the picker wants the id.
    if isinstance(value, Mapping):
        return value.get("value", dict(value))
    return value


@hookimpl
def list_external_entities(
    destination: str,
    connection: Connection,
    table: str,
    search: str | None,
    cursor: str | None,
) -> ExternalEntityPage:
    """One page of active customers, items, accounts, tax codes, terms or payment methods, by
    name.

    ``search`` becomes ``LIKE '%text%'`` on the name (QuickBooks compares without regard to
    case); ``cursor`` is the next 1-based ``STARTPOSITION`` as text. Only active rows are
    listed: QuickBooks refuses an inactive customer or item on an invoice (code 610).
    """
    listing = _LISTINGS.get(table)
    if listing is None:
        raise DestinationValidationError(
            f"QuickBooks cannot list {table!r}; it lists {', '.join(_LISTINGS)}"
        )
    start = 1
    if cursor:
        if not cursor.isdigit() or int(cursor) < 1:
            raise DestinationValidationError(f"not a QuickBooks list cursor: {cursor!r}")
        start = int(cursor)
    conditions = ["Active = true"]
    if search and search.strip():
        conditions.append(f"{listing.name_field} LIKE {quote('%' + search.strip() + '%')}")
    statement = (
        f"select * from {listing.entity} where {' and '.join(conditions)} "  # noqa: S608
        f"orderby {listing.name_field}"
    )
    # One more than a page tells whether another page follows without an empty last call.
    rows = QuickBooksClient(connection).query_page(
        statement, start=start, max_results=LIST_PAGE_SIZE + 1
    )
    items = tuple(
        ExternalEntity(
            id=str(row.get("Id")),
            name=str(row.get(listing.name_field) or row.get("Name") or row.get("Id")),
            extra={f: _plain(row[f]) for f in listing.extra_fields if row.get(f) is not None},
        )
        for row in rows[:LIST_PAGE_SIZE]
    )
    more = len(rows) > LIST_PAGE_SIZE
    return ExternalEntityPage(
        items=items, next_cursor=str(start + LIST_PAGE_SIZE) if more else None
    )


# --- delivering ---------------------------------------------------------------------------------


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
    """Create the bill's Invoice (CreditMemo when its total is negative), or update the one
    ``previous`` recorded; ``idempotency_key`` is sent as QuickBooks' ``requestid``."""
    document = translate_bill(bill, account, config, mappings, sandbox=destination == SANDBOX)
    return send_document(
        QuickBooksClient(connection),
        document,
        previous=previous,
        idempotency_key=idempotency_key,
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
    """The request ``send_bill`` would send first (create, or full update of ``previous``).

    Pure: translation only, no network; the same translation and request shape as
    ``send_bill``, so what people check is what QuickBooks receives.
    """
    document = translate_bill(bill, account, config, mappings, sandbox=destination == SANDBOX)
    return planned_request(document, previous)


@hookimpl
def send_bills(
    destination: str,
    connection: Connection,
    deliveries: Sequence[Delivery],
    idempotency_key: str,
) -> Sequence[DeliveryOutcome]:
    """Deliver many bills through QuickBooks' ``/batch`` (30 per request), outcomes in order.

    ``idempotency_key`` (the core's key of this set of deliveries) becomes each request's
    ``requestid``, bound to the request's body. A bill that cannot be translated fails alone;
    a first request refused as a whole (401, 429) is raised.
    """
    client = QuickBooksClient(connection)
    sandbox = destination == SANDBOX
    prepared = prepare_each(
        deliveries,
        lambda delivery: prepare(
            client,
            translate_bill(
                delivery.bill, delivery.account, delivery.config, delivery.mappings, sandbox=sandbox
            ),
            delivery.previous,
            delivery.idempotency_key,
        ),
    )
    return send_documents(client, prepared, idempotency_key)


# --- reading statuses back ---------------------------------------------------------------------


@hookimpl
def fetch_invoice_status(
    destination: str,
    connection: Connection,
    documents: Sequence[LedgerEntry],
    config: Mapping[str, Any],
) -> Sequence[InvoiceStatus]:
    """Invoices' and credit memos' balances, payments and credits, voids and deletes, read
    with ``Id in (…)`` queries (:mod:`~billbridge_quickbooks.status`)."""
    return fetch_statuses(QuickBooksClient(connection), documents, config)
