"""Delivering translated documents: create or update, one at a time or in batches.

The hooks translate (pure) and hand :class:`~billbridge_xero.translate.XeroDocument` values here;
this module decides the requests, keys and what the answers mean for each delivery.

* **Create** is ``PUT`` (Xero creates only, so a retry can never overwrite anything);
  **update** is ``POST`` with the ``InvoiceID``/``CreditNoteID`` recorded in the ledger.
  **Replace**, when the bill became the other kind of document (an invoice whose bill now
  totals less than zero, or back): the earlier document is voided (a draft deleted) and the
  new kind created (:mod:`billbridge_xero.void`).
* **Idempotency.** Every write carries an ``Idempotency-Key`` made by
  :func:`billbridge_xero.client.idempotency_key` from the core's key and the body: for one
  document the delivery's key (per bill, version and integration), for a batch request the
  key the core gives ``send_bills`` for its set of deliveries, so the same batch sent again
  gets the same keys. Xero keeps keys for a short replay window only, so the durable guard is
  the document number, unique per organisation for sales documents: a create refused with
  "Invoice # must be unique." is **reconciled**.
* **Reconciling a duplicate number** (:func:`billbridge.plugin.reconcile.reconcile_by_number`).
  The existing document is looked up by number. It counts as the one made earlier for this
  bill (its create answer was lost, or the ledger was) when it has the same contact, the same
  currency, the same document date and, when a ``Reference`` is sent, the same reference: the
  number itself comes from the bill (m3ter's sequential invoice number or external reference,
  one per bill), and those fields tell it apart from a document someone keyed in by hand or
  another bill given the same number. Such a document is updated (unless paid or voided:
  ``InvoiceAlreadyPaid``); any other is reported as "the number already belongs to another
  Xero document" (``DestinationValidationError``) and left alone.
* **Batches** (``send_bills``, bookkeeping by
  :func:`billbridge.plugin.batches.send_in_batches`): creates and updates, invoices and credit
  notes go in separate requests of at most 50 documents and under 3.5 MB, with
  ``summarizeErrors=false`` so each document succeeds or fails alone; results are matched back
  by position. If the first request fails as a whole the error is raised for the core to
  handle; if a later one does, the documents already delivered keep their results and the rest
  get that error, because raising would throw away what Xero has already accepted (after 429,
  401 or 403 the remaining requests are not sent).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import attrs

from billbridge.domain.models import LedgerEntry, dumps
from billbridge.errors import (
    DestinationValidationError,
    InvoiceAlreadyPaid,
    PermanentError,
)
from billbridge.plugin.batches import Chunking, send_apart, send_in_batches
from billbridge.plugin.contract import Delivery, DeliveryOutcome, SendResult
from billbridge.plugin.reconcile import Claim, reconcile_by_number
from billbridge.plugin.state import record_fallbacks, record_totals
from billbridge_xero.client import (
    MAX_BODY_BYTES,
    MAX_ELEMENTS,
    DuplicateNumber,
    ElementResult,
    XeroClient,
    element_error,
    idempotency_key,
)
from billbridge_xero.dates import parse_xero_date
from billbridge_xero.fallbacks import explained
from billbridge_xero.translate import XeroDocument
from billbridge_xero.void import planned_void, replace, replaces

__all__ = [
    "Prepared",
    "document_url",
    "planned_request",
    "prepare",
    "send_document",
    "send_documents",
]

Method = Literal["PUT", "POST"]

_TERMINAL_STATUSES = frozenset({"PAID", "VOIDED"})
#: Bytes of a request body around its documents: '{"CreditNotes":[' … ']}' and a margin.
_ENVELOPE = 64


def document_url(kind: str, document_id: str) -> str:
    """Where a person opens the document in Xero."""
    if kind == "CreditNote":
        return (
            f"https://go.xero.com/AccountsReceivable/ViewCreditNote.aspx?creditNoteID={document_id}"
        )
    return f"https://go.xero.com/AccountsReceivable/View.aspx?InvoiceID={document_id}"


def _result(
    document: XeroDocument,
    saved: ElementResult,
    *,
    created: bool,
    reconciled: bool = False,
) -> SendResult:
    element = saved.element
    external_id = str(element.get(document.id_field) or "")
    if not external_id:
        raise PermanentError(f"Xero saved {document.label} but returned no {document.id_field}")
    number = element.get(document.number_field) or document.number
    state: dict[str, Any] = {"kind": document.kind, "status": element.get("Status")}
    record_fallbacks(state, document.plan.fallbacks())
    record_totals(
        state,
        document.totals,
        total=element.get("Total"),
        tax=element.get("TotalTax"),
        system="Xero",
        document=document.label,
    )
    warnings = [*document.warnings, *saved.warnings]
    if warnings:
        state["warnings"] = warnings
    if reconciled:
        state["reconciled"] = True
    return SendResult(
        external_id=external_id,
        number=str(number) if number else None,
        url=document_url(document.kind, external_id),
        state=state,
        created=created,
    )


def _first_write(
    document: XeroDocument, previous: LedgerEntry | None
) -> tuple[Method, dict[str, Any]]:
    """The method and element that deliver ``document``: ``PUT`` to create (also when it
    replaces a document of the other kind), ``POST`` to update."""
    if previous is None or replaces(document, previous):
        return "PUT", document.for_create()
    return "POST", document.for_update(previous.external_id)


def planned_request(document: XeroDocument, previous: LedgerEntry | None) -> dict[str, Any]:
    """The request :func:`send_document` sends first for ``document``, without sending it.

    ``method`` (``PUT`` to create, ``POST`` to update ``previous``), ``path``, ``query``
    (``summarizeErrors=false``, and ``unitdp=4`` when a unit amount needs it), ``operation``
    (``create``, ``update``, or ``replace`` when the bill became the other kind of document),
    ``entity`` and ``body`` exactly as sent. A replacement also shows ``replaces``: the earlier
    document and the request that voids it (:func:`~billbridge_xero.void.planned_void`). The
    ``Idempotency-Key`` header is derived from the delivery's key and this body when sent.
    ``totals`` are the totals Xero's document should show, tax included.
    """
    method, element = _first_write(document, previous)
    query = {"summarizeErrors": "false"}
    if document.unitdp == 4:
        query["unitdp"] = "4"
    extra: dict[str, Any] = {}
    operation = "create" if method == "PUT" else "update"
    if previous is not None and replaces(document, previous):
        operation, extra["replaces"] = "replace", planned_void(previous)
    return {
        "method": method,
        "path": f"/api.xro/2.0/{document.endpoint}",
        "query": query,
        "operation": operation,
        "entity": document.kind,
        "body": {document.endpoint: [element]},
        "warnings": list(document.warnings),
        "fallbackLines": document.plan.fallbacks(),
        "totals": document.totals.to_json(),
        **extra,
    }


def _write(
    client: XeroClient,
    document: XeroDocument,
    method: Method,
    elements: list[dict[str, Any]],
    base_key: str,
    *,
    unitdp: int,
    batch: bool = False,
) -> list[ElementResult]:
    """Write ``elements`` (documents of ``document``'s kind) with a key bound to the body."""
    operation = f"{'batch-' if batch else ''}{'create' if method == 'PUT' else 'update'}"
    body = dumps({document.endpoint: elements}).encode("utf-8")
    return client.write(
        document.kind,
        method,
        elements,
        idempotency_key=idempotency_key(base_key, f"{operation}-{document.endpoint}", body),
        unitdp=unitdp,
    )


def _same_bill(existing: dict[str, Any], document: XeroDocument) -> bool:
    """True when ``existing`` carries this bill's durable marks (see the module notes)."""
    payload = document.payload
    contact = existing.get("Contact")
    contact_id = contact.get("ContactID") if isinstance(contact, dict) else None
    if str(contact_id or "").casefold() != document.contact_id.casefold():
        return False
    if str(existing.get("CurrencyCode") or "") != payload.get("CurrencyCode"):
        return False
    if existing.get("Type") != payload.get("Type"):
        return False
    if "Date" in payload:
        try:
            if parse_xero_date(str(existing.get("Date"))).isoformat() != payload["Date"]:
                return False
        except ValueError:
            return False
    return "Reference" not in payload or existing.get("Reference") == payload["Reference"]


def _reconcile(
    client: XeroClient, document: XeroDocument, refused: DuplicateNumber, base_key: str
) -> SendResult:
    number = document.number or refused.number

    def live_holders(number: str) -> list[dict[str, Any]]:
        # A deleted draft gives its number up: only live documents can hold it.
        return [
            doc
            for doc in client.find_by_number(document.kind, number)
            if doc.get("Status") != "DELETED"
        ]

    def claim(holder: dict[str, Any]) -> Claim:
        # Xero documents carry no mark of the bill version: ours is updated to this version.
        return Claim.THIS_BILL if _same_bill(holder, document) else Claim.ANOTHER

    def update(target: dict[str, Any]) -> SendResult:
        status = str(target.get("Status") or "")
        external_id = str(target.get(document.id_field))
        if status in _TERMINAL_STATUSES:
            # Paid or voided documents cannot change (REFERENCE: "a paid or voided invoice
            # cannot be updated"): asking Xero would only earn the same refusal.
            raise InvoiceAlreadyPaid(
                f"{document.label} already exists in Xero as {external_id} with status "
                f"{status}; it cannot be changed any more"
            )
        element = document.for_update(external_id)
        (saved,) = _write(client, document, "POST", [element], base_key, unitdp=document.unitdp)
        if not saved.ok:
            raise element_error(saved, document.label)
        return _result(document, saved, created=False, reconciled=True)

    def taken(holder: dict[str, Any] | None) -> DestinationValidationError:
        other = holder.get(document.id_field) if holder is not None else None
        which = f" ({other})" if other else ""
        return DestinationValidationError(
            f"{document.label}: the number {number} already belongs to another Xero "
            f"{'invoice' if document.kind == 'Invoice' else 'credit note'}{which} with a "
            "different contact, currency, date or reference; give the bill another number, or "
            "choose another invoice number source",
            detail=refused.detail,
        )

    return reconcile_by_number(
        number, refused, find=live_holders, claim=claim, update=update, taken=taken
    )


def _settle(
    client: XeroClient,
    document: XeroDocument,
    method: Method,
    base_key: str,
    saved: ElementResult,
) -> SendResult:
    """What Xero's answer for one document means; raises the error a refusal stands for."""
    if saved.ok:
        return _result(document, saved, created=method == "PUT")
    error = explained(document, element_error(saved, document.label))
    if method == "PUT" and isinstance(error, DuplicateNumber):
        return _reconcile(client, document, error, base_key)
    raise error


def send_document(
    client: XeroClient,
    document: XeroDocument,
    *,
    previous: LedgerEntry | None,
    idempotency_key: str,
) -> SendResult:
    """Create ``document`` in Xero, or update the one recorded in ``previous``.

    :raises billbridge.errors.DestinationError: what Xero's answer means (see
        :mod:`billbridge_xero.client`); a duplicate number is reconciled first.
    """
    if previous is not None and replaces(document, previous):
        return replace(
            client,
            document,
            previous,
            idempotency_key,
            create=lambda: _write_one(client, document, None, idempotency_key),
        )
    return _write_one(client, document, previous, idempotency_key)


def _write_one(
    client: XeroClient, document: XeroDocument, previous: LedgerEntry | None, key: str
) -> SendResult:
    method, element = _first_write(document, previous)
    (saved,) = _write(client, document, method, [element], key, unitdp=document.unitdp)
    return _settle(client, document, method, key, saved)


# --- batches ---------------------------------------------------------------------------------


@attrs.frozen
class Prepared:
    """One delivery ready for a batch: its document and the element to write, by which method.

    ``size`` is the element's size in the request body, in bytes.
    """

    delivery: Delivery
    document: XeroDocument
    method: Method
    element: dict[str, Any]
    size: int
    #: The bill became the other kind of document: sent on its own, not in a batch.
    replacing: bool = False


def prepare(document: XeroDocument, delivery: Delivery) -> Prepared:
    """Ready ``document`` (the translation of ``delivery``) for :func:`send_documents`.

    A bill that became the other kind of document is marked ``replacing``: it is sent on its
    own.

    :raises billbridge.errors.DestinationValidationError: the document alone is too large for
        one request.
    """
    method, element = _first_write(document, delivery.previous)
    size = len(dumps(element).encode("utf-8"))
    if size + _ENVELOPE >= MAX_BODY_BYTES:
        raise DestinationValidationError(
            f"{document.label} alone is {size:,} bytes; Xero takes less than 3.5 MB per request"
        )
    return Prepared(
        delivery, document, method, element, size, replacing=replaces(document, delivery.previous)
    )


#: One endpoint and method per request, at most 50 documents, under 3.5 MB with the envelope
#: (each document counts one byte more for the comma between them).
_CHUNKING: Chunking[Prepared] = Chunking(
    MAX_ELEMENTS,
    group=lambda item: (item.document.kind, item.method),
    size=lambda item: item.size + 1,
    max_size=MAX_BODY_BYTES - _ENVELOPE - 1,
)


def send_documents(
    client: XeroClient,
    prepared: Sequence[Prepared | Exception],
    idempotency_key: str,
) -> list[DeliveryOutcome]:
    """Deliver several documents with as few requests as Xero allows, outcomes in order.

    ``prepared[i]`` is the i-th delivery made ready by :func:`prepare`, or the exception it
    ended with (kept as its outcome). ``idempotency_key`` is the core's key of this set of
    deliveries: each request's ``Idempotency-Key`` is derived from it and the request's body.

    :raises Exception: what the first request raised when it failed as a whole (rate limited,
        token refused, access refused, Xero unavailable).
    """

    def send(chunk: Sequence[Prepared]) -> list[ElementResult]:
        first = chunk[0]
        return _write(
            client,
            first.document,
            first.method,
            [item.element for item in chunk],
            idempotency_key,
            unitdp=max(item.document.unitdp for item in chunk),
            batch=True,
        )

    def settle(item: Prepared, saved: ElementResult) -> SendResult:
        return _settle(client, item.document, item.method, item.delivery.idempotency_key, saved)

    def together(items: Sequence[Prepared | Exception]) -> list[DeliveryOutcome]:
        return send_in_batches(
            items,
            chunking=_CHUNKING,
            send=send,
            settle=settle,
            system="Xero",
            describe=lambda item: item.document.label,
        )

    # A replacement is a read, a void and a create, in order: it cannot go in a batch request.
    return send_apart(
        prepared,
        apart=lambda item: item.replacing,
        send_one=lambda item: send_document(
            client,
            item.document,
            previous=item.delivery.previous,
            idempotency_key=item.delivery.idempotency_key,
        ),
        send_rest=together,
    )
