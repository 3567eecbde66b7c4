"""What happens to documents after they are sent: payments, credit notes allocated, voids and
deletes in an emulated Xero organisation (the emulator's test hooks call these), and
``GET /Payments``.

As Xero keeps it (REFERENCE.md, "Second wave"; Xero's OpenAPI spec):

* a **payment** (``PaymentID``, ``Date``, ``Amount``, ``Reference``, the bank ``Account`` it
  was received into, the ``Invoice`` it pays, ``PaymentType`` ``ACCRECPAYMENT``, ``Status``
  ``AUTHORISED``) raises the invoice's ``AmountPaid`` and lowers its ``AmountDue``; the invoice
  lists it in ``Payments`` (``PaymentID``, ``Date``, ``Amount``, ``Reference``; not the
  account: ``GET /Payments`` tells that). Paid in full, the invoice becomes ``PAID`` with
  ``FullyPaidOnDate``;
* a **credit note allocated** to an invoice raises its ``AmountCredited`` (listed in
  ``CreditNotes`` with ``AppliedAmount``) and lowers the credit note's ``RemainingCredit``; a
  credit note used up is ``PAID``;
* a **voided** document is ``VOIDED`` and a **deleted** one ``DELETED``: Xero keeps both and
  still returns them.

Emulator choice: ``GET /Payments`` is readable with the legacy ``accounting.transactions(.read)``
scopes and the granular ``accounting.payments(.read)``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from billbridge.domain.money import round_half_up
from billbridge_xero.dates import format_ms_date

if TYPE_CHECKING:
    from billbridge_xero.emulator.organisation import Organisation

__all__ = [
    "add_bank_account",
    "allocate_credit_note",
    "delete_document",
    "record_payment",
    "render_payment",
    "settlement",
]

_ZERO = Decimal(0)


def _money(value: Decimal) -> Decimal:
    return round_half_up(value, 2)


def _document(org: Organisation, document_id: str, kind: str) -> dict[str, Any]:
    document = org.document(document_id)
    if document is None or document["kind"] != kind:
        raise KeyError(f"no {kind} {document_id} in organisation {org.name}")
    return document


def _due(document: dict[str, Any]) -> Decimal:
    paid = document.get("AmountPaid", _ZERO)
    return _money(document["Total"] - paid - document.get("AmountCredited", _ZERO))


def add_bank_account(org: Organisation, code: str, name: str, *, now: datetime) -> dict[str, Any]:
    """Add a bank account payments can be received into."""
    account = {
        "AccountID": str(uuid.uuid4()),
        "Code": code,
        "Name": name,
        "Type": "BANK",
        "Class": "ASSET",
        "Status": "ACTIVE",
        "TaxType": "NONE",
        "EnablePaymentsToAccount": False,
        "ShowInExpenseClaims": False,
        "BankAccountType": "BANK",
        "ReportingCode": "ASS",
        "UpdatedDateUTC": now,
    }
    org.accounts[code.casefold()] = account
    return account


def record_payment(
    org: Organisation,
    invoice_id: str,
    amount: Decimal | None,
    *,
    account_code: str,
    when: date,
    now: datetime,
    reference: str | None = None,
) -> dict[str, Any]:
    """Apply a payment to an AUTHORISED invoice (what it still owes when ``amount`` is
    ``None``), received into the bank account ``account_code``. Returns the payment."""
    invoice = _document(org, invoice_id, "Invoice")
    if invoice["Status"] not in ("AUTHORISED", "SUBMITTED"):
        raise ValueError(
            f"Payments can only be made against Authorised documents, not {invoice['Status']}"
        )
    account = org.account(account_code)
    if account is None or account.get("Type") != "BANK":
        raise ValueError(f"{account_code} is not a bank account of {org.name}")
    due = _due(invoice)
    paid = due if amount is None else amount
    if paid <= 0 or paid > due:
        raise ValueError(f"a payment of {paid} cannot be applied to an amount due of {due}")
    payment = {
        "PaymentID": str(uuid.uuid4()),
        "Date": when,
        "Amount": _money(paid),
        "BankAmount": _money(paid),
        "CurrencyRate": Decimal("1.000000"),
        "Reference": reference or "",
        "PaymentType": "ACCRECPAYMENT",
        "Status": "AUTHORISED",
        "IsReconciled": False,
        "Account": {"AccountID": account["AccountID"], "Code": account["Code"]},
        "InvoiceID": invoice["id"],
        "UpdatedDateUTC": now,
    }
    org.payments[payment["PaymentID"]] = payment
    invoice["AmountPaid"] = _money(invoice.get("AmountPaid", _ZERO) + paid)
    invoice.setdefault("PaymentIDs", []).append(payment["PaymentID"])
    _settle(invoice, when, now)
    return payment


def allocate_credit_note(
    org: Organisation,
    invoice_id: str,
    credit_note_id: str,
    amount: Decimal | None,
    *,
    when: date,
    now: datetime,
) -> Decimal:
    """Allocate an AUTHORISED credit note to an invoice (as much as both allow by default)."""
    invoice = _document(org, invoice_id, "Invoice")
    note = _document(org, credit_note_id, "CreditNote")
    remaining = _money(note["Total"] - note.get("AmountPaid", _ZERO))
    due = _due(invoice)
    applied = min(due, remaining) if amount is None else amount
    if applied <= 0 or applied > due or applied > remaining:
        raise ValueError(
            f"{applied} cannot be allocated: the invoice owes {due}, the credit note has "
            f"{remaining} left"
        )
    invoice["AmountCredited"] = _money(invoice.get("AmountCredited", _ZERO) + applied)
    invoice.setdefault("CreditAllocations", []).append(
        {"CreditNoteID": note["id"], "CreditNoteNumber": note.get("Number"), "Amount": applied}
    )
    # The credit note's allocations are kept where the emulator keeps what was paid of it.
    note["AmountPaid"] = _money(note.get("AmountPaid", _ZERO) + applied)
    if note["AmountPaid"] >= note["Total"]:
        note["Status"] = "PAID"
        note["FullyPaidOnDate"] = when
    note["UpdatedDateUTC"] = now
    _settle(invoice, when, now)
    return applied


def _settle(invoice: dict[str, Any], when: date, now: datetime) -> None:
    if _due(invoice) <= 0:
        invoice["Status"] = "PAID"
        invoice["FullyPaidOnDate"] = when
    invoice["UpdatedDateUTC"] = now


def delete_document(org: Organisation, document_id: str, *, now: datetime) -> None:
    """Delete a DRAFT or SUBMITTED document as a person would (Xero keeps it, DELETED)."""
    document = org.document(document_id)
    if document is None:
        raise KeyError(document_id)
    if document["Status"] not in ("DRAFT", "SUBMITTED"):
        raise ValueError(f"a {document['Status']} document cannot be deleted, only voided")
    document["Status"] = "DELETED"
    document["UpdatedDateUTC"] = now


def render_payment(org: Organisation, payment: dict[str, Any]) -> dict[str, Any]:
    """A payment as ``GET /Payments`` returns it."""
    invoice = org.document(payment["InvoiceID"]) or {}
    account = next(
        (a for a in org.accounts.values() if a["AccountID"] == payment["Account"]["AccountID"]),
        {},
    )
    return {
        "PaymentID": payment["PaymentID"],
        "Date": format_ms_date(payment["Date"]),
        "Amount": payment["Amount"],
        "BankAmount": payment["BankAmount"],
        "CurrencyRate": payment["CurrencyRate"],
        "Reference": payment["Reference"],
        "IsReconciled": payment["IsReconciled"],
        "Status": payment["Status"],
        "PaymentType": payment["PaymentType"],
        "UpdatedDateUTC": format_ms_date(payment["UpdatedDateUTC"]),
        "Account": {
            "AccountID": payment["Account"]["AccountID"],
            "Code": account.get("Code", payment["Account"]["Code"]),
            "Name": account.get("Name"),
        },
        "Invoice": {
            "InvoiceID": payment["InvoiceID"],
            "InvoiceNumber": invoice.get("Number"),
            "Type": invoice.get("Type"),
        },
        "HasAccount": True,
        "HasValidationErrors": False,
    }


def settlement(org: Organisation, document: Mapping[str, Any]) -> dict[str, Any]:
    """What an invoice's JSON says of its payments and credits (for rendering)."""
    out: dict[str, Any] = {}
    payments = [org.payments[p] for p in document.get("PaymentIDs", ()) if p in org.payments]
    if payments:
        # On an invoice Xero lists its payments without their account (HasAccount false).
        out["Payments"] = [
            {
                "PaymentID": p["PaymentID"],
                "Date": format_ms_date(p["Date"]),
                "Amount": p["Amount"],
                "Reference": p["Reference"],
                "CurrencyRate": p["CurrencyRate"],
                "HasAccount": False,
                "HasValidationErrors": False,
            }
            for p in payments
        ]
    credits = document.get("CreditAllocations") or []
    if credits:
        out["CreditNotes"] = [
            {
                "CreditNoteID": c["CreditNoteID"],
                "CreditNoteNumber": c["CreditNoteNumber"],
                "AppliedAmount": c["Amount"],
            }
            for c in credits
        ]
    return out
