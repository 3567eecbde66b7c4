"""billbridge's conformance kit against this plugin, as installed (its entry point).

Run with ``pytest`` after ``pip install -e ".[test]"``: the kit loads the plugin exactly as the
engine does and checks the panel, the hooks and real deliveries to a fake receiver.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from billbridge_webhook.receiver import FakeReceiver

from billbridge.domain.models import Secret
from billbridge.plugin.contract import Connection
from billbridge.testing.conformance import DestinationConformance, Harness, RecordingMiddleware
from billbridge.testing.emulation.faults import FaultMiddleware, FaultPlan
from billbridge.testing.emulation.server import serve

SECRET = "conformance-signing-secret-0123456789"


class TestWebhookConforms(DestinationConformance):
    destination = "webhook"
    valid_configs = [
        {"url": "https://billing.example.com/hooks/billbridge", "secret": SECRET},
        {
            "url": "http://127.0.0.1:8080/bills",
            "secret": SECRET,
            "timeoutSeconds": 5,
            "headers": {"X-Tenant": "acme"},
            "includeLineItems": False,
        },
    ]
    invalid_configs = [
        ({"secret": SECRET}, "/url"),
        ({"url": "http://billing.example.com/hooks", "secret": SECRET}, "/url"),
        ({"url": "https://me:pw@billing.example.com/hooks", "secret": SECRET}, "/url"),
        ({"url": "https://billing.example.com/hooks", "secret": "too short"}, "/secret"),
        (
            {"url": "https://billing.example.com/hooks", "secret": SECRET, "timeoutSeconds": 0},
            "/timeoutSeconds",
        ),
        (
            {
                "url": "https://billing.example.com/hooks",
                "secret": SECRET,
                "headers": {"X-Billbridge-Signature": "forged"},
            },
            "/headers/X-Billbridge-Signature",
        ),
    ]

    @pytest.fixture
    def harness(self) -> Iterator[Harness]:
        receiver = FakeReceiver(SECRET)
        # Faults let the kit lose an answer after the receiver stored the invoice; the
        # recorder lets it compare preview_bill with what send_bill really sent.
        plan = FaultPlan()
        recorder = RecordingMiddleware(FaultMiddleware(receiver.app, plan))
        with serve(recorder) as server, httpx.Client(timeout=5) as http:
            yield Harness(
                # No OAuth: the core connects a webhook integration without a token, as tenant
                # the integration itself.
                connection=Connection(
                    destination="webhook",
                    tenant_id="integration-1",
                    access_token=Secret(""),
                    http=http,
                    api_base_url="",
                ),
                documents=lambda: receiver.invoices,
                config={"url": f"{server.url}/bills", "secret": SECRET},
                requests=lambda: recorder.requests,
                lose_next_response=lambda: plan.script("lost"),
            )
