"""Replacing a QuickBooks document with the other kind: an invoice whose bill became a credit.

QuickBooks cannot change a document's type, so when a bill version's total changes sign the
document an earlier version made is voided and the new kind created, with
:func:`billbridge.plugin.replace.replace_document` (the algorithm, the bookkeeping and the
note). What is QuickBooks' own is here (REFERENCE.md, "Voiding"):

* an invoice is voided with ``POST …/invoice?operation=void`` (``Id`` and current
  ``SyncToken``): it stays, with its number, every amount zero and "Voided" in its memo;
* a paid invoice (a linked ``Payment``, or a balance below its total) cannot be voided:
  ``InvoiceAlreadyPaid``; a credit memo applied to an invoice likewise;
* QuickBooks' API has no void for a credit memo, so a credit memo is never replaced while it
  exists: the run stops with a ``PermanentError`` saying so, and once a person has deleted it
  in QuickBooks, a replay creates the invoice (the credit memo is then ``MISSING``).

The earlier document is read first: that gives its current ``SyncToken`` and tells a voided
invoice from an open one, so a retry after a lost answer never voids twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Literal, NoReturn

from billbridge.domain.models import LedgerEntry
from billbridge.errors import PermanentError
from billbridge.plugin.contract import SendResult
from billbridge.plugin.replace import Earlier, Replacement, Standing, kind_label, replace_document
from billbridge_quickbooks.client import MINOR_VERSION, QuickBooksClient
from billbridge_quickbooks.translate import QuickBooksDocument

__all__ = ["is_voided", "planned_void", "previous_entity", "replace", "replaces"]

_VOIDED = re.compile(r"\bVoided\b")


def previous_entity(previous: LedgerEntry) -> str:
    """The entity the earlier delivery made (``Invoice`` for entries from before it was kept)."""
    entity = previous.state.get("entity")
    return entity if isinstance(entity, str) and entity else "Invoice"


def replaces(document: QuickBooksDocument, previous: LedgerEntry | None) -> bool:
    """True when ``document`` is of another kind than the one ``previous`` recorded."""
    return previous is not None and previous_entity(previous) != document.entity


def _amount(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def is_voided(document: Mapping[str, Any]) -> bool:
    """True for a voided document: nothing left to pay, and "Voided" in its memo."""
    return _amount(document.get("TotalAmt")) == 0 and bool(
        _VOIDED.search(str(document.get("PrivateNote") or ""))
    )


def _standing(entity: str, document: Mapping[str, Any] | None) -> Standing:
    if document is None:
        return "MISSING"
    if is_voided(document):
        return "VOIDED"
    linked = document.get("LinkedTxn") or []
    total = _amount(document.get("TotalAmt"))
    if entity == "Invoice":
        paid = any(t.get("TxnType") == "Payment" for t in linked if isinstance(t, Mapping))
        if paid or _amount(document.get("Balance")) < total:
            return "PAID"
    elif linked or _amount(document.get("RemainingCredit")) < total:
        # A credit memo applied to an invoice has been used: as good as paid.
        return "PAID"
    return "OPEN"


def _cannot_void(document: QuickBooksDocument, earlier: Earlier, previous: LedgerEntry) -> NoReturn:
    number = f" ({earlier.number})" if earlier.number else ""
    totals = document.totals
    raise PermanentError(
        f"QuickBooks cannot void a credit memo through its API: credit memo {earlier.id}"
        f"{number}, made for version {previous.bill_version} of bill {document.bill_id}, stays "
        f"as it is, and version {document.bill_version} totals {totals.bill} {totals.currency}, "
        f"which needs {'an' if document.entity == 'Invoice' else 'a'} "
        f"{kind_label(document.entity)}: delete the credit memo in QuickBooks if it should go, "
        "then replay the run"
    )


def replace(
    client: QuickBooksClient,
    document: QuickBooksDocument,
    previous: LedgerEntry,
    idempotency_key: str,
    create: Callable[[], SendResult],
) -> SendResult:
    """Void the document ``previous`` recorded and create ``document`` with ``create``."""
    entity = previous_entity(previous)
    read: dict[str, Any] = {}

    def look() -> Earlier:
        found = client.find(entity, previous.external_id)
        read.update(found or {})
        number = (found or {}).get("DocNumber") or previous.external_number
        return Earlier(entity, previous.external_id, number, _standing(entity, found))

    def void(earlier: Earlier) -> Literal["VOIDED", "DELETED"]:
        if earlier.kind != "Invoice":
            _cannot_void(document, earlier, previous)
        client.void(earlier.kind, earlier.id, str(read.get("SyncToken", "0")), idempotency_key)
        return "VOIDED"

    replacement = Replacement(
        system="QuickBooks",
        bill_id=document.bill_id,
        bill_version=document.bill_version,
        total=document.totals.bill,
        currency=document.totals.currency,
        kind=document.entity,
        number=document.doc_number,
    )
    return replace_document(replacement, previous, look=look, void=void, create=create)


def planned_void(previous: LedgerEntry) -> dict[str, Any]:
    """What a preview shows of the earlier document and the request that voids it.

    ``void`` is ``None`` for a credit memo, which QuickBooks cannot void. The ``SyncToken`` is
    the ledger's (``None`` when it has none); the real one is read when sending.
    """
    entity = previous_entity(previous)
    token = previous.state.get("SyncToken")
    void = None
    if entity == "Invoice":
        void = {
            "method": "POST",
            "path": "/v3/company/{realmId}/invoice",
            "query": {"operation": "void", "minorversion": MINOR_VERSION},
            "body": {
                "Id": previous.external_id,
                "SyncToken": None if token is None or token == "" else str(token),
            },
        }
    return {
        "entity": entity,
        "id": previous.external_id,
        "number": previous.external_number,
        "void": void,
    }
