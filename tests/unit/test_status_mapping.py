"""Status read-back, the pure parts: what QuickBooks' and Xero's documents mean (paid, partly
paid, voided, deleted), the panels' payment method mappings, and the core's rules on settled
documents and informational events."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from billbridge_quickbooks import status as qbo
from billbridge_xero import status as xero

from billbridge.domain.models import DocumentStatus, EventType, InvoiceState, LedgerEntry
from billbridge.domain.preparation import settled_document
from billbridge.plugin.contract import InvoicePayment

D = Decimal
NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


# --- QuickBooks -----------------------------------------------------------------------------


def invoice(**fields: Any) -> dict[str, Any]:
    return {"Id": "7", "TotalAmt": D("120.00"), "Balance": D("120.00"),
            "CurrencyRef": {"value": "USD"}, **fields}  # fmt: skip


PAYMENTS = {
    "31": {
        "Id": "31",
        "TxnDate": "2026-11-18",
        "PaymentMethodRef": {"value": "4", "name": "Visa"},
        "PaymentRefNum": "R-1",
        "Line": [
            {"Amount": D("100.00"), "LinkedTxn": [{"TxnId": "7", "TxnType": "Invoice"}]},
            {"Amount": D("5.00"), "LinkedTxn": [{"TxnId": "8", "TxnType": "Invoice"}]},
        ],
    },
    "32": {
        "Id": "32",
        "TxnDate": "2026-11-19",
        "Line": [{"Amount": D("20.00"), "LinkedTxn": [{"TxnId": "7", "TxnType": "Invoice"}]}],
    },
}


def test_quickbooks_an_open_invoice_is_unpaid() -> None:
    status = qbo.status_of("Invoice", invoice(), "7", {}, {})
    assert status.state is InvoiceState.UNPAID
    assert (status.total, status.amount_due, status.amount_paid) == (D("120.00"), D("120.00"), 0)
    assert status.currency == "USD" and status.payments == ()


def test_quickbooks_payments_are_what_each_payment_applied_to_this_invoice() -> None:
    row = invoice(Balance=D("20.00"), LinkedTxn=[{"TxnId": "31", "TxnType": "Payment"}])
    status = qbo.status_of("Invoice", row, "7", PAYMENTS, {"4": "card"})
    assert status.state is InvoiceState.PARTLY_PAID
    assert (status.amount_paid, status.amount_credited, status.amount_due) == (
        D("100.00"),
        D("0"),
        D("20.00"),
    )
    assert status.payments == (
        InvoicePayment(
            amount=D("100.00"),
            date=date(2026, 11, 18),
            external_id="31",
            method="4",
            method_name="Visa",
            reported_as="card",
            reference="R-1",
        ),
    )


def test_quickbooks_a_balance_of_zero_is_paid_on_the_last_payment_date() -> None:
    links = [{"TxnId": "31", "TxnType": "Payment"}, {"TxnId": "32", "TxnType": "Payment"}]
    status = qbo.status_of("Invoice", invoice(Balance=D("0"), LinkedTxn=links), "7", PAYMENTS, {})
    assert status.state is InvoiceState.PAID
    assert status.paid_on == date(2026, 11, 19)
    assert [p.amount for p in status.payments] == [D("100.00"), D("20.00")]


def test_quickbooks_a_credit_memo_applied_is_credited() -> None:
    links = [{"TxnId": "32", "TxnType": "Payment"}, {"TxnId": "5", "TxnType": "CreditMemo"}]
    row = invoice(
        Balance=D("0"), LinkedTxn=links, MetaData={"LastUpdatedTime": "2026-11-20T08:00:00Z"}
    )
    status = qbo.status_of("Invoice", row, "7", PAYMENTS, {})
    assert status.state is InvoiceState.PAID
    assert (status.amount_paid, status.amount_credited) == (D("20.00"), D("100.00"))
    assert status.payments[-1] == InvoicePayment(amount=D("100.00"), kind="credit", external_id="5")
    # Paid partly by credit: the day QuickBooks last changed it.
    assert status.paid_on == date(2026, 11, 20)


def test_quickbooks_voided_and_deleted() -> None:
    voided = invoice(TotalAmt=D("0"), Balance=D("0"), PrivateNote="Voided bill b-1 v1")
    assert qbo.status_of("Invoice", voided, "7", {}, {}).state is InvoiceState.VOIDED
    # A zero invoice that was not voided is simply settled.
    zero = invoice(TotalAmt=D("0"), Balance=D("0"), PrivateNote="bill b-1 v1")
    assert qbo.status_of("Invoice", zero, "7", {}, {}).state is InvoiceState.PAID
    assert qbo.status_of("Invoice", None, "7", {}, {}).state is InvoiceState.DELETED


@pytest.mark.parametrize(
    ("remaining", "state"),
    [
        (D("50.00"), InvoiceState.UNPAID),
        (D("10.00"), InvoiceState.PARTLY_PAID),
        (D("0"), InvoiceState.PAID),
    ],
)
def test_quickbooks_a_credit_memo_is_settled_as_its_credit_is_used(
    remaining: Decimal, state: InvoiceState
) -> None:
    memo = {"Id": "5", "TotalAmt": D("50.00"), "RemainingCredit": remaining}
    status = qbo.status_of("CreditMemo", memo, "5", {}, {})
    assert status.state is state
    assert status.amount_credited == D("50.00") - remaining


def test_quickbooks_mapping_ignores_incomplete_entries() -> None:
    config = {
        "paymentMethodMapping": [
            {"paymentMethod": "4", "reportAs": "card"},
            {"paymentMethod": "5"},
            "not an entry",
        ]
    }
    assert qbo.payment_method_labels(config) == {"4": "card"}


# --- Xero -------------------------------------------------------------------------------------


def xero_invoice(**fields: Any) -> dict[str, Any]:
    return {
        "InvoiceID": "0b1c",
        "Status": "AUTHORISED",
        "Total": D("240.00"),
        "AmountDue": D("240.00"),
        "AmountPaid": D("0.00"),
        "AmountCredited": D("0.00"),
        "CurrencyCode": "GBP",
        **fields,
    }


def test_xero_statuses() -> None:
    assert xero.status_of("Invoice", xero_invoice(), {}, {}).state is InvoiceState.UNPAID
    partly = xero_invoice(
        AmountDue=D("200.00"),
        AmountPaid=D("40.00"),
        Payments=[{"PaymentID": "P1", "Date": "/Date(1763337600000+0000)/", "Amount": D("40.00")}],
    )
    accounts = {"p1": {"AccountID": "A-9", "Code": "091", "Name": "Card clearing"}}
    status = xero.status_of("Invoice", partly, accounts, {"a-9": "card"})
    assert status.state is InvoiceState.PARTLY_PAID
    (payment,) = status.payments
    assert (payment.date, payment.method, payment.method_name, payment.reported_as) == (
        date(2025, 11, 17),
        "A-9",
        "Card clearing",
        "card",
    )
    paid = xero_invoice(
        Status="PAID",
        AmountDue=D("0.00"),
        AmountPaid=D("200.00"),
        AmountCredited=D("40.00"),
        FullyPaidOnDate="/Date(1763510400000+0000)/",
        CreditNotes=[{"CreditNoteID": "C1", "CreditNoteNumber": "CN-1", "AppliedAmount": 40}],
    )
    status = xero.status_of("Invoice", paid, {}, {})
    assert (status.state, status.paid_on) == (InvoiceState.PAID, date(2025, 11, 19))
    assert status.payments == (
        InvoicePayment(amount=D("40"), kind="credit", external_id="C1", reference="CN-1"),
    )
    voided = xero.status_of("Invoice", xero_invoice(Status="VOIDED"), {}, {})
    assert (voided.state, voided.amount_due) == (InvoiceState.VOIDED, 0)
    assert xero.status_of("Invoice", xero_invoice(Status="DELETED"), {}, {}).state is (
        InvoiceState.DELETED
    )


def test_xero_credit_notes() -> None:
    note = {"CreditNoteID": "c", "Status": "AUTHORISED", "Total": D("30"), "RemainingCredit": 10}
    status = xero.status_of("CreditNote", note, {}, {})
    assert (status.state, status.amount_credited) == (InvoiceState.PARTLY_PAID, D("20"))
    used = {**note, "Status": "PAID", "RemainingCredit": 0}
    assert xero.status_of("CreditNote", used, {}, {}).state is InvoiceState.PAID


# --- the core's rules -------------------------------------------------------------------------


def entry(state: InvoiceState | None, **status: Any) -> LedgerEntry:
    return LedgerEntry(
        integration_id="i",
        bill_id="b",
        bill_version=2,
        external_id="7",
        external_number="INV-7",
        updated_at=NOW,
        status=DocumentStatus(state=state, checked_at=NOW, **status),
    )


def test_only_settled_documents_stop_a_new_version() -> None:
    assert settled_document(None) is None
    assert settled_document(entry(None)) is None
    assert settled_document(entry(InvoiceState.UNPAID)) is None
    assert settled_document(entry(InvoiceState.PARTLY_PAID)) is None
    assert settled_document(entry(InvoiceState.PAID, paid_on=date(2026, 11, 19)), "Xero") == (
        "invoice INV-7 (version 2) was paid in full on 2026-11-19 in Xero (read back "
        "2026-11-20 09:30 UTC); this version was not sent"
    )
    assert settled_document(entry(InvoiceState.VOIDED), "Xero") == (
        "invoice INV-7 (version 2) was voided in Xero (read back 2026-11-20 09:30 UTC); this "
        "version was not sent"
    )
    assert "was deleted in the destination" in (settled_document(entry(InvoiceState.DELETED)) or "")


def test_invoice_events_are_informational() -> None:
    assert not EventType.INVOICE_PAID.is_error and not EventType.INVOICE_VOIDED.is_error
    assert all(t.is_error for t in EventType if not t.value.startswith("integration.invoice."))
    assert [s for s in InvoiceState if s.settled] == [
        InvoiceState.PAID,
        InvoiceState.VOIDED,
        InvoiceState.DELETED,
    ]
