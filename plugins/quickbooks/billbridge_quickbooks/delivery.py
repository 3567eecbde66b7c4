"""Writing translated documents to QuickBooks: create, update, reconcile, batch.

The hooks call these after :func:`~billbridge_quickbooks.translate.translate_bill`; the
transport and error mapping are :class:`~billbridge_quickbooks.client.QuickBooksClient`'s.
What lives here is the policy:

* **create** with the delivery's idempotency key as ``requestid``, so a retry after a lost
  answer gets the original document;
* **update** the document an earlier bill version made (full update, current ``SyncToken``,
  re-read once on 5010); an invoice that must become a credit memo (or back) is refused, since
  QuickBooks cannot change a document's type;
* **reconcile** a duplicate document number (6140): the document holding the number is looked
  up; if its ``PrivateNote`` names this bill it is ours (an earlier attempt whose answer was
  lost, or a ledger that was reset) and is adopted, otherwise the number belongs to someone
  else and a person must decide;
* **batch** many deliveries, 30 per ``/batch`` request, creates and updates mixed, each
  delivery's outcome on its own.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from typing import Any

import attrs

from billbridge.domain.models import LedgerEntry, dumps
from billbridge.errors import (
    DestinationError,
    DestinationValidationError,
    PermanentError,
    TransientError,
)
from billbridge.plugin.contract import DeliveryOutcome, SendResult
from billbridge_quickbooks.client import (
    BATCH_MAX_ITEMS,
    BATCH_REQUEST_ID_MAX,
    MINOR_VERSION,
    BatchOperation,
    DuplicateDocumentNumber,
    Fault,
    QuickBooksClient,
    StaleObject,
    request_id_for,
)
from billbridge_quickbooks.translate import QuickBooksDocument, marked_bill

__all__ = [
    "Prepared",
    "planned_request",
    "result_for",
    "send_document",
    "send_documents",
]

_BATCH_NAMESPACE = uuid.UUID("9b7c1c3e-4d0b-5a51-9f0e-6a1d2b3c4d5e")


def result_for(
    document: QuickBooksDocument, written: dict[str, Any], *, created: bool
) -> SendResult:
    """The :class:`SendResult` for a document QuickBooks has written."""
    external_id = str(written.get("Id", ""))
    if not external_id:
        raise DestinationValidationError(f"QuickBooks answered without the {document.entity} Id")
    number = written.get("DocNumber")
    return SendResult(
        external_id=external_id,
        number=str(number) if number is not None else None,
        url=document.url(external_id),
        state={"SyncToken": str(written.get("SyncToken", "")), "entity": document.entity},
        created=created,
    )


def _previous_entity(previous: LedgerEntry) -> str:
    entity = previous.state.get("entity")
    # Entries written before the entity was recorded were invoices: credit memos came later.
    return entity if isinstance(entity, str) and entity else "Invoice"


def _check_same_entity(document: QuickBooksDocument, previous: LedgerEntry) -> None:
    before = _previous_entity(previous)
    if before != document.entity:
        sign = "negative" if document.entity == "CreditMemo" else "positive"
        raise PermanentError(
            f"bill {document.bill_id} version {document.bill_version} has a {sign} total, "
            f"which makes it a {document.entity}, but an earlier version was delivered as "
            f"{before} {previous.external_id}; QuickBooks cannot change a document's type: "
            f"void or delete {before} {previous.external_id} in QuickBooks and replay the run"
        )


def _update_payload(
    document: QuickBooksDocument, external_id: str, sync_token: str
) -> dict[str, Any]:
    return {**document.payload, "Id": external_id, "SyncToken": sync_token}


def _sync_token(client: QuickBooksClient, entity: str, previous: LedgerEntry) -> str:
    token = previous.state.get("SyncToken")
    if token is None or token == "":
        return str(client.read(entity, previous.external_id).get("SyncToken", "0"))
    return str(token)


def planned_request(document: QuickBooksDocument, previous: LedgerEntry | None) -> dict[str, Any]:
    """The request :func:`send_document` sends first for ``document``, without sending it.

    ``method``, ``path`` (the realm as ``{realmId}``), ``query``, ``operation`` (``create`` or
    ``update``), ``entity`` and ``body`` exactly as sent (a full update carries ``Id``, the
    ledger's ``SyncToken`` and ``sparse: false``; when the ledger has no SyncToken it is read
    from QuickBooks at send time, shown here as ``null``). The ``requestid`` is derived from the
    delivery's idempotency key and this body when sent. Raises as :func:`send_document` would
    for an invoice that became a credit memo.
    """
    body: dict[str, Any] = dict(document.payload)
    operation = "create"
    if previous is not None:
        _check_same_entity(document, previous)
        token = previous.state.get("SyncToken")
        body = {
            **document.payload,
            "Id": previous.external_id,
            "SyncToken": None if token is None or token == "" else str(token),
            "sparse": False,
        }
        operation = "update"
    return {
        "method": "POST",
        "path": f"/v3/company/{{realmId}}/{document.entity.lower()}",
        "query": {"minorversion": MINOR_VERSION},
        "operation": operation,
        "entity": document.entity,
        "body": body,
        "warnings": list(document.warnings),
    }


def send_document(
    client: QuickBooksClient,
    document: QuickBooksDocument,
    *,
    previous: LedgerEntry | None,
    idempotency_key: str,
) -> SendResult:
    """Create ``document``, or update the one ``previous`` recorded; see the module docs."""
    if previous is None:
        try:
            written = client.create(document.entity, document.payload, idempotency_key)
        except DuplicateDocumentNumber as duplicate:
            return _reconcile(client, document, duplicate, idempotency_key)
        return result_for(document, written, created=True)
    _check_same_entity(document, previous)
    payload = _update_payload(
        document, previous.external_id, _sync_token(client, document.entity, previous)
    )
    try:
        written = client.update(document.entity, payload, idempotency_key)
    except DuplicateDocumentNumber as duplicate:
        raise _taken(document, duplicate, _holder(client, document)) from None
    return result_for(document, written, created=False)


def _taken(
    document: QuickBooksDocument,
    duplicate: DuplicateDocumentNumber,
    holder: dict[str, Any] | None,
) -> DestinationValidationError:
    number = document.doc_number or "?"
    held_by = f" (Id {holder.get('Id')})" if holder is not None else ""
    kind = "invoice" if document.entity == "Invoice" else "credit memo"
    return DestinationValidationError(
        f"{kind} number {number} already belongs to another {kind}{held_by} in QuickBooks, "
        f"not one billbridge made for bill {document.bill_id}",
        detail=duplicate.detail,
    )


def _holder(client: QuickBooksClient, document: QuickBooksDocument) -> dict[str, Any] | None:
    if not document.doc_number:
        return None
    return client.find_by_doc_number(document.entity, document.doc_number)


def _reconcile(
    client: QuickBooksClient,
    document: QuickBooksDocument,
    duplicate: DuplicateDocumentNumber,
    idempotency_key: str,
) -> SendResult:
    """A create hit 6140: adopt the holder of the number if it is this bill's, else refuse."""
    if not document.doc_number:
        # Without a DocNumber of ours the duplicate is QuickBooks' auto-numbering colliding.
        raise duplicate
    holder = _holder(client, document)
    if holder is None:
        # 6140 without a visible holder: perhaps a document of another type holds the number.
        raise duplicate
    marked = marked_bill(holder.get("PrivateNote"))
    if marked is None or marked[0] != document.bill_id:
        raise _taken(document, duplicate, holder)
    if marked[1] == document.bill_version:
        # Our own earlier attempt for this very version: nothing to write.
        return result_for(document, holder, created=True)
    payload = _update_payload(document, str(holder["Id"]), str(holder.get("SyncToken", "0")))
    written = client.update(document.entity, payload, idempotency_key)
    return result_for(document, written, created=True)


