"""Reading delivered documents back from Xero: paid, partly paid, voided or deleted.

Xero says it on the document (REFERENCE.md, "Second wave"): ``Status`` (AUTHORISED, PAID,
VOIDED, DELETED), ``Total``, ``AmountDue``, ``AmountPaid``, ``AmountCredited``,
``FullyPaidOnDate``, the ``Payments`` applied (id, date, amount, reference) and the
``CreditNotes`` allocated (``AppliedAmount``); a credit note has ``RemainingCredit``. Many
documents are read with one ``GET /Invoices?IDs=id1,id2,…`` (``/CreditNotes`` likewise).

A document's payments name no bank account, so when the panel maps payment accounts to
reporting labels (``paymentMethodMapping``) the payments are also read with one
``GET /Payments?where=PaymentID==Guid(…) OR …``. That needs the ``accounting.payments.read``
scope for apps with granular scopes (``accounting.transactions`` for older ones); without it the
payments are reported without their account rather than failing the read.

At most :data:`REQUESTS` requests per call: invoices, credit notes, payments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from billbridge.domain.models import LedgerEntry
from billbridge.errors import AuthenticationFailed
from billbridge.plugin.contract import (
    ExternalEntity,
    ExternalEntityPage,
    InvoicePayment,
    InvoiceState,
    InvoiceStatus,
)
from billbridge_xero.client import XeroClient
from billbridge_xero.dates import parse_xero_date

__all__ = [
    "BATCH_SIZE",
    "REQUESTS",
    "fetch_statuses",
    "list_bank_accounts",
    "payment_account_labels",
    "status_of",
]

#: Documents read per call: 50 ids keep ``?IDs=`` well inside a URL's length.
BATCH_SIZE = 50
#: Requests one call makes at most: invoices, credit notes, payments.
REQUESTS = 3
#: Payments looked up per call (their ``where`` filter is one URL too).
PAYMENTS_PER_CALL = 40

_ZERO = Decimal("0")
_ENDPOINTS = {"Invoice": ("Invoices", "InvoiceID"), "CreditNote": ("CreditNotes", "CreditNoteID")}


def payment_account_labels(config: Mapping[str, Any]) -> dict[str, str]:
    """The panel's payment method mapping: bank AccountID (lower case) → reporting label."""
    labels: dict[str, str] = {}
    for entry in config.get("paymentMethodMapping") or ():
        if isinstance(entry, Mapping) and entry.get("paymentAccount") and entry.get("reportAs"):
            labels[str(entry["paymentAccount"]).casefold()] = str(entry["reportAs"])
    return labels


