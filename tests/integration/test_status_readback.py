"""Status read-back end to end: the engine reads delivered invoices back from the QuickBooks and
Xero emulators (payments, credits applied, voids, deletes), stores what it read in the ledger,
raises informational events, refuses to send a new version over a settled invoice, and keeps
going when a status read is refused or rate-limited. SQLite and PostgreSQL (``database_url``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from benchmarks.bills import account_document, bill_document
from test_reliability_world import (
    START,
    Emulators,
    Prepared,
    make_engine,
    prepare,
    running_emulators,
    submit,
)

from billbridge.domain.models import EventType, InvoiceState, LedgerEntry, Run, RunStatus
from billbridge.engine import Engine
from billbridge.secrets import generate_key
from billbridge.testing.emulation.clock import ManualClock
from billbridge.testing.emulation.limits import SlidingWindow

D = Decimal
HOUR = 3600
XERO_SCOPES = "accounting.invoices accounting.contacts accounting.settings.read"


@attrs.define
class Readback:
    engine: Engine
    world: Emulators
    clock: ManualClock
    prepared: Prepared

    @property
    def realm(self) -> str:
        return self.world.company.realm_id

    @property
    def tenant(self) -> str:
        return self.world.org.tenant_id

    def integration(self, key: str) -> str:
        return self.prepared.integrations[key]

    def runs(self, key: str) -> list[Run]:
        """The integration's runs, by bill number (QB-000001 first)."""
        runs = self.engine.runs.list(integration_id=self.integration(key), limit=None)
        return sorted(runs, key=lambda r: (r.created_at, r.external_id or ""))

    def delivered(self, key: str) -> list[Run]:
        runs = [r for r in self.runs(key) if r.status is RunStatus.COMPLETE]
        return sorted(runs, key=lambda r: self.ledger(key)[r.bill_id].external_number or "")

    def ledger(self, key: str) -> dict[str, LedgerEntry]:
        bills = [r.bill_id for r in self.runs(key)]
        with self.engine.uow() as uow:
            return uow.ledger.get_many(self.integration(key), bills)

    def status(self, key: str, run: Run) -> Any:
        return self.ledger(key)[run.bill_id].status

    def configure(self, key: str, **destination_config: Any) -> None:
        integration = self.engine.integrations.get(self.integration(key))
        merged = {**integration.destination_config, **destination_config}
        self.engine.integrations.update(
            integration.id, version=integration.version, destination_config=merged
        )


@pytest.fixture
def readback(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Readback]:
    """Both emulators on a manual clock, an engine connected to each, mappings in place."""
    # Reading a Xero payment's bank account needs the payments scope (granular scopes).
    monkeypatch.setenv("BILLBRIDGE_XERO_SCOPES", f"{XERO_SCOPES} accounting.payments.read")
    clock = ManualClock(START)
    with running_emulators(clock) as world:
        engine = make_engine(database_url, world, tmp_path, generate_key())
        try:
            prepared = prepare(engine, world, quickbooks=6, xero=6)
            yield Readback(engine, world, clock, prepared)
        finally:
            engine.close()


def deliver(readback: Readback, *, quickbooks: int = 0, xero: int = 0) -> None:
    submit(readback.engine, quickbooks=quickbooks, xero=xero)
    report = readback.engine.deliver_pending()
    assert report.completed == quickbooks + xero


