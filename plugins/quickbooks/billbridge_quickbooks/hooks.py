"""billbridge hooks for QuickBooks Online (destinations ``quickbooks`` and ``quickbooks_sandbox``).

Hooks stay thin: they declare the destinations and delegate. Both destinations share one panel
and one behaviour; only the API host differs (the OAuth endpoints are the same for both).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from billbridge import hookimpl
from billbridge.contract import Destination, Limits, OAuthSpec, load_panel_schema
from billbridge.errors import FieldError
from billbridge.schemas import custom_field_name_errors

PRODUCTION = "quickbooks"
SANDBOX = "quickbooks_sandbox"
DESTINATIONS = (PRODUCTION, SANDBOX)

API_HOSTS = {
    PRODUCTION: "https://quickbooks.api.intuit.com",
    SANDBOX: "https://sandbox-quickbooks.api.intuit.com",
}

EXTERNAL_TABLES = ("Customer", "Item", "Account", "TaxCode", "Term")

# Per realm, from Intuit's documentation: 500 requests/minute, 10/second, 40 batch requests a
# minute with at most 30 operations each. Intuit documents no concurrency cap beyond 10/second.
LIMITS = Limits(
    requests_per_minute=500,
    requests_per_second=10,
    concurrency=10,
    batch_size=30,
    batch_requests_per_minute=40,
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
    """Checks the panel schema cannot express: the custom field is a name, not an address."""
    errors = custom_field_name_errors(config, "accountManagerEmailCustomField")
    bcc = config.get("bccInvoiceEmail")
    if isinstance(bcc, str) and len(bcc) > 100:
        # QuickBooks stores BillEmailBcc.Address in a 100-character field.
        errors.append(FieldError("/bccInvoiceEmail", "is longer than QuickBooks allows (100)"))
    return errors