def _amount(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _day(value: Any) -> date | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_xero_date(value)
    except ValueError:
        return None


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _state(status: str, due: Decimal, settled: Decimal) -> InvoiceState:
    if status == "VOIDED":
        return InvoiceState.VOIDED
    if status == "DELETED":
        return InvoiceState.DELETED
    if status == "PAID" or (due <= 0 and settled > 0):
        return InvoiceState.PAID
    if settled > 0:
        return InvoiceState.PARTLY_PAID
    return InvoiceState.UNPAID


def status_of(
    kind: str,
    document: Mapping[str, Any],
    accounts: Mapping[str, Mapping[str, Any]],
    labels: Mapping[str, str],
) -> InvoiceStatus:
    """One document's status from Xero's JSON (``accounts``: each payment's Account, by id)."""
    id_field = _ENDPOINTS[kind][1]
    total = _amount(document.get("Total")) or _ZERO
    currency = _text(document.get("CurrencyCode"))
    status = str(document.get("Status") or "").upper()
    if kind == "CreditNote":
        remaining = _amount(document.get("RemainingCredit"))
        if remaining is None:
            remaining = total
        applied = max(total - remaining, _ZERO)
        state = _state(status, remaining, applied)
        return InvoiceStatus(
            external_id=str(document[id_field]),
            state=state,
            total=total,
            amount_due=remaining,
            amount_credited=applied,
            currency=currency,
            paid_on=_day(document.get("FullyPaidOnDate")) if state is InvoiceState.PAID else None,
        )
    due = _amount(document.get("AmountDue"))
    paid = _amount(document.get("AmountPaid")) or _ZERO
    credited = _amount(document.get("AmountCredited")) or _ZERO
    if due is None:
        due = max(total - paid - credited, _ZERO)
    if status in ("VOIDED", "DELETED"):
        due = _ZERO  # nothing is owed on a voided or deleted invoice
    entries: list[InvoicePayment] = []
    for payment in document.get("Payments") or ():
        if not isinstance(payment, Mapping):
            continue
        payment_id = _text(payment.get("PaymentID"))
        account = accounts.get(payment_id.casefold()) if payment_id else None
        account_id = _text(account.get("AccountID")) if account else None
        entries.append(
            InvoicePayment(
                amount=_amount(payment.get("Amount")) or _ZERO,
                date=_day(payment.get("Date")),
                kind="payment",
                external_id=payment_id,
                method=account_id,
                method_name=_text(account.get("Name") or account.get("Code")) if account else None,
                reported_as=labels.get(account_id.casefold()) if account_id else None,
                reference=_text(payment.get("Reference")),
            )
        )
    for note in document.get("CreditNotes") or ():
        if not isinstance(note, Mapping):
            continue
        entries.append(
            InvoicePayment(
                amount=_amount(note.get("AppliedAmount")) or _ZERO,
                date=_day(note.get("Date")),
                kind="credit",
                external_id=_text(note.get("CreditNoteID")),
                reference=_text(note.get("CreditNoteNumber")),
            )
        )
    entries.sort(key=lambda p: (p.date or date.min, p.kind, p.external_id or ""))
    state = _state(status, due, paid + credited)
    return InvoiceStatus(
        external_id=str(document[id_field]),
        state=state,
        total=total,
        amount_due=due,
        amount_paid=paid,
        amount_credited=credited,
        currency=currency,
        paid_on=_day(document.get("FullyPaidOnDate")) if state is InvoiceState.PAID else None,
        payments=tuple(entries),
    )


def _documents(client: XeroClient, kind: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Documents of one kind by id (lower case), read with one ``?IDs=`` request."""
    if not ids:
        return {}
    endpoint, id_field = _ENDPOINTS[kind]
    data = client.get_json(f"/{endpoint}", {"IDs": ",".join(ids)})
    found = data.get(endpoint) if isinstance(data, Mapping) else None
    return {
        str(doc[id_field]).casefold(): dict(doc)
        for doc in (found if isinstance(found, list) else [])
        if isinstance(doc, Mapping) and doc.get(id_field)
    }


def _payment_accounts(client: XeroClient, payment_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each payment's bank Account, by PaymentID (lower case); empty when the consent may not
    read payments."""
    if not payment_ids:
        return {}
    # Ids come from Xero's own answer; quoted as Xero's where language wants a guid.
    where = " OR ".join(f'PaymentID==Guid("{p}")' for p in payment_ids)
    try:
        data = client.get_json("/Payments", {"where": where})
    except AuthenticationFailed:
        return {}  # no payments scope: statuses still read, payments without their account
    found = data.get("Payments") if isinstance(data, Mapping) else None
    accounts: dict[str, dict[str, Any]] = {}
    for payment in found if isinstance(found, list) else []:
        if isinstance(payment, Mapping) and isinstance(payment.get("Account"), Mapping):
            accounts[str(payment.get("PaymentID", "")).casefold()] = dict(payment["Account"])
    return accounts


def fetch_statuses(
    client: XeroClient, documents: Sequence[LedgerEntry], config: Mapping[str, Any]
) -> list[InvoiceStatus]:
    """Read the documents' statuses with at most :data:`REQUESTS` requests.

    Which kind a document is comes from what ``send_bill`` recorded (``state["kind"]``). A
    document Xero does not return is left out (Xero keeps voided and deleted documents, so one
    missing is not one deleted): the core reads it again at its next check.
    """
    wanted: dict[str, list[str]] = {"Invoice": [], "CreditNote": []}
    for document in documents:
        kind = "CreditNote" if document.state.get("kind") == "CreditNote" else "Invoice"
        wanted[kind].append(document.external_id)
    found = {kind: _documents(client, kind, ids) for kind, ids in wanted.items()}
    labels = payment_account_labels(config)
    accounts: dict[str, dict[str, Any]] = {}
    if labels:
        payment_ids = sorted(
            {
                str(p["PaymentID"])
                for doc in found["Invoice"].values()
                for p in doc.get("Payments") or ()
                if isinstance(p, Mapping) and p.get("PaymentID")
            }
        )
        accounts = _payment_accounts(client, payment_ids[:PAYMENTS_PER_CALL])
    statuses = []
    for document in documents:
        kind = "CreditNote" if document.state.get("kind") == "CreditNote" else "Invoice"
        row = found[kind].get(document.external_id.casefold())
        if row is not None:
            statuses.append(status_of(kind, row, accounts, labels))
    return statuses


def list_bank_accounts(client: XeroClient, search: str | None) -> ExternalEntityPage:
    """Active bank accounts, for the payment method mapping's picker (id: AccountID)."""
    wanted = (search or "").strip().casefold()
    entities = []
    for account in client.list_accounts(where='Type=="BANK"'):
        if account.get("Status", "ACTIVE") != "ACTIVE" or not account.get("AccountID"):
            continue
        name = str(account.get("Name") or account.get("Code") or account["AccountID"])
        code = str(account.get("Code") or "")
        if wanted and wanted not in name.casefold() and wanted not in code.casefold():
            continue
        entities.append(
            ExternalEntity(
                id=str(account["AccountID"]),
                name=name,
                extra={k: account[k] for k in ("Code", "BankAccountType") if account.get(k)},
            )
        )
    return ExternalEntityPage(items=tuple(entities))
