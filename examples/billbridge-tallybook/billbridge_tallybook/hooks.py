"""billbridge hooks for Tallybook (key ``tallybook``): thin, they delegate.

:mod:`~billbridge_tallybook.translate` turns a bill into an invoice (pure);
:mod:`~billbridge_tallybook.client` talks to Tallybook and maps its answers to billbridge's
exceptions. Each hook names only the arguments it uses; pluggy passes those, by name.

OAuth: the core runs the consent, the code exchange and every refresh with what :data:`OAUTH`
declares. Tallybook wants the app's client id and secret in the token request's form body
(``client_auth="body"``), gives 12-hour access tokens and rotates refresh tokens. Each consent
connects the user's Tallybook accounts; ``authenticate`` names them and the user picks one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from billbridge import hookimpl
from billbridge.domain.models import Account, Bill, LedgerEntry
from billbridge.errors import AuthenticationFailed, DestinationValidationError, FieldError
from billbridge.plugin.contract import (
    Connection,
    Destination,
    ExternalEntity,
    ExternalEntityPage,
    Limits,
    OAuthCallback,
    OAuthSpec,
    ResolvedMappings,
    SendResult,
    TenantChoice,
    load_panel_schema,
)
from billbridge_tallybook.client import TallybookClient
from billbridge_tallybook.translate import CLIENT_TABLE, ITEM_TABLE, invoice_body

__all__ = [
    "API_BASE_URL",
    "KEY",
    "LIMITS",
    "OAUTH",
    "authenticate",
    "list_external_entities",
    "preview_bill",
    "register_destinations",
    "send_bill",
    "validate_config",
]

KEY = "tallybook"

#: The real API's root; tests and demos point the core elsewhere with
#: BILLBRIDGE_TALLYBOOK_API_BASE_URL (or DestinationSettings.api_base_url).
API_BASE_URL = "https://api.tallybook.example/v1"

#: How the core connects to Tallybook (overridable with BILLBRIDGE_TALLYBOOK_AUTHORIZE_URL,
#: _TOKEN_URL and _REVOKE_URL).
OAUTH = OAuthSpec(
    authorize_url="https://auth.tallybook.example/oauth/authorize",
    token_url="https://api.tallybook.example/oauth/token",
    revoke_url="https://api.tallybook.example/oauth/revoke",
    scopes=("user:profile:read", "user:clients:read", "user:invoices:write"),
    # Tallybook's token endpoint takes client_id and client_secret in the form body only.
    client_auth="body",
    access_token_lifetime=12 * 3600,
    rotating_refresh_token=True,
)

#: Tallybook's documented limits per account.
LIMITS = Limits(requests_per_minute=120, concurrency=2)

_MAX_NOTE_LINES = 5


@hookimpl
def register_destinations() -> Sequence[Destination]:
    """One destination: invoices in a Tallybook account."""
    return [
        Destination(
            key=KEY,
            title="Tallybook",
            description="Invoices in a Tallybook account, for its clients.",
            schema=load_panel_schema("billbridge_tallybook"),
            external_tables=(CLIENT_TABLE, ITEM_TABLE),
            account_table=CLIENT_TABLE,
            item_table=ITEM_TABLE,
            limits=LIMITS,
            oauth=OAUTH,
            api_base_url=API_BASE_URL,
            system_name="Tallybook",
        )
    ]


@hookimpl
def authenticate(
    callback: OAuthCallback, http: httpx.Client, api_base_url: str
) -> Sequence[TenantChoice]:
    """The Tallybook accounts the new token reaches (``GET /me``)."""
    me = TallybookClient(http, api_base_url, callback.access_token, None).me()
    accounts = me.get("accounts") or []
    if not accounts:
        raise AuthenticationFailed("the Tallybook user has no account to send invoices to")
    return [TenantChoice(str(a["id"]), a.get("name")) for a in accounts]


@hookimpl
def list_external_entities(
    connection: Connection, table: str, search: str | None, cursor: str | None
) -> ExternalEntityPage:
    """Clients (by organisation name) or items (by name), a page at a time."""
    if table not in (CLIENT_TABLE, ITEM_TABLE):
        raise DestinationValidationError(
            f"Tallybook cannot list {table!r}; it lists {CLIENT_TABLE} and {ITEM_TABLE}"
        )
    page = int(cursor) if cursor and cursor.isdigit() else 1
    client = _client(connection)
    answer = client.list(table, search, page)
    key = "clients" if table == CLIENT_TABLE else "items"
    items = tuple(_entity(table, row) for row in answer.get(key) or [])
    more = page < int(answer.get("pages") or 1)
    return ExternalEntityPage(items=items, next_cursor=str(page + 1) if more else None)


@hookimpl
def validate_config(config: Mapping[str, Any]) -> Sequence[FieldError]:
    """What the panel cannot say: Tallybook prints at most five lines of notes."""
    notes = str(config.get("notes") or "")
    if len(notes.splitlines()) > _MAX_NOTE_LINES:
        return [FieldError("/notes", f"Tallybook prints at most {_MAX_NOTE_LINES} lines")]
    return []


@hookimpl
def send_bill(
    connection: Connection,
    bill: Bill,
    account: Account,
    config: Mapping[str, Any],
    mappings: ResolvedMappings,
    previous: LedgerEntry | None,
    idempotency_key: str,
) -> SendResult:
    """Create the invoice, or (with ``previous``) update the one an earlier version made."""
    body = invoice_body(bill, account, config, mappings)
    client = _client(connection)
    if previous is None:
        invoice = client.create_invoice(body, idempotency_key)
    else:
        invoice = client.update_invoice(previous.external_id, body, idempotency_key)
    links = invoice.get("links") or {}
    return SendResult(
        external_id=str(invoice["id"]),
        number=invoice.get("invoice_number"),
        url=links.get("client_view"),
        created=previous is None,
    )


@hookimpl
def preview_bill(
    bill: Bill,
    account: Account,
    config: Mapping[str, Any],
    mappings: ResolvedMappings,
    previous: LedgerEntry | None,
) -> Mapping[str, Any]:
    """The request ``send_bill`` would send (``{account}`` is the credential's account)."""
    body = invoice_body(bill, account, config, mappings)
    path = "/accounts/{account}/invoices"
    if previous is None:
        return {"method": "POST", "path": path, "body": body}
    return {"method": "PUT", "path": f"{path}/{previous.external_id}", "body": body}


def _client(connection: Connection) -> TallybookClient:
    return TallybookClient(
        connection.http, connection.api_base_url, connection.access_token, connection.tenant_id
    )


def _entity(table: str, row: Mapping[str, Any]) -> ExternalEntity:
    if table == CLIENT_TABLE:
        extra = {k: row[k] for k in ("email", "currency_code") if row.get(k)}
        return ExternalEntity(id=str(row["id"]), name=str(row["organization"]), extra=extra)
    return ExternalEntity(id=str(row["id"]), name=str(row["name"]))