def test_quickbooks_payments_credits_voids_and_deletes_are_read_back(readback: Readback) -> None:
    engine, qbo, company = readback.engine, readback.world.quickbooks, readback.world.company
    visa = company.id_of("PaymentMethod", "Visa")
    readback.configure(
        "quickbooks", paymentMethodMapping=[{"paymentMethod": visa, "reportAs": "card"}]
    )
    deliver(readback, quickbooks=5)
    paid, partly, voided, credited, deleted = readback.delivered("quickbooks")
    ledger = readback.ledger("quickbooks")
    # Nothing is read before the integration's interval (hourly by default) has passed.
    assert {e.status.next_check_at for e in ledger.values()} == {
        readback.clock.now() + timedelta(hours=1)
    }
    assert engine.poll_invoice_statuses().read == 0

    qbo.record_payment(readback.realm, paid.external_id, method=visa, reference="VISA-1")
    qbo.record_payment(readback.realm, partly.external_id, amount="10.00")
    qbo.void(readback.realm, voided.external_id)
    memo = company.add(
        "CreditMemo",
        {
            "CustomerRef": company.invoices[credited.external_id]["CustomerRef"],
            "TotalAmt": D("50.00"),
            "RemainingCredit": D("50.00"),
            "Balance": D("50.00"),
            "Line": [],
        },
    )
    qbo.apply_credit_memo(readback.realm, credited.external_id, memo["Id"])
    rest = company.invoices[credited.external_id]["Balance"]
    qbo.record_payment(
        readback.realm, credited.external_id, method=company.id_of("PaymentMethod", "Check")
    )
    qbo.delete(readback.realm, deleted.external_id)
    queries = qbo.calls["query"]
    readback.clock.advance(HOUR + 1)

    report = engine.poll_invoice_statuses()
    assert (report.read, report.changed, report.failed, report.events) == (5, 5, 0, 4)
    # Five documents in one Invoice query, plus one Payment query for the payments linked.
    assert qbo.calls["query"] - queries == 2

    now = readback.clock.now()
    first = readback.status("quickbooks", paid)
    assert first.state is InvoiceState.PAID
    assert first.amount_due == 0 and first.amount_paid == first.total > 0
    assert first.paid_on == now.date() and first.next_check_at is None
    assert [dict(p) for p in first.payments] == [
        {
            "amount": first.total,
            "date": now.date().isoformat(),
            "kind": "payment",
            "externalId": "1",
            "method": visa,
            "methodName": "Visa",
            "reportedAs": "card",
            "reference": "VISA-1",
        }
    ]
    second = readback.status("quickbooks", partly)
    assert second.state is InvoiceState.PARTLY_PAID
    assert second.amount_paid == D("10.00") and second.amount_due == second.total - D("10.00")
    assert second.next_check_at == now + timedelta(hours=1)
    assert readback.status("quickbooks", voided).state is InvoiceState.VOIDED
    fourth = readback.status("quickbooks", credited)
    assert fourth.state is InvoiceState.PAID
    assert (fourth.amount_credited, fourth.amount_paid) == (D("50.00"), rest)
    assert [(p["kind"], p["amount"]) for p in fourth.payments] == [
        ("payment", rest),
        ("credit", D("50.00")),
    ]
    assert fourth.payments[0]["methodName"] == "Check"
    assert "reportedAs" not in fourth.payments[0]  # Check is not in the mapping
    assert readback.status("quickbooks", deleted).state is InvoiceState.DELETED

    events = engine.events.list(integration_id=readback.integration("quickbooks"))
    kinds = sorted(e.type.value for e in events)
    assert kinds == [
        "integration.invoice.paid",
        "integration.invoice.paid",
        "integration.invoice.voided",
        "integration.invoice.voided",
    ]
    number = readback.ledger("quickbooks")[paid.bill_id].external_number
    assert any(
        e.message
        == f"quickbooks reliability: invoice {number} (bill {paid.bill_id} v1) was paid in full "
        f"in QuickBooks Online on {now.date().isoformat()} (USD {first.amount_paid})."
        for e in events
    )
    # Informational: they never count towards disabling the integration.
    integration = engine.integrations.get(readback.integration("quickbooks"))
    assert integration.consecutive_errors == 0 and integration.enabled

    # Settled documents are not read again; the partly paid one is, an hour later.
    assert engine.poll_invoice_statuses().read == 0
    readback.clock.advance(HOUR + 1)
    qbo.record_payment(readback.realm, partly.external_id)
    again = engine.poll_invoice_statuses()
    assert (again.read, again.changed, again.events) == (1, 1, 1)
    assert readback.status("quickbooks", partly).state is InvoiceState.PAID

    # Runs show what their invoice became, and can be listed by it.
    paid_runs = engine.runs.list(invoice_state="paid", limit=None)
    assert {r.id for r in paid_runs} == {paid.id, credited.id, partly.id}
    assert engine.runs.count(invoice_state=["voided", "deleted"]) == 2


