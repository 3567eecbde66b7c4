"""The bundled QuickBooks and Xero plugins pass the conformance kit, against their emulators.

The plugins are loaded through their entry points, as the engine and a third party's plugin
are. Each harness starts a fresh emulator, takes a token through its OAuth consent, and maps
the kit's sample account and products to records the emulator is seeded with.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from billbridge_quickbooks.emulator import QuickBooksEmulator
from billbridge_xero.emulator import XeroEmulator

from billbridge.domain.models import Secret
from billbridge.plugin.contract import Connection, OAuthSpec, ResolvedMappings
from billbridge.plugin.manager import load_plugins
from billbridge.testing.conformance import (
    SAMPLE_ACCOUNT_ID,
    SAMPLE_PRODUCT_IDS,
    DestinationConformance,
    Harness,
    OAuthTestApp,
    RecordingMiddleware,
    sample_account,
    sample_bill,
)
from billbridge.testing.emulation.clock import ManualClock
from billbridge.testing.emulation.faults import FaultPlan
from billbridge.testing.emulation.server import serve

CLIENT_ID = "conformance-app"
CLIENT_SECRET = "conformance-secret"
#: Deliveries happen "now" on the emulators' clocks: after the sample bills' dates.
NOW = datetime(2026, 11, 2, tzinfo=UTC).timestamp()


def declared_oauth(key: str) -> OAuthSpec:
    """What the installed plugin declares: the kit's tokens are obtained exactly that way."""
    spec = load_plugins(blocked=()).destination(key).oauth
    assert spec is not None
    return spec


def oauth_app(urls: dict[str, str]) -> OAuthTestApp:
    """The emulator's OAuth endpoints and the app registered there."""
    return OAuthTestApp(
        authorize_url=urls["authorize_url"],
        token_url=urls["token_url"],
        revoke_url=urls["revoke_url"],
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    )


class TestQuickBooksConforms(DestinationConformance):
    destination = "quickbooks"
    valid_configs = [
        {},
        {
            "splitUsageLineItems": "USAGE_BAND",
            "sortLineItemsBy": "SUBTOTAL",
            "accountManagerEmailCustomField": "accountManagerEmail",
            "bccInvoiceEmail": "accounts@example.com",
        },
    ]
    invalid_configs = [
        ({"accountManagerEmailCustomField": "sam@example.com"}, "/accountManagerEmailCustomField"),
        ({"sortLineItemsBy": "PRICE"}, "/sortLineItemsBy"),
        ({"bccInvoiceEmail": "a" * 95 + "@x.example"}, "/bccInvoiceEmail"),
        ({"noSuchOption": True}, "/noSuchOption"),
    ]

    @pytest.fixture
    def harness(self) -> Iterator[Harness]:
        # Faults only on writes, so a scripted lost answer hits the create, not a read.
        plan = FaultPlan(methods=("POST",), path_prefixes=("/v3/company/",))
        emulator = QuickBooksEmulator(ManualClock(start=NOW), faults=plan, limits=False)
        company = emulator.add_company(name="Conformance Company")
        emulator.oauth.add_client(CLIENT_ID, CLIENT_SECRET)
        recorder = RecordingMiddleware(emulator.app)
        with serve(recorder) as server, httpx.Client(timeout=5) as http:
            urls = emulator.endpoints(server.url)
            app = oauth_app(urls)
            tokens = app.obtain_tokens(http, declared_oauth(self.destination))
            token = Secret(tokens.access_token)
            yield Harness(
                connection=Connection(
                    destination=self.destination,
                    tenant_id=company.realm_id,
                    access_token=token,
                    http=http,
                    api_base_url=urls["api_base_url"],
                ),
                # Invoices only: the sample bills are positive (credit memos number separately).
                documents=lambda: company.invoices,
                mappings=ResolvedMappings(
                    {
                        ("Account", SAMPLE_ACCOUNT_ID, "Customer"): company.id_of(
                            "Customer", "Globex Corporation"
                        ),
                        ("Product", SAMPLE_PRODUCT_IDS["platform"], "Item"): company.id_of(
                            "Item", "Platform"
                        ),
                        ("Product", SAMPLE_PRODUCT_IDS["api"], "Item"): company.id_of(
                            "Item", "API Calls"
                        ),
                    }
                ),
                requests=lambda: recorder.requests,
                lose_next_response=lambda: plan.script("lost"),
                oauth_callback=tokens.oauth_callback(),
                oauth_app=app,
                pay=lambda invoice_id: emulator.mark_paid(company.realm_id, invoice_id),
                void=lambda invoice_id: emulator.void(company.realm_id, invoice_id),
            )


class TestXeroConforms(DestinationConformance):
    destination = "xero"
    valid_configs = [
        {},
        {
            "invoiceStatus": "AUTHORISED",
            "lineAmountTypes": "Exclusive",
            "defaultAccountCode": "200",
            "trackingCategories": [{"name": "Region", "option": "North"}],
        },
    ]
    invalid_configs = [
        ({"invoiceStatus": "PAID"}, "/invoiceStatus"),
        ({"accountManagerEmailCustomField": "sam@example.com"}, "/accountManagerEmailCustomField"),
        (
            {
                "trackingCategories": [
                    {"name": "Region", "option": "North"},
                    {"name": "region", "option": "South"},
                ]
            },
            "/trackingCategories/1/name",
        ),
    ]

    @pytest.fixture
    def harness(self) -> Iterator[Harness]:
        plan = FaultPlan(methods=("PUT", "POST"))
        emulator = XeroEmulator(ManualClock(start=NOW), faults=plan, limits=False)
        org = emulator.add_organisation("Conformance Ltd", base_currency="GBP")
        emulator.oauth.add_client(CLIENT_ID, CLIENT_SECRET)
        recorder = RecordingMiddleware(emulator.app)
        with serve(recorder) as server, httpx.Client(timeout=5) as http:
            urls = emulator.endpoints(server.url)
            app = oauth_app(urls)
            tokens = app.obtain_tokens(http, declared_oauth(self.destination))
            token = Secret(tokens.access_token)
            yield Harness(
                connection=Connection(
                    destination=self.destination,
                    tenant_id=org.tenant_id,
                    access_token=token,
                    http=http,
                    api_base_url=urls["api_base_url"],
                ),
                documents=lambda: {
                    str(d["InvoiceID"]): d for d in emulator.documents(org.tenant_id)
                },
                account=sample_account(currency="GBP"),
                bill=functools.partial(sample_bill, currency="GBP"),
                mappings=ResolvedMappings(
                    {
                        ("Account", SAMPLE_ACCOUNT_ID, "Contact"): org.contact_id("Acme Ltd"),
                        ("Product", SAMPLE_PRODUCT_IDS["platform"], "Item"): "PLATFORM",
                        ("Product", SAMPLE_PRODUCT_IDS["api"], "Item"): "API-CALLS",
                    }
                ),
                requests=lambda: recorder.requests,
                lose_next_response=lambda: plan.script("lost"),
                oauth_callback=tokens.oauth_callback(),
                oauth_app=app,
                pay=lambda invoice_id: emulator.mark_paid(org.tenant_id, invoice_id),
                void=lambda invoice_id: emulator.void(org.tenant_id, invoice_id),
            )
