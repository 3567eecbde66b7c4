"""What happens to invoices after they are sent: payments and credit memos applied, in an
emulated QuickBooks company (the emulator's test hooks call these).

As QuickBooks keeps it (REFERENCE.md, "Second wave"):

* a **Payment** (``TotalAmt``, ``TxnDate``, ``PaymentMethodRef``, ``DepositToAccountRef``,
  ``PaymentRefNum``) has ``Line`` entries whose ``LinkedTxn`` names the invoice it pays and whose
  ``Amount`` is how much of it; the invoice's ``Balance`` drops by that much and its
  ``LinkedTxn`` gains ``{"TxnId": <payment>, "TxnType": "Payment"}``;
* a **credit memo applied** to an invoice lowers the invoice's ``Balance`` and the memo's
  ``RemainingCredit`` by the amount applied; the invoice's ``LinkedTxn`` gains
  ``{"TxnId": <memo>, "TxnType": "CreditMemo"}``;
* voids and deletes: :mod:`~billbridge_quickbooks.emulator.voiding`;
* **PaymentMethod** is a name list (``Name``, ``Type`` CREDIT_CARD / NON_CREDIT_CARD,
  ``Active``), seeded with QuickBooks' defaults.

Emulator choices, where QuickBooks documents nothing: an invoice with any payment applied is
refused updates only once its balance is zero (as before: :meth:`QuickBooksEmulator.mark_paid`);
a payment may not exceed the balance it pays; none of these changes the ``SyncToken``.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from billbridge_quickbooks.emulator.company import JSON, Company

__all__ = [
    "PAYMENT_METHODS",
    "apply_credit_memo",
    "record_payment",
    "seed_payment_methods",
]

#: QuickBooks' default payment methods: (name, type).
PAYMENT_METHODS = (
    ("Cash", "NON_CREDIT_CARD"),
    ("Check", "NON_CREDIT_CARD"),
    ("Direct Debit", "NON_CREDIT_CARD"),
    ("Visa", "CREDIT_CARD"),
    ("MasterCard", "CREDIT_CARD"),
    ("American Express", "CREDIT_CARD"),
)

_ZERO = Decimal("0")


def seed_payment_methods(company: Company) -> None:
    """Add QuickBooks' default payment methods to a company."""
    for name, kind in PAYMENT_METHODS:
        company.add("PaymentMethod", {"Name": name, "Type": kind, "Active": True})


def _touch(document: JSON, now: str) -> None:
    # Emulator choice: the SyncToken is left as it was, so that a client holding it meets the
    # rule that matters (a paid invoice refuses updates) rather than a stale-object error.
    meta = dict(document.get("MetaData") or {})
    meta["LastUpdatedTime"] = now
    document["MetaData"] = meta


def record_payment(
    company: Company,
    invoice_id: str,
    amount: Decimal | None = None,
    *,
    when: date,
    now: str,
    method_id: str | None = None,
    deposit_account_id: str | None = None,
    reference: str | None = None,
) -> JSON:
    """Receive a payment for an invoice (all of its balance when ``amount`` is ``None``).

    :returns: the Payment as QuickBooks stores it.
    :raises ValueError: the amount is not positive or more than the balance.
    """
    invoice = company.stored("Invoice", invoice_id)
    balance = Decimal(str(invoice.get("Balance", _ZERO)))
    paid = balance if amount is None else amount
    if paid <= 0 or paid > balance:
        raise ValueError(f"a payment of {paid} cannot be applied to a balance of {balance}")
    payment: JSON = {
        "TxnDate": when.isoformat(),
        "TotalAmt": paid,
        "UnappliedAmt": _ZERO,
        "CustomerRef": dict(invoice["CustomerRef"]),
        "CurrencyRef": dict(invoice.get("CurrencyRef") or {"value": company.home_currency}),
        "Line": [{"Amount": paid, "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}]}],
        "MetaData": {"CreateTime": now, "LastUpdatedTime": now},
    }
    if method_id is not None:
        method = company.stored("PaymentMethod", method_id)
        payment["PaymentMethodRef"] = {"value": method_id, "name": method.get("Name")}
    if deposit_account_id is not None:
        account = company.stored("Account", deposit_account_id)
        payment["DepositToAccountRef"] = {"value": deposit_account_id, "name": account.get("Name")}
    if reference is not None:
        payment["PaymentRefNum"] = reference
    stored = company.add("Payment", payment)
    invoice["Balance"] = balance - paid
    invoice["LinkedTxn"] = [
        *(invoice.get("LinkedTxn") or []),
        {"TxnId": stored["Id"], "TxnType": "Payment"},
    ]
    _touch(invoice, now)
    if invoice["Balance"] == 0:
        company.paid.add(invoice_id)
    return stored


def apply_credit_memo(
    company: Company,
    invoice_id: str,
    credit_memo_id: str,
    amount: Decimal | None = None,
    *,
    now: str,
) -> Decimal:
    """Apply a credit memo's remaining credit to an invoice (as much as both allow when
    ``amount`` is ``None``); returns the amount applied."""
    invoice = company.stored("Invoice", invoice_id)
    memo = company.stored("CreditMemo", credit_memo_id)
    balance = Decimal(str(invoice.get("Balance", _ZERO)))
    remaining = Decimal(str(memo.get("RemainingCredit", _ZERO)))
    applied = min(balance, remaining) if amount is None else amount
    if applied <= 0 or applied > balance or applied > remaining:
        raise ValueError(
            f"{applied} of credit cannot be applied: the invoice owes {balance}, the credit "
            f"memo has {remaining} left"
        )
    invoice["Balance"] = balance - applied
    invoice["LinkedTxn"] = [
        *(invoice.get("LinkedTxn") or []),
        {"TxnId": credit_memo_id, "TxnType": "CreditMemo"},
    ]
    memo["RemainingCredit"] = remaining - applied
    memo["Balance"] = memo["RemainingCredit"]
    memo["LinkedTxn"] = [
        *(memo.get("LinkedTxn") or []),
        {"TxnId": invoice_id, "TxnType": "Invoice"},
    ]
    _touch(invoice, now)
    _touch(memo, now)
    if invoice["Balance"] == 0:
        company.paid.add(invoice_id)
    return applied


def payments_of(company: Company, invoice_id: str) -> list[dict[str, Any]]:
    """The payments applied to an invoice (for tests)."""
    return [
        payment
        for payment in company.table("Payment").values()
        if any(
            link.get("TxnId") == invoice_id
            for line in payment.get("Line") or []
            for link in line.get("LinkedTxn") or []
        )
    ]
