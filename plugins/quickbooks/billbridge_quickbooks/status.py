"""Reading delivered documents back from QuickBooks: paid, partly paid, voided or deleted.

QuickBooks keeps what happened to an invoice on the invoice and its linked transactions
(REFERENCE.md, "Second wave"):

* ``Balance`` is what is left to pay (0: paid), ``TotalAmt`` the total; ``LinkedTxn`` lists the
  ``Payment``s and ``CreditMemo``s applied;
* a Payment's ``Line`` entries say how much of it went to which invoice, when
  (``TxnDate``) and how (``PaymentMethodRef``);
* a credit memo's ``RemainingCredit`` is what of it is not applied yet;
* a voided document keeps its number with every amount zero and "Voided" in its
  ``PrivateNote``; a deleted one is no longer returned by queries.

:func:`fetch_statuses` reads a batch of documents with at most :data:`REQUESTS` query requests:
``select * from Invoice where Id in (…)``, the same for credit memos when there are any, and
``select * from Payment where Id in (…)`` for the payments linked to them. The amount credited
to an invoice is what was settled (``TotalAmt − Balance``) less its payments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from billbridge.domain.models import LedgerEntry
from billbridge.plugin.contract import InvoicePayment, InvoiceState, InvoiceStatus
from billbridge_quickbooks.client import QUERY_PAGE_MAX, QuickBooksClient, quote

__all__ = ["BATCH_SIZE", "REQUESTS", "fetch_statuses", "payment_method_labels", "status_of"]

#: Documents read per call (one ``Id in (…)`` query each for invoices and credit memos).
BATCH_SIZE = 100
#: Requests one call makes at most: invoices, credit memos, payments.
REQUESTS = 3

_ZERO = Decimal("0")


def payment_method_labels(config: Mapping[str, Any]) -> dict[str, str]:
    """The panel's payment method mapping: QuickBooks PaymentMethod id → reporting label."""
    labels: dict[str, str] = {}
    for entry in config.get("paymentMethodMapping") or ():
        if isinstance(entry, Mapping) and entry.get("paymentMethod") and entry.get("reportAs"):
            labels[str(entry["paymentMethod"])] = str(entry["reportAs"])
    return labels