# --- batches ---------------------------------------------------------------------------------


@attrs.frozen
class Prepared:
    """One delivery ready for a batch: its translated document, ledger entry and key."""

    document: QuickBooksDocument
    previous: LedgerEntry | None
    idempotency_key: str


def _batch_request_id(ops: Sequence[tuple[BatchOperation, str]]) -> str:
    # Deterministic over the items and their exact bodies: a batch retried unchanged replays
    # QuickBooks' original answer, a changed one is new. A UUID is 36 characters, the limit.
    text = "\n".join(f"{op.bid}:{rid}" for op, rid in ops)
    return str(uuid.uuid5(_BATCH_NAMESPACE, hashlib.sha256(text.encode()).hexdigest()))


def send_documents(
    client: QuickBooksClient,
    prepared: Sequence[Prepared | DestinationError],
) -> list[DeliveryOutcome]:
    """Deliver many documents, ``BATCH_MAX_ITEMS`` per ``/batch`` request, outcomes in order.

    An entry that is already an error (translation failed) stays that delivery's outcome. Items
    the batch refused with 5010 or 6140 are settled one by one the way :func:`send_document`
    settles them. When a whole batch request fails (401, 429, 5xx) before any batch succeeded
    the error is raised, since nothing was delivered; after one succeeded, the failed batches'
    deliveries get that error as their outcome so that the delivered ones are not lost.
    """
    outcomes: list[DeliveryOutcome | None] = [
        entry if isinstance(entry, Exception) else None for entry in prepared
    ]
    pending: list[tuple[int, Prepared, BatchOperation, str]] = []
    for index, entry in enumerate(prepared):
        if isinstance(entry, Exception):
            continue
        try:
            op = _operation(client, entry, f"b{len(pending) % BATCH_MAX_ITEMS}")
        except DestinationError as exc:
            outcomes[index] = exc
            continue
        rid = request_id_for(
            entry.idempotency_key, dumps(op.to_json()).encode("utf-8"), limit=BATCH_REQUEST_ID_MAX
        )
        pending.append((index, entry, op, rid))

    delivered_any = False
    for start in range(0, len(pending), BATCH_MAX_ITEMS):
        chunk = pending[start : start + BATCH_MAX_ITEMS]
        try:
            results = client.batch(
                [op for _, _, op, _ in chunk],
                _batch_request_id([(op, rid) for _, _, op, rid in chunk]),
            )
        except DestinationError as exc:
            if not delivered_any:
                raise
            for index, _, _, _ in chunk:
                outcomes[index] = exc
            continue
        delivered_any = True
        for index, entry, op, _ in chunk:
            outcomes[index] = _settle(client, entry, op, results.get(op.bid))
    return [
        outcome if outcome is not None else TransientError("the delivery was not processed")
        for outcome in outcomes
    ]


