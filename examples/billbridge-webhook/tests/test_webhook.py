"""The webhook plugin's own behaviour: signatures, the body, and every receiver answer.

Hooks are called through a plugin registry, by keyword, as billbridge calls them, against the
fake receiver over real HTTP.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs
import httpx
import pytest
from billbridge_webhook import InvalidSignature, sign, verify
from billbridge_webhook.hooks import KEY
from billbridge_webhook.receiver import FakeReceiver

from billbridge.domain.models import LedgerEntry, Secret
from billbridge.errors import (
    AccountingPeriodClosed,
    DestinationError,
    DestinationValidationError,
    InvoiceAlreadyPaid,
    RateLimited,
    TransientError,
)
from billbridge.plugin.contract import Connection, ResolvedMappings, SendResult
from billbridge.plugin.manager import PluginRegistry, load_plugins
from billbridge.testing.conformance import sample_account, sample_bill
from billbridge.testing.emulation.faults import FaultMiddleware, FaultPlan
from billbridge.testing.emulation.server import RunningServer, serve

SECRET = "webhook-test-secret-0123456789"


@attrs.define
class World:
    receiver: FakeReceiver
    server: RunningServer
    plan: FaultPlan
    http: httpx.Client
    registry: PluginRegistry

    @property
    def url(self) -> str:
        return f"{self.server.url}/bills"

    def send(
        self,
        version: int = 1,
        *,
        previous: SendResult | None = None,
        key: str = "key-1",
        **config: Any,
    ) -> SendResult:
        bill = sample_bill(version=version)
        ledger = None
        if previous is not None:
            ledger = LedgerEntry(
                integration_id="integration-1",
                bill_id=bill.id,
                bill_version=version - 1,
                external_id=previous.external_id,
                updated_at=datetime.now(UTC),
            )
        result: SendResult = self.registry.call(
            "send_bill",
            KEY,
            connection=Connection(
                destination=KEY,
                tenant_id="integration-1",
                access_token=Secret(""),
                http=self.http,
                api_base_url="",
            ),
            bill=bill,
            account=sample_account(),
            config={"url": self.url, "secret": SECRET, **config},
            mappings=ResolvedMappings(),
            previous=ledger,
            idempotency_key=key,
        )
        return result


@pytest.fixture
def world() -> Iterator[World]:
    receiver = FakeReceiver(SECRET)
    plan = FaultPlan(hang_seconds=0.6)
    with serve(FaultMiddleware(receiver.app, plan)) as server, httpx.Client(timeout=5) as http:
        # The plugin as billbridge finds it: through its entry point.
        yield World(receiver, server, plan, http, load_plugins(blocked=()))


# --- signatures ----------------------------------------------------------------------------------


def test_a_signature_verifies_with_its_secret_only() -> None:
    body = b'{"event":"invoice.created"}'
    now = 1_800_000_000
    signature = sign(SECRET, now, body)
    assert signature.startswith("sha256=")
    assert len(signature) == len("sha256=") + 64
    verify(SECRET, str(now), body, signature, now=now + 299)
    verify(["new-secret-0123456789", SECRET], now, body, signature, now=now)  # rotation
    refusals = {
        "does not match": (SECRET + "x", now, body, signature, now),
        "does not match ": (SECRET, now, body + b" ", signature, now),
        "replayed": (SECRET, now, body, signature, now + 301),
        "late or": (SECRET, now, body, signature, now - 301),
        "not a number": (SECRET, "yesterday", body, signature, now),
        "must start with": (SECRET, now, body, signature.removeprefix("sha256="), now),
    }
    for reason, (secret, timestamp, data, sig, at) in refusals.items():
        with pytest.raises(InvalidSignature, match=reason.strip()):
            verify(secret, timestamp, data, sig, now=at)


def test_a_delivery_carries_a_verifiable_signature_and_its_key(world: World) -> None:
    world.send(key="delivery-key-1")
    [received] = world.receiver.received
    assert received.status == 200
    assert received.refused is None
    headers = received.headers
    assert headers["idempotency-key"] == "delivery-key-1"
    assert headers["x-billbridge-event"] == "invoice.created"
    assert headers["content-type"] == "application/json"
    assert abs(int(headers["x-billbridge-timestamp"]) - time.time()) < 5
    verify(
        SECRET, headers["x-billbridge-timestamp"], received.body, headers["x-billbridge-signature"]
    )


def test_a_receiver_with_another_secret_refuses_and_the_run_says_why(world: World) -> None:
    world.receiver.secret = "another-secret-0123456789"
    with pytest.raises(DestinationValidationError, match="same signing secret") as info:
        world.send()
    assert "does not match" in (info.value.detail or "")
    assert SECRET not in str(info.value)
    assert SECRET not in (info.value.detail or "")


# --- the body ------------------------------------------------------------------------------------


def test_the_body_is_an_exact_invoice(world: World) -> None:
    result = world.send(headers={"X-Tenant": "acme"})
    assert result.external_id == "inv_1"
    assert result.number == "CONF-00001"
    assert result.url == f"{world.server.url}/invoices/inv_1"
    body = world.receiver.received[0].json()
    assert body["event"] == "invoice.created"
    assert body["id"] is None
    invoice = body["invoice"]
    assert invoice["customer"] == {
        "accountId": sample_account().id,
        "code": "CONFORMANCE-1",
        "name": "Conformance Customer Ltd",
        "email": "billing@conformance.example",
    }
    assert invoice["total"] == "120.00"
    assert [line["amount"] for line in invoice["lines"]] == ["100.00", "20.00"]
    assert invoice["lines"][1]["quantity"] == "2000"
    assert invoice["lines"][1]["unitPrice"] == "0.01"
    assert sum(Decimal(line["amount"]) for line in invoice["lines"]) == Decimal(invoice["total"])
    assert world.receiver.received[0].headers["x-tenant"] == "acme"


def test_line_items_can_be_left_out(world: World) -> None:
    world.send(includeLineItems=False)
    invoice = world.receiver.received[0].json()["invoice"]
    assert "lines" not in invoice
    assert invoice["total"] == "120.00"


def test_configured_headers_cannot_replace_the_signature(world: World) -> None:
    world.send(headers={"X-Billbridge-Signature": "sha256=forged", "Idempotency-Key": "mine"})
    [received] = world.receiver.received
    assert received.refused is None
    assert received.headers["idempotency-key"] == "key-1"


def test_a_new_version_updates_the_same_invoice(world: World) -> None:
    first = world.send(1, key="k1")
    second = world.send(2, previous=first, key="k2")
    assert second.external_id == first.external_id
    assert second.created is False
    body = world.receiver.received[-1].json()
    assert body["event"] == "invoice.updated"
    assert body["id"] == first.external_id
    [stored] = world.receiver.invoices.values()
    assert stored["revision"] == 2
    assert stored["invoice"]["total"] == "125.00"


# --- every answer a receiver can give ------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "expected", "text"),
    [
        (500, {}, TransientError, "HTTP 500"),
        (503, {}, TransientError, "HTTP 503"),
        (408, {}, TransientError, "HTTP 408"),
        (429, {"Retry-After": "7"}, RateLimited, "HTTP 429"),
        (409, {}, InvoiceAlreadyPaid, "can no longer be changed"),
        (423, {}, AccountingPeriodClosed, "period is closed"),
        (400, {}, DestinationValidationError, "refused the invoice (HTTP 400)"),
        (422, {}, DestinationValidationError, "refused the invoice (HTTP 422)"),
        (
            302,
            {"Location": "https://elsewhere.example/hooks"},
            DestinationValidationError,
            "elsewhere",
        ),
    ],
)
def test_receiver_answers_become_billbridge_errors(
    world: World,
    status: int,
    headers: Mapping[str, str],
    expected: type[DestinationError],
    text: str,
) -> None:
    world.receiver.fail_next(status, error="the receiver's own words", headers=headers)
    with pytest.raises(expected, match=re.escape(text)) as info:
        world.send()
    if status != 302:
        assert info.value.detail == "the receiver's own words"
    if isinstance(info.value, RateLimited):
        assert info.value.retry_after == 7
    assert world.receiver.invoices == {}


def test_a_retry_after_date_is_read_as_seconds(world: World) -> None:
    later = datetime.fromtimestamp(time.time() + 120, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    world.receiver.fail_next(429, headers={"Retry-After": later})
    with pytest.raises(RateLimited) as info:
        world.send()
    assert 110 <= info.value.retry_after <= 121


def test_a_lost_answer_is_transient_and_the_retry_returns_the_same_invoice(world: World) -> None:
    world.plan.script("lost")
    with pytest.raises(TransientError, match="could not be reached"):
        world.send(key="k1")
    assert len(world.receiver.invoices) == 1  # the receiver did store it
    assert world.send(key="k1").external_id == "inv_1"
    assert len(world.receiver.invoices) == 1


def test_a_slow_receiver_times_out_as_transient(world: World) -> None:
    world.plan.script("timeout")
    with pytest.raises(TransientError, match=r"within 0\.3 s"):
        world.send(timeoutSeconds=0.3)


def test_an_unreachable_receiver_is_transient(world: World) -> None:
    world.server.stop()
    with pytest.raises(TransientError, match="could not be reached"):
        world.send()


def test_an_answer_without_an_id_is_refused(world: World) -> None:
    world.receiver.fail_next(200)  # {"error": ...}: a 2xx without "id"
    with pytest.raises(DestinationValidationError, match="without an invoice id"):
        world.send()


def test_a_paid_invoice_is_not_changed(world: World) -> None:
    first = world.send(1, key="k1")
    world.receiver.locked.add(first.external_id)
    with pytest.raises(InvoiceAlreadyPaid):
        world.send(2, previous=first, key="k2")
    assert world.receiver.invoices[first.external_id]["revision"] == 1
