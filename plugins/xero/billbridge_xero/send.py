"""Delivering translated documents: create or update, one at a time or in batches.

The hooks translate (pure) and hand :class:`~billbridge_xero.translate.XeroDocument` values here;
this module decides the requests, keys and what the answers mean for each delivery.

* **Create** is ``PUT`` (Xero creates only, so a retry can never overwrite anything);
  **update** is ``POST`` with the ``InvoiceID``/``CreditNoteID`` recorded in the ledger.
* **Idempotency.** Every write carries an ``Idempotency-Key`` made by
  :func:`billbridge_xero.client.idempotency_key` from the hook's key (per bill, version and
  integration) and the body. A batch request's base is a digest of its deliveries' keys in
  order, so the same batch retried gets the same key. Xero keeps keys for a short replay window
  only, so the durable guard is the document number, unique per organisation for sales
  documents: a create refused with "Invoice # must be unique." is **reconciled**.
* **Reconciling a duplicate number.** The existing document is looked up by number. It counts
  as the one made earlier for this bill (its create answer was lost, or the ledger was) when it
  has the same contact, the same currency, the same document date and, when a ``Reference`` is
  sent, the same reference: the number itself comes from the bill (m3ter's sequential invoice
  number or external reference, one per bill), and those fields tell it apart from a document
  someone keyed in by hand or another bill given the same number. Such a document is updated
  (unless paid or voided: ``InvoiceAlreadyPaid``); any other is reported as "the number already
  belongs to another Xero document" (``DestinationValidationError``) and left alone.
* **Batches** (``send_bills``): creates and updates, invoices and credit notes go in separate
  requests of at most 50 documents and under 3.5 MB, with ``summarizeErrors=false`` so each
  document succeeds or fails alone; results are matched back by position. If the first request
  fails as a whole (429, 401, 403) the error is raised for the core to handle; if a later one
  does, the documents already delivered keep their results and the rest get that error, because
  raising would throw away what Xero has already accepted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Literal

import attrs

from billbridge.domain.models import LedgerEntry, dumps
from billbridge.errors import (
    AuthenticationFailed,
    DestinationError,
    DestinationValidationError,
    InvoiceAlreadyPaid,
    PermanentError,
    RateLimited,
    TokenExpired,
)
from billbridge.plugin.contract import Delivery, DeliveryOutcome, SendResult
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
from billbridge_xero.translate import XeroDocument

__all__ = ["document_url", "planned_request", "send_document", "send_documents"]

Method = Literal["PUT", "POST"]

#: Whole-request failures after which no further request of a batch is sent.
_STOPPING = (RateLimited, TokenExpired, AuthenticationFailed)
_TERMINAL_STATUSES = frozenset({"PAID", "VOIDED"})


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


def _check_kind(document: XeroDocument, previous: LedgerEntry | None) -> None:
    if previous is None:
        return
    previous_kind = str(previous.state.get("kind") or "Invoice")
    if previous_kind != document.kind:
        was = "an invoice" if previous_kind == "Invoice" else "a credit note"
        now = "a credit note" if document.kind == "CreditNote" else "an invoice"
        total = document.plan.total if document.kind == "Invoice" else -document.plan.total
        raise PermanentError(
            f"bill {previous.bill_id} version {previous.bill_version} was delivered to Xero as "
            f"{was} ({previous.external_number or previous.external_id}); this version totals "
            f"{total} {document.plan.currency} and would be {now}, and Xero cannot turn one "
            "into the other: the earlier document is left as it is; adjust it in Xero by hand"
        )


def planned_request(document: XeroDocument, previous: LedgerEntry | None) -> dict[str, Any]:
    """The request :func:`send_document` sends first for ``document``, without sending it.

    ``method`` (``PUT`` to create, ``POST`` to update ``previous``), ``path``, ``query``
    (``summarizeErrors=false``, and ``unitdp=4`` when a unit amount needs it), ``operation``,
    ``entity`` and ``body`` exactly as sent. The ``Idempotency-Key`` header is derived from the
    delivery's key and this body when sent. Raises as :func:`send_document` would when the bill
    turned from an invoice into a credit note or back.
    """
    _check_kind(document, previous)
    if previous is None:
        method, operation, element = "PUT", "create", document.for_create()
    else:
        method, operation = "POST", "update"
        element = document.for_update(previous.external_id)
    query = {"summarizeErrors": "false"}
    if document.unitdp == 4:
        query["unitdp"] = "4"
    return {
        "method": method,
        "path": f"/api.xro/2.0/{document.endpoint}",
        "query": query,
        "operation": operation,
        "entity": document.kind,
        "body": {document.endpoint: [element]},
        "warnings": list(document.warnings),
    }


def _write_one(
    client: XeroClient,
    document: XeroDocument,
    method: Method,
    element: dict[str, Any],
    base_key: str,
) -> ElementResult:
    operation = f"{'create' if method == 'PUT' else 'update'}-{document.endpoint}"
    body = dumps({document.endpoint: [element]}).encode("utf-8")
    (result,) = client.write(
        document.kind,
        method,
        [element],
        idempotency_key=idempotency_key(base_key, operation, body),
        unitdp=document.unitdp,
    )
    return result


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
    if not number:
        raise refused
    # A deleted draft gives its number up: only live documents can hold it.
    candidates = [
        doc
        for doc in client.find_by_number(document.kind, number)
        if doc.get("Status") != "DELETED"
    ]
    ours = [doc for doc in candidates if _same_bill(doc, document)]
    if not ours:
        other = candidates[0].get(document.id_field) if candidates else None
        which = f" ({other})" if other else ""
        raise DestinationValidationError(
            f"{document.label}: the number {number} already belongs to another Xero "
            f"{'invoice' if document.kind == 'Invoice' else 'credit note'}{which} with a different "
            "contact, currency, date or reference; give the bill another number, or choose "
            "another invoice number source",
            detail=refused.detail,
        )
    target = ours[0]
    status = str(target.get("Status") or "")
    external_id = str(target.get(document.id_field))
    if status in _TERMINAL_STATUSES:
        # Paid or voided documents cannot change (REFERENCE: "a paid or voided invoice cannot
        # be updated"): asking Xero would only earn the same refusal.
        raise InvoiceAlreadyPaid(
            f"{document.label} already exists in Xero as {external_id} with status {status}; "
            "it cannot be changed any more"
        )
    saved = _write_one(client, document, "POST", document.for_update(external_id), base_key)
    if not saved.ok:
        raise element_error(saved, document.label)
    return _result(document, saved, created=False, reconciled=True)


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
    _check_kind(document, previous)
    if previous is not None:
        element = document.for_update(previous.external_id)
        saved = _write_one(client, document, "POST", element, idempotency_key)
        if not saved.ok:
            raise element_error(saved, document.label)
        return _result(document, saved, created=False)
    saved = _write_one(client, document, "PUT", document.for_create(), idempotency_key)
    if saved.ok:
        return _result(document, saved, created=True)
    error = element_error(saved, document.label)
    if isinstance(error, DuplicateNumber):
        return _reconcile(client, document, error, idempotency_key)
    raise error


@attrs.define
class _Pending:
    index: int
    delivery: Delivery
    document: XeroDocument
    element: dict[str, Any]
    size: int


def _chunks(pending: Sequence[_Pending]) -> list[list[_Pending]]:
    """Groups of at most 50 documents whose body stays under 3.5 MB, in order."""
    chunks: list[list[_Pending]] = []
    current: list[_Pending] = []
    size = 0
    envelope = 64  # '{"CreditNotes":[' … ']}' and a margin
    for item in pending:
        if current and (
            len(current) >= MAX_ELEMENTS or size + item.size + 1 + envelope >= MAX_BODY_BYTES
        ):
            chunks.append(current)
            current, size = [], 0
        current.append(item)
        size += item.size + 1
    if current:
        chunks.append(current)
    return chunks


def _batch_key(method: Method, chunk: Sequence[_Pending], body: bytes) -> str:
    joined = "\n".join(p.delivery.idempotency_key for p in chunk)
    base = hashlib.sha256(joined.encode("utf-8")).hexdigest()[:32]
    operation = f"batch-{'create' if method == 'PUT' else 'update'}-{chunk[0].document.endpoint}"
    return idempotency_key(base, operation, body)


def _outcome(client: XeroClient, pending: _Pending, saved: ElementResult, method: Method) -> Any:
    document = pending.document
    if saved.ok:
        return _result(document, saved, created=method == "PUT")
    error = element_error(saved, document.label)
    if method == "PUT" and isinstance(error, DuplicateNumber):
        try:
            return _reconcile(client, document, error, pending.delivery.idempotency_key)
        except DestinationError as reconcile_error:
            return reconcile_error
    return error


def send_documents(
    client: XeroClient,
    deliveries: Sequence[Delivery],
    documents: Sequence[XeroDocument | Exception],
) -> list[DeliveryOutcome]:
    """Deliver several documents with as few requests as Xero allows.

    ``documents[i]`` is the translation of ``deliveries[i]``, or the exception translating it
    raised (kept as that delivery's outcome). Returns one outcome per delivery, in order.

    :raises billbridge.errors.DestinationError: the first request failed as a whole (rate
        limited, token refused, access refused).
    """
    outcomes: list[DeliveryOutcome | None] = [None] * len(deliveries)
    groups: dict[tuple[str, Method], list[_Pending]] = {}
    for index, (delivery, document) in enumerate(zip(deliveries, documents, strict=True)):
        if isinstance(document, Exception):
            outcomes[index] = document
            continue
        try:
            _check_kind(document, delivery.previous)
        except PermanentError as exc:
            outcomes[index] = exc
            continue
        if delivery.previous is None:
            method: Method = "PUT"
            element = document.for_create()
        else:
            method = "POST"
            element = document.for_update(delivery.previous.external_id)
        size = len(dumps(element).encode("utf-8"))
        if size + 64 >= MAX_BODY_BYTES:
            outcomes[index] = DestinationValidationError(
                f"{document.label} alone is {size:,} bytes; Xero takes less than 3.5 MB per request"
            )
            continue
        groups.setdefault((document.kind, method), []).append(
            _Pending(index, delivery, document, element, size)
        )

    sent_any = False
    stop: DestinationError | None = None
    for (_kind, method), members in groups.items():
        for chunk in _chunks(members):
            if stop is not None:
                for pending in chunk:
                    outcomes[pending.index] = stop
                continue
            endpoint = chunk[0].document.endpoint
            body = dumps({endpoint: [p.element for p in chunk]}).encode("utf-8")
            try:
                results = client.write(
                    chunk[0].document.kind,
                    method,
                    [p.element for p in chunk],
                    idempotency_key=_batch_key(method, chunk, body),
                    unitdp=max(p.document.unitdp for p in chunk),
                )
            except _STOPPING as exc:
                if not sent_any:
                    raise
                stop = exc
                for pending in chunk:
                    outcomes[pending.index] = exc
                continue
            except DestinationError as exc:
                for pending in chunk:
                    outcomes[pending.index] = exc
                continue
            sent_any = True
            for pending, saved in zip(chunk, results, strict=True):
                outcomes[pending.index] = _outcome(client, pending, saved, method)
    return [
        outcome
        if outcome is not None
        else PermanentError("internal error: a delivery was left without an outcome")
        for outcome in outcomes
    ]
