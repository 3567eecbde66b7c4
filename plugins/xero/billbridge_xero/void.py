"""Replacing a Xero document with the other kind: an invoice whose bill became a credit note.

Xero cannot turn an invoice into a credit note, so when a bill version's total changes sign the
document an earlier version made is voided (or deleted) and the new kind created, with
:func:`billbridge.plugin.replace.replace_document` (the algorithm, the bookkeeping and the
note). What is Xero's own is here (REFERENCE.md, "Void"):

* an ``AUTHORISED`` or ``SUBMITTED`` document without payments is voided by updating it with
  ``"Status": "VOIDED"`` (it keeps its number); a ``DRAFT`` is deleted with
  ``"Status": "DELETED"`` (which gives its number up); credit notes likewise;
* a ``PAID`` document, or one with a payment or credit allocated, is not voided:
  ``InvoiceAlreadyPaid``.

The earlier document is read first (``GET /Invoices/{id}``): its status decides between void
and delete, and a retry after a lost answer finds it voided and does not void it twice (Xero's
``Idempotency-Key`` replay lasts minutes only).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Literal

from billbridge.domain.models import LedgerEntry, dumps
from billbridge.plugin.contract import SendResult
from billbridge.plugin.replace import Earlier, Replacement, Standing, replace_document
from billbridge_xero.client import XeroClient, element_error, idempotency_key
from billbridge_xero.translate import DocumentKind, XeroDocument

__all__ = ["planned_void", "previous_kind", "replace", "replaces"]

_ENDPOINTS = {"Invoice": "Invoices", "CreditNote": "CreditNotes"}
_ID_FIELDS = {"Invoice": "InvoiceID", "CreditNote": "CreditNoteID"}
_NUMBER_FIELDS = {"Invoice": "InvoiceNumber", "CreditNote": "CreditNoteNumber"}


def previous_kind(previous: LedgerEntry) -> DocumentKind:
    """The kind of document the earlier delivery made (``Invoice`` when it did not say)."""
    return "CreditNote" if previous.state.get("kind") == "CreditNote" else "Invoice"


def replaces(document: XeroDocument, previous: LedgerEntry | None) -> bool:
    """True when ``document`` is of another kind than the one ``previous`` recorded."""
    return previous is not None and previous_kind(previous) != document.kind


def _amount(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def _standing(kind: DocumentKind, document: Mapping[str, Any] | None) -> Standing:
    if document is None:
        return "MISSING"
    status = str(document.get("Status") or "")
    if status in ("VOIDED", "DELETED"):
        return status  # type: ignore[return-value]
    if status == "PAID":
        return "PAID"
    if kind == "Invoice":
        if _amount(document.get("AmountPaid")) or _amount(document.get("AmountCredited")):
            return "PAID"
    elif _amount(document.get("RemainingCredit")) < _amount(document.get("Total")):
        # Part of the credit note is allocated to an invoice: it has been used.
        return "PAID"
    return "OPEN"


def _target(status: str | None) -> Literal["VOIDED", "DELETED"]:
    # A draft cannot be voided, only deleted (REFERENCE.md).
    return "DELETED" if status == "DRAFT" else "VOIDED"


def replace(
    client: XeroClient,
    document: XeroDocument,
    previous: LedgerEntry,
    base_key: str,
    create: Callable[[], SendResult],
) -> SendResult:
    """Void (or delete) the document ``previous`` recorded and create ``document``."""
    kind = previous_kind(previous)
    read: dict[str, Any] = {}

    def look() -> Earlier:
        found = client.get_document(kind, previous.external_id)
        read.update(found or {})
        number = (found or {}).get(_NUMBER_FIELDS[kind]) or previous.external_number
        return Earlier(kind, previous.external_id, number, _standing(kind, found))

    def void(earlier: Earlier) -> Literal["VOIDED", "DELETED"]:
        status = _target(read.get("Status"))
        element = {_ID_FIELDS[kind]: earlier.id, "Status": status}
        body = dumps({_ENDPOINTS[kind]: [element]}).encode("utf-8")
        (saved,) = client.write(
            kind,
            "POST",
            [element],
            idempotency_key=idempotency_key(base_key, f"void-{_ENDPOINTS[kind]}", body),
        )
        if not saved.ok:
            raise element_error(saved, f"{kind_name(kind)} {earlier.id}")
        return status

    replacement = Replacement(
        system="Xero",
        bill_id=document.bill_id,
        bill_version=document.bill_version,
        total=document.totals.bill,
        currency=document.totals.currency,
        kind=document.kind,
        number=document.number,
    )
    return replace_document(replacement, previous, look=look, void=void, create=create)


def kind_name(kind: str) -> str:
    """``invoice`` or ``credit note``."""
    return "invoice" if kind == "Invoice" else "credit note"


def planned_void(previous: LedgerEntry) -> dict[str, Any]:
    """What a preview shows of the earlier document and the request that voids it.

    Void or delete follows the status the ledger last saw (a draft is deleted); the status Xero
    has when sending decides.
    """
    kind = previous_kind(previous)
    status = _target(str(previous.state.get("status") or ""))
    endpoint = _ENDPOINTS[kind]
    return {
        "entity": kind,
        "id": previous.external_id,
        "number": previous.external_number,
        "void": {
            "method": "POST",
            "path": f"/api.xro/2.0/{endpoint}",
            "query": {"summarizeErrors": "false"},
            "body": {endpoint: [{_ID_FIELDS[kind]: previous.external_id, "Status": status}]},
        },
    }
