"""billbridge hooks for Xero (destination ``xero``).

Hooks stay thin: they declare the destination and delegate.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from billbridge import hookimpl
from billbridge.contract import Destination, Limits, OAuthSpec, load_panel_schema
from billbridge.errors import FieldError
from billbridge.schemas import custom_field_name_errors

KEY = "xero"
API_BASE = "https://api.xero.com/api.xro/2.0"
EXTERNAL_TABLES = ("Contact", "Item", "Account", "TaxRate", "TrackingCategory", "BrandingTheme")

#: Scopes for apps created since March 2026 (granular); older apps use accounting.transactions.
#: Set BILLBRIDGE_XERO_SCOPES (space-separated) to override; offline_access is always added.
DEFAULT_SCOPES = ("accounting.invoices", "accounting.contacts", "accounting.settings.read")
SCOPES_ENV = "BILLBRIDGE_XERO_SCOPES"

# Per tenant, from Xero's documentation: 60 calls a minute, 5 in flight, 5,000 a day (1,000 on
# the free tier: override per deployment), 10,000 a minute per app; 50 invoices per request.
LIMITS = Limits(
    requests_per_minute=60,
    concurrency=5,
    batch_size=50,
    daily_cap=5000,
    app_requests_per_minute=10_000,
)


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
            limits=LIMITS,
            oauth=oauth_spec(),
            account_table="Contact",
            item_table="Item",
            api_base_url=API_BASE,
            system_name="Xero",
        )
    ]


@hookimpl
def validate_config(destination: str, config: Mapping[str, Any]) -> Sequence[FieldError]:
    """Checks the panel schema cannot express."""
    errors = custom_field_name_errors(config, "accountManagerEmailCustomField")
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