def test_xero_payments_credit_notes_and_voids_are_read_back(readback: Readback) -> None:
    engine, xero, org = readback.engine, readback.world.xero, readback.world.org
    card = xero.add_bank_account(readback.tenant, "091", "Card clearing")
    readback.configure(
        "xero", paymentMethodMapping=[{"paymentAccount": card["AccountID"], "reportAs": "card"}]
    )
    deliver(readback, xero=4)
    paid, partly, voided, credited = readback.delivered("xero")
    xero.record_payment(readback.tenant, paid.external_id, account_code="091", reference="card")
    xero.record_payment(readback.tenant, partly.external_id, amount="5.00")
    xero.void(readback.tenant, voided.external_id)
    note, errors, _ = org.apply(
        "CreditNote",
        {
            "Type": "ACCRECCREDIT",
            "Contact": {"ContactID": org.documents[credited.external_id.casefold()]["ContactID"]},
            "Status": "AUTHORISED",
            "CurrencyCode": "GBP",
            "LineItems": [
                {"Description": "Goodwill", "Quantity": 1, "UnitAmount": 20, "AccountCode": "260"}
            ],
        },
        method="PUT",
        unitdp=2,
        now=readback.clock.now(),
    )
    assert note is not None, errors
    xero.allocate_credit_note(readback.tenant, credited.external_id, note["id"])
    readback.clock.advance(HOUR + 1)

    report = engine.poll_invoice_statuses()
    assert (report.read, report.changed, report.events) == (4, 4, 2)
    # One GET /Invoices?IDs=... for all four, one GET /Payments for the payments' accounts.
    assert xero.requests["GET /Invoices"] == 1 and xero.requests["GET /Payments"] == 1

    first = readback.status("xero", paid)
    assert first.state is InvoiceState.PAID and first.paid_on == readback.clock.now().date()
    assert first.currency == "GBP" and first.amount_paid == first.total
    (payment,) = first.payments
    assert (payment["method"], payment["methodName"], payment["reportedAs"]) == (
        card["AccountID"],
        "Card clearing",
        "card",
    )
    second = readback.status("xero", partly)
    assert second.state is InvoiceState.PARTLY_PAID and second.amount_paid == D("5.00")
    assert second.payments[0]["methodName"] == "Business Bank Account"
    assert "reportedAs" not in second.payments[0]
    third = readback.status("xero", voided)
    assert (third.state, third.amount_due) == (InvoiceState.VOIDED, 0)
    fourth = readback.status("xero", credited)
    assert fourth.state is InvoiceState.PARTLY_PAID
    # 20.00 and 20 % VAT on the credit note: 24.00 allocated.
    assert fourth.amount_credited == note["Total"] == D("24.00")
    assert [(p["kind"], p["amount"]) for p in fourth.payments] == [("credit", D("24.00"))]