def _amount(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _day(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _ref(value: Any) -> tuple[str | None, str | None]:
    if isinstance(value, Mapping) and value.get("value") is not None:
        name = value.get("name")
        return str(value["value"]), str(name) if name is not None else None
    return None, None


def _rows(client: QuickBooksClient, entity: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``entity`` rows by Id, read with one ``Id in (…)`` query."""
    if not ids:
        return {}
    listed = ", ".join(quote(i) for i in ids)
    # A QuickBooks query, not SQL; every id goes through quote().
    statement = f"select * from {entity} where Id in ({listed})"  # noqa: S608
    rows = client.query_page(statement, max_results=min(max(len(ids), 1), QUERY_PAGE_MAX))
    return {str(row.get("Id")): row for row in rows}


def _linked(row: Mapping[str, Any], kind: str) -> list[str]:
    return [
        str(link["TxnId"])
        for link in row.get("LinkedTxn") or ()
        if isinstance(link, Mapping) and link.get("TxnType") == kind and link.get("TxnId")
    ]


def _voided(row: Mapping[str, Any]) -> bool:
    note = str(row.get("PrivateNote") or "").strip().lower()
    return _amount(row.get("TotalAmt")) == 0 and note.startswith("voided")


def _payments_to(
    invoice_id: str,
    payment_ids: Iterable[str],
    payments: Mapping[str, Mapping[str, Any]],
    labels: Mapping[str, str],
) -> list[InvoicePayment]:
    """What each linked Payment applied to this invoice (a payment may pay several)."""
    found: list[InvoicePayment] = []
    for payment_id in payment_ids:
        payment = payments.get(payment_id)
        if payment is None:
            continue
        method, method_name = _ref(payment.get("PaymentMethodRef"))
        applied = _ZERO
        for line in payment.get("Line") or ():
            if not isinstance(line, Mapping):
                continue
            links = [
                link
                for link in line.get("LinkedTxn") or ()
                if isinstance(link, Mapping)
                and link.get("TxnType") == "Invoice"
                and str(link.get("TxnId")) == invoice_id
            ]
            if links:
                applied += _amount(line.get("Amount")) or _ZERO
        if applied <= 0:
            continue
        reference = payment.get("PaymentRefNum")
        found.append(
            InvoicePayment(
                amount=applied,
                date=_day(payment.get("TxnDate")),
                kind="payment",
                external_id=payment_id,
                method=method,
                method_name=method_name,
                reported_as=labels.get(method) if method else None,
                reference=str(reference) if reference else None,
            )
        )
    found.sort(key=lambda p: (p.date or date.min, p.external_id or ""))
    return found


def status_of(
    entity: str,
    row: Mapping[str, Any] | None,
    external_id: str,
    payments: Mapping[str, Mapping[str, Any]],
    labels: Mapping[str, str],
) -> InvoiceStatus:
    """One document's status from its row (``None``: QuickBooks no longer has it)."""
    if row is None:
        return InvoiceStatus(external_id=external_id, state=InvoiceState.DELETED)
    total = _amount(row.get("TotalAmt")) or _ZERO
    currency, _ = _ref(row.get("CurrencyRef"))
    if _voided(row):
        return InvoiceStatus(
            external_id=external_id,
            state=InvoiceState.VOIDED,
            total=_ZERO,
            amount_due=_ZERO,
            currency=currency,
        )
    if entity == "CreditMemo":
        remaining = _amount(row.get("RemainingCredit"))
        if remaining is None:
            remaining = _amount(row.get("Balance")) or _ZERO
        used = max(total - remaining, _ZERO)
        state = (
            InvoiceState.PAID
            if remaining <= 0
            else InvoiceState.PARTLY_PAID
            if remaining < total
            else InvoiceState.UNPAID
        )
        return InvoiceStatus(
            external_id=external_id,
            state=state,
            total=total,
            amount_due=remaining,
            amount_credited=used,
            currency=currency,
            paid_on=_updated_on(row) if state is InvoiceState.PAID else None,
        )
    balance = _amount(row.get("Balance"))
    if balance is None:
        balance = total
    applied = _payments_to(external_id, _linked(row, "Payment"), payments, labels)
    paid = sum((p.amount for p in applied), _ZERO)
    credited = max(total - balance - paid, _ZERO)
    memos = _linked(row, "CreditMemo")
    entries = list(applied)
    if credited > 0:
        entries.append(
            InvoicePayment(
                amount=credited,
                kind="credit",
                external_id=memos[0] if len(memos) == 1 else None,
                reference=f"credit memos {', '.join(memos)}" if len(memos) > 1 else None,
            )
        )
    if balance <= 0:
        state = InvoiceState.PAID
    elif balance < total:
        state = InvoiceState.PARTLY_PAID
    else:
        state = InvoiceState.UNPAID
    paid_on = None
    if state is InvoiceState.PAID:
        dates = [p.date for p in applied if p.date is not None]
        paid_on = max(dates) if dates and not credited else _updated_on(row)
    return InvoiceStatus(
        external_id=external_id,
        state=state,
        total=total,
        amount_due=balance,
        amount_paid=paid,
        amount_credited=credited,
        currency=currency,
        paid_on=paid_on,
        payments=tuple(entries),
    )


def _updated_on(row: Mapping[str, Any]) -> date | None:
    meta = row.get("MetaData")
    return _day(meta.get("LastUpdatedTime")) if isinstance(meta, Mapping) else None


def fetch_statuses(
    client: QuickBooksClient, documents: Sequence[LedgerEntry], config: Mapping[str, Any]
) -> list[InvoiceStatus]:
    """Read the documents' statuses with at most :data:`REQUESTS` queries.

    Which entity a document is comes from what ``send_bill`` recorded (``state["entity"]``).
    Documents are read :data:`BATCH_SIZE` at a time by the core; more are read in one query
    each anyway (up to 1000).
    """
    wanted: dict[str, list[str]] = {"Invoice": [], "CreditMemo": []}
    for document in documents:
        entity = str(document.state.get("entity") or "Invoice")
        wanted.setdefault(entity, []).append(document.external_id)
    rows = {entity: _rows(client, entity, ids[:QUERY_PAGE_MAX]) for entity, ids in wanted.items()}
    payment_ids = sorted(
        {p for row in rows.get("Invoice", {}).values() for p in _linked(row, "Payment")},
        key=lambda i: (len(i), i),
    )
    payments = _rows(client, "Payment", payment_ids[:QUERY_PAGE_MAX])
    labels = payment_method_labels(config)
    statuses = []
    for document in documents:
        entity = str(document.state.get("entity") or "Invoice")
        found = rows.get(entity, {})
        if document.external_id not in wanted.get(entity, [])[:QUERY_PAGE_MAX]:
            continue  # beyond what one call reads: left for the next check
        statuses.append(
            status_of(
                entity, found.get(document.external_id), document.external_id, payments, labels
            )
        )
    return statuses
