"""billbridge's conformance kit against this plugin, as installed (its entry point).

Run with ``pytest`` after ``pip install -e ".[test]"``. The harness serves the fake Tallybook
on loopback, registers an app with its OAuth server and takes a token as the plugin's OAuthSpec
declares (client credentials in the form body), so a declaration that disagreed with Tallybook
would fail here. With ``oauth_app`` the kit also checks the consent, code exchange and refresh
the core itself makes.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from billbridge_tallybook.fake import FakeTallybook
from billbridge_tallybook.hooks import KEY, OAUTH

from billbridge.domain.models import Secret
from billbridge.plugin.contract import Connection, ResolvedMappings
from billbridge.testing.conformance import (
    SAMPLE_ACCOUNT_ID,
    SAMPLE_PRODUCT_IDS,
    DestinationConformance,
    Harness,
    OAuthTestApp,
    RecordingMiddleware,
)
from billbridge.testing.emulation.faults import FaultMiddleware, FaultPlan
from billbridge.testing.emulation.server import serve

CLIENT_ID = "conformance-app"
CLIENT_SECRET = "conformance-app-secret"


class TestTallybookConforms(DestinationConformance):
    destination = KEY
    valid_configs = [
        {},
        {
            "lineName": "DESCRIPTION",
            "notes": "Thank you.\nPayable in 30 days.",
            "sendByEmail": True,
        },
        {"defaultItem": "1"},
    ]
    invalid_configs = [
        ({"lineName": "SKU"}, "/lineName"),
        ({"notes": "1\n2\n3\n4\n5\n6"}, "/notes"),
        ({"colour": "blue"}, "/colour"),
    ]

    @pytest.fixture
    def harness(self) -> Iterator[Harness]:
        tallybook = FakeTallybook()
        tallybook.oauth.add_client(CLIENT_ID, CLIENT_SECRET)
        account = tallybook.account()
        # Faults on invoice writes only, so a scripted lost answer hits a create or update.
        plan = FaultPlan(methods=("POST", "PUT"), path_prefixes=("/v1/accounts/",))
        recorder = RecordingMiddleware(FaultMiddleware(tallybook.app, plan))
        with serve(recorder) as server, httpx.Client(timeout=5) as http:
            urls = tallybook.endpoints(server.url)
            app = OAuthTestApp(
                authorize_url=urls["authorize_url"],
                token_url=urls["token_url"],
                revoke_url=urls["revoke_url"],
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
            )
            tokens = app.obtain_tokens(http, OAUTH)
            yield Harness(
                connection=Connection(
                    destination=KEY,
                    tenant_id=account.id,
                    access_token=Secret(tokens.access_token),
                    http=http,
                    api_base_url=urls["api_base_url"],
                ),
                documents=lambda: account.invoices,
                mappings=ResolvedMappings(
                    {
                        ("Account", SAMPLE_ACCOUNT_ID, "Client"): account.client_id(
                            "Conformance Customer Ltd"
                        ),
                        ("Product", SAMPLE_PRODUCT_IDS["platform"], "Item"): account.item_id(
                            "Platform"
                        ),
                        ("Product", SAMPLE_PRODUCT_IDS["api"], "Item"): account.item_id("API"),
                    }
                ),
                requests=lambda: recorder.requests,
                lose_next_response=lambda: plan.script("lost"),
                oauth_callback=tokens.oauth_callback(),
                oauth_app=app,
            )