def _operation(client: QuickBooksClient, entry: Prepared, bid: str) -> BatchOperation:
    document = entry.document
    if entry.previous is None:
        return BatchOperation(bid, "create", document.entity, document.payload)
    _check_same_entity(document, entry.previous)
    token = _sync_token(client, document.entity, entry.previous)
    payload = {**_update_payload(document, entry.previous.external_id, token), "sparse": False}
    return BatchOperation(bid, "update", document.entity, payload)


def _settle(
    client: QuickBooksClient,
    entry: Prepared,
    op: BatchOperation,
    result: dict[str, Any] | Fault | None,
) -> DeliveryOutcome:
    document = entry.document
    if result is None:
        return TransientError(
            f"QuickBooks' batch answer has no result for bill {document.bill_id}; "
            "it will be delivered again"
        )
    if not isinstance(result, Fault):
        return result_for(document, result, created=op.operation == "create")
    error = result.to_exception()
    try:
        if isinstance(error, DuplicateDocumentNumber):
            if op.operation == "create":
                return _reconcile(client, document, error, entry.idempotency_key)
            return _taken(document, error, _holder(client, document))
        if isinstance(error, StaleObject) and entry.previous is not None:
            # The batch saw a stale SyncToken: update this one on its own with a fresh one.
            current = client.read(document.entity, entry.previous.external_id)
            payload = _update_payload(
                document, entry.previous.external_id, str(current.get("SyncToken", "0"))
            )
            written = client.update(document.entity, payload, entry.idempotency_key)
            return result_for(document, written, created=False)
    except DestinationError as exc:
        return exc
    return error