def test_without_the_payments_scope_xero_payments_are_read_without_their_account(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BILLBRIDGE_XERO_SCOPES", XERO_SCOPES)
    clock = ManualClock(START)
    with running_emulators(clock) as world:
        engine = make_engine(database_url, world, tmp_path, generate_key())
        try:
            readback = Readback(engine, world, clock, prepare(engine, world, quickbooks=0, xero=1))
            readback.configure(
                "xero", paymentMethodMapping=[{"paymentAccount": "x", "reportAs": "card"}]
            )
            deliver(readback, xero=1)
            (run,) = readback.delivered("xero")
            world.xero.record_payment(world.org.tenant_id, run.external_id)
            clock.advance(HOUR + 1)
            report = engine.poll_invoice_statuses()
            assert (report.read, report.failed) == (1, 0)
            status = readback.status("xero", run)
            assert status.state is InvoiceState.PAID and status.error is None
            assert "method" not in status.payments[0]
            assert world.xero.rate_limited.total() == 0
        finally:
            engine.close()


def test_a_new_version_of_a_paid_or_voided_invoice_is_not_sent(readback: Readback) -> None:
    engine, world = readback.engine, readback.world
    deliver(readback, quickbooks=1, xero=1)
    (qbo_run,) = readback.delivered("quickbooks")
    (xero_run,) = readback.delivered("xero")
    world.quickbooks.mark_paid(readback.realm, qbo_run.external_id)
    world.xero.void(readback.tenant, xero_run.external_id)
    readback.clock.advance(HOUR + 1)
    assert engine.poll_invoice_statuses().read == 2
    updates = (world.company.updated["Invoice"], world.xero.requests["POST /Invoices"])

    for prefix, currency, country in (("QB", "USD", "US"), ("XE", "GBP", "GB")):
        engine.submit_bill(
            bill_document(prefix, 1, lines=6, currency=currency, version=2),
            account_document(prefix, 1, currency=currency, country=country),
        )
    report = engine.deliver_pending()
    assert report.statuses == {RunStatus.INVOICE_ALREADY_PAID.value: 2}
    # Nothing was sent: neither destination saw an update.
    assert (world.company.updated["Invoice"], world.xero.requests["POST /Invoices"]) == updates

    qbo_number = readback.ledger("quickbooks")[qbo_run.bill_id].external_number
    (second,) = [r for r in readback.runs("quickbooks") if r.bill_version == 2]
    assert second.error == (
        f"invoice {qbo_number} (version 1) was paid in full on "
        f"{readback.clock.now().date().isoformat()} in QuickBooks Online (read back "
        f"{readback.clock.now() - timedelta(seconds=0):%Y-%m-%d %H:%M} UTC); this version was "
        "not sent"
    )
    xero_number = readback.ledger("xero")[xero_run.bill_id].external_number
    (xero_second,) = [r for r in readback.runs("xero") if r.bill_version == 2]
    assert xero_second.error is not None
    assert xero_second.error.startswith(f"invoice {xero_number} (version 1) was voided in Xero")
    performed = engine.events.list(type=EventType.PERFORM_ERROR)
    assert {e.run_id for e in performed} == {second.id, xero_second.id}
    assert all("already paid or voided" in e.message for e in performed)


def test_a_rate_limited_status_read_waits_and_loses_nothing(readback: Readback) -> None:
    engine, world, clock = readback.engine, readback.world, readback.clock
    deliver(readback, quickbooks=2)
    first, second = readback.delivered("quickbooks")
    world.quickbooks.mark_paid(readback.realm, first.external_id)
    clock.advance(HOUR + 1)
    # QuickBooks' minute allowance is spent by another app: the status query gets a 429.
    world.quickbooks.per_minute = SlidingWindow(1, 60, clock)
    world.quickbooks.per_minute.acquire(readback.realm)

    report = engine.poll_invoice_statuses()
    assert (report.read, report.failed) == (0, 2)
    now = clock.now()
    for run in (first, second):
        status = readback.status("quickbooks", run)
        assert status.state is None and status.checked_at == now
        assert status.next_check_at == now + timedelta(seconds=60)
        assert status.error == (
            "reading the status back from QuickBooks Online failed: QuickBooks throttled this company "
            "(500 requests a minute, 10 a second and 40 batches a minute per realm): "
            "message=ThrottleExceeded; errorCode=003001; statusCode=429: The request limit was "
            "reached: wait 60 seconds before trying again. (code 003001)"
        )
    assert world.quickbooks.throttled["minute"] == 1
    world.quickbooks.per_minute = SlidingWindow(500, 60, clock)  # the other app stopped
    # No run changed; a bill submitted meanwhile waits for the tenant's block, then goes.
    assert {r.status for r in readback.runs("quickbooks")} == {RunStatus.COMPLETE}
    submit(engine, quickbooks=1, xero=0, start=3)
    assert engine.deliver_pending().completed == 1
    # The worker waited out the block the status read met (the manual clock moves when it
    # waits) and was not throttled again.
    assert clock.now() >= now + timedelta(seconds=60)
    assert world.quickbooks.throttled.total() == 1
    clock.advance(1)
    report = engine.poll_invoice_statuses()
    assert (report.read, report.changed, report.events) == (2, 2, 1)
    assert readback.status("quickbooks", first).state is InvoiceState.PAID
    assert readback.status("quickbooks", first).error is None


def test_a_refused_status_read_is_recorded_and_tried_again(readback: Readback) -> None:
    engine, world, clock = readback.engine, readback.world, readback.clock
    deliver(readback, xero=1)
    (run,) = readback.delivered("xero")
    clock.advance(HOUR + 1)
    # Someone disconnects the organisation from the app in Xero: reads are refused (403).
    consents = [a for a in world.xero.oauth.authorizations() if readback.tenant in a.tenants]
    world.xero.disconnect(readback.tenant)

    report = engine.poll_invoice_statuses()
    assert (report.read, report.failed) == (0, 1)
    status = readback.status("xero", run)
    assert status.state is None
    assert status.next_check_at == clock.now() + timedelta(hours=1)
    assert status.error == (
        "reading the status back from Xero failed: Xero refused access to organisation "
        f"{readback.tenant} (HTTP 403 on GET /Invoices: AuthorizationUnsuccessful): the "
        "organisation is no longer connected to the app, or the consent lacks a scope; "
        "reconnect the credential"
    )
    assert readback.runs("xero")[0].status is RunStatus.COMPLETE
    # Reconnected, the next read works and clears the error.
    for consent in consents:
        consent.tenants = (readback.tenant,)
    clock.advance(HOUR + 1)
    assert engine.poll_invoice_statuses().read == 1
    assert readback.status("xero", run).state is InvoiceState.UNPAID
    assert readback.status("xero", run).error is None


def test_reading_back_can_be_turned_off_per_integration(readback: Readback) -> None:
    engine = readback.engine
    integration = engine.integrations.get(readback.integration("quickbooks"))
    config = {
        "name": integration.name,
        "accountFilter": integration.config.account_filter,
        "statusCheckMinutes": 0,
    }
    engine.integrations.update(integration.id, version=integration.version, config=config)
    deliver(readback, quickbooks=1)
    (run,) = readback.delivered("quickbooks")
    assert readback.status("quickbooks", run).next_check_at is None
    readback.clock.advance(10 * HOUR)
    assert engine.poll_invoice_statuses().read == 0
    # Turned on again: what is not settled is read one interval later.
    integration = engine.integrations.get(integration.id)
    engine.integrations.update(
        integration.id, version=integration.version, config={**config, "statusCheckMinutes": 15}
    )
    assert readback.status("quickbooks", run).next_check_at == readback.clock.now() + timedelta(
        minutes=15
    )
    readback.clock.advance(15 * 60)
    assert engine.poll_invoice_statuses().read == 1
    assert readback.status("quickbooks", run).state is InvoiceState.UNPAID
