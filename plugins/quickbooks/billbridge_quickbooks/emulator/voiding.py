"""Voiding and deleting a QuickBooks document (``?operation=void`` / ``?operation=delete``).

As REFERENCE.md has it: a void keeps the document (and its number) with every amount at zero
and "Voided" in its memo; a delete removes it. Both need the document's ``Id`` and current
``SyncToken`` (a stale one is 5010). A paid invoice (a linked Payment) can be neither: 6000,
"linked to a payment". Where Intuit's pages are silent the emulator chooses, and says so here:

* only invoices can be voided (QuickBooks' API offers no void of a credit memo): any other
  entity is 4001, "Unsupported Operation";
* voiding a voided invoice changes nothing and answers it as it is;
* the memo becomes ``Voided - `` followed by the memo it had (or ``Voided`` alone);
* a void or delete of a document dated on or before the closing date is refused like any write.

The emulator's test hooks void and delete as a person would in QuickBooks' own screens, where
credit memos can be voided too and no SyncToken is asked for: :func:`void_stored` and
:func:`delete_stored`, the same changes without the API's checks.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from billbridge_quickbooks.emulator.company import JSON, Company
from billbridge_quickbooks.emulator.errors import (
    INACTIVE,
    business,
    required,
    validation,
)

__all__ = ["delete_document", "delete_stored", "void_document", "void_stored"]

_ZERO = Decimal(0)


def _current(company: Company, entity: str, obj: Any) -> JSON:
    """The stored document ``obj`` names, checked: it exists, the SyncToken is current, it is
    not paid, and the books are open on its date."""
    if not isinstance(obj, dict) or not obj.get("Id"):
        raise required("Id")
    doc_id = str(obj["Id"])
    existing = company.table(entity).get(doc_id)
    if existing is None:
        raise validation("610", "Object Not Found", f"{INACTIVE} ({entity} {doc_id})", "Id")
    if obj.get("SyncToken") is None:
        raise required("SyncToken")
    if str(obj["SyncToken"]) != existing["SyncToken"]:
        raise validation(
            "5010",
            "Stale Object Error",
            f"Stale Object Error : You and {company.name} were working on this at the same "
            f"time. {company.name} finished before you did, so your work was not saved.",
            "SyncToken",
        )
    # Payments apply to invoices (the ids in ``paid``); credit memos number on their own.
    if entity == "Invoice" and doc_id in company.paid:
        raise business(
            f"This transaction is linked to a payment and cannot be voided or deleted. Remove "
            f"the payment applied to {entity} {doc_id} first."
        )
    when = existing.get("TxnDate")
    if (
        company.closing_date is not None
        and when
        and date.fromisoformat(when) <= company.closing_date
    ):
        raise business(
            "You can't create or change a transaction dated on or before the closing date of "
            f"the books ({company.closing_date.isoformat()}).",
            "TxnDate",
        )
    return existing


def _voided(line: JSON) -> JSON:
    changed = {**line, "Amount": _ZERO}
    detail = line.get("SalesItemLineDetail")
    if isinstance(detail, dict):
        changed["SalesItemLineDetail"] = {**detail, "Qty": _ZERO}
    return changed


def void_document(company: Company, entity: str, obj: Any, now: Callable[[], str]) -> JSON:
    """Void the invoice ``obj`` names (``Id``, ``SyncToken``); returns it as stored."""
    if entity != "Invoice":
        raise validation(
            "4001", "Unsupported Operation", f"Operation void is not supported for {entity}"
        )
    return void_stored(company, entity, _current(company, entity, obj), now())


def void_stored(company: Company, entity: str, existing: JSON, now: str) -> JSON:
    """Void a stored invoice or credit memo: every amount zero, "Voided" before its memo."""
    note = str(existing.get("PrivateNote") or "")
    if note.startswith("Voided") and existing.get("TotalAmt") == _ZERO:
        return existing
    voided = {
        **existing,
        "Line": [_voided(line) for line in existing.get("Line", [])],
        "TotalAmt": _ZERO,
        "Balance": _ZERO,
        "TxnTaxDetail": {"TotalTax": _ZERO, "TaxLine": []},
        "PrivateNote": f"Voided - {note}" if note else "Voided",
        "SyncToken": str(int(existing["SyncToken"]) + 1),
        "MetaData": {**existing.get("MetaData", {}), "LastUpdatedTime": now},
    }
    if entity == "CreditMemo":
        voided["RemainingCredit"] = _ZERO
    company.table(entity)[voided["Id"]] = voided
    return voided


def delete_document(company: Company, entity: str, obj: Any) -> JSON:
    """Delete the document ``obj`` names; returns QuickBooks' short answer."""
    existing = _current(company, entity, obj)
    delete_stored(company, entity, existing["Id"])
    return {"Id": existing["Id"], "status": "Deleted", "domain": "QBO"}


def delete_stored(company: Company, entity: str, document_id: str) -> None:
    """Delete a stored document: reads then answer 610 and queries leave it out."""
    del company.table(entity)[document_id]
    company.paid.discard(document_id)
