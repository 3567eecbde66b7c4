"""Writing translated documents to QuickBooks: create, update, reconcile, batch.

The hooks call these after :func:`~billbridge_quickbooks.translate.translate_bill`; the
transport and error mapping are :class:`~billbridge_quickbooks.client.QuickBooksClient`'s.
What lives here is the policy:

* **create** with a ``requestid`` derived from the delivery's idempotency key and the body
  (:func:`billbridge.plugin.idempotency.derived_key`), so a retry after a lost answer gets the
  original document;
* **update** the document an earlier bill version made (full update, current ``SyncToken``,
  re-read once on 5010);
* **replace** it when the bill became the other kind of document (an invoice whose bill now
  totals less than zero, or back): QuickBooks cannot change a document's type, so the earlier
  invoice is voided and the credit memo created (:mod:`billbridge_quickbooks.void`);
* **reconcile** a duplicate document number (6140) with
  :func:`billbridge.plugin.reconcile.reconcile_by_number`: the document holding the number is
  looked up; if its ``PrivateNote`` names this bill it is ours (an earlier attempt whose answer
  was lost, or a ledger that was reset) and is adopted, otherwise the number belongs to someone
  else and a person must decide;
* **batch** many deliveries, 30 per ``/batch`` request, creates and updates mixed, each
  delivery's outcome on its own (:func:`billbridge.plugin.batches.send_in_batches`), the
  request's ``requestid`` derived from the core's batch key.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

from billbridge.domain.models import LedgerEntry
from billbridge.errors import DestinationValidationError
from billbridge.plugin.batches import Chunking, send_apart, send_in_batches
from billbridge.plugin.contract import DeliveryOutcome, SendResult
from billbridge.plugin.reconcile import Claim, reconcile_by_number
from billbridge.plugin.state import record_fallbacks, record_totals
from billbridge_quickbooks.client import (
    BATCH_MAX_ITEMS,
    MINOR_VERSION,
    BatchOperation,
    BatchResult,
    DuplicateDocumentNumber,
    Fault,
    QuickBooksClient,
    StaleObject,
)
from billbridge_quickbooks.fallbacks import explained
from billbridge_quickbooks.translate import QuickBooksDocument, marked_bill
from billbridge_quickbooks.void import is_voided, planned_void, replace, replaces

__all__ = [
    "Prepared",
    "planned_request",
    "prepare",
    "result_for",
    "send_document",
    "send_documents",
]


def result_for(
    document: QuickBooksDocument, written: dict[str, Any], *, created: bool
) -> SendResult:
    """The :class:`SendResult` for a document QuickBooks has written."""
    external_id = str(written.get("Id", ""))
    if not external_id:
        raise DestinationValidationError(f"QuickBooks answered without the {document.entity} Id")
    number = written.get("DocNumber")
    state: dict[str, Any] = {
        "SyncToken": str(written.get("SyncToken", "")),
        "entity": document.entity,
    }
    record_fallbacks(state, document.plan.fallbacks())
    detail = written.get("TxnTaxDetail")
    kind = "invoice" if document.entity == "Invoice" else "credit memo"
    record_totals(
        state,
        document.totals,
        total=written.get("TotalAmt"),
        tax=detail.get("TotalTax") if isinstance(detail, Mapping) else None,
        system="QuickBooks",
        document=f"{kind} {external_id}",
    )
    return SendResult(
        external_id=external_id,
        number=str(number) if number is not None else None,
        url=document.url(external_id),
        state=state,
        created=created,
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

    ``method``, ``path`` (the realm as ``{realmId}``), ``query``, ``operation`` (``create``,
    ``update``, or ``replace`` when the bill became the other kind of document), ``entity`` and
    ``body`` exactly as sent (a full update carries ``Id``, the ledger's ``SyncToken`` and
    ``sparse: false``; when the ledger has no SyncToken it is read from QuickBooks at send time,
    shown here as ``null``). A replacement also shows ``replaces``: the earlier document and the
    request that voids it (:func:`~billbridge_quickbooks.void.planned_void`). The
    ``requestid`` is derived from the delivery's idempotency key and this body when sent.
    ``totals`` are the totals QuickBooks' document should show, tax included.
    """
    body: dict[str, Any] = dict(document.payload)
    operation = "create"
    extra: dict[str, Any] = {}
    if previous is not None and replaces(document, previous):
        operation = "replace"
        extra["replaces"] = planned_void(previous)
    elif previous is not None:
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
        "fallbackLines": document.plan.fallbacks(),
        "totals": document.totals.to_json(),
        **extra,
    }


def send_document(
    client: QuickBooksClient,
    document: QuickBooksDocument,
    *,
    previous: LedgerEntry | None,
    idempotency_key: str,
) -> SendResult:
    """Create ``document``, or update the one ``previous`` recorded; see the module docs."""
    try:
        return _send_document(client, document, previous, idempotency_key)
    except DestinationValidationError as error:
        raise explained(document, error) from None


def _create(
    client: QuickBooksClient, document: QuickBooksDocument, idempotency_key: str
) -> SendResult:
    try:
        written = client.create(document.entity, document.payload, idempotency_key)
    except DuplicateDocumentNumber as duplicate:
        return _reconcile(client, document, duplicate, idempotency_key)
    return result_for(document, written, created=True)


def _send_document(
    client: QuickBooksClient,
    document: QuickBooksDocument,
    previous: LedgerEntry | None,
    idempotency_key: str,
) -> SendResult:
    if previous is None:
        return _create(client, document, idempotency_key)
    if replaces(document, previous):
        return replace(
            client,
            document,
            previous,
            idempotency_key,
            create=lambda: _create(client, document, idempotency_key),
        )
    payload = _update_payload(
        document, previous.external_id, _sync_token(client, document.entity, previous)
    )
    try:
        written = client.update(document.entity, payload, idempotency_key)
    except DuplicateDocumentNumber as duplicate:
        raise _number_taken(client, document, duplicate) from None
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


def _holders(client: QuickBooksClient, entity: str, number: str) -> list[dict[str, Any]]:
    holder = client.find_by_doc_number(entity, number)
    return [holder] if holder is not None else []


def _number_taken(
    client: QuickBooksClient, document: QuickBooksDocument, duplicate: DuplicateDocumentNumber
) -> DestinationValidationError:
    """An update refused with 6140: the new number is another document's (ours has an Id)."""
    holders = _holders(client, document.entity, document.doc_number) if document.doc_number else []
    return _taken(document, duplicate, holders[0] if holders else None)


def _claim(document: QuickBooksDocument, holder: dict[str, Any]) -> Claim:
    """Whose ``holder`` is: the marker translation writes in ``PrivateNote`` names the bill."""
    marked = marked_bill(holder.get("PrivateNote"))
    # A voided document keeps its number but is no longer anyone's to write to.
    if marked is None or marked[0] != document.bill_id or is_voided(holder):
        return Claim.ANOTHER
    return Claim.THIS_VERSION if marked[1] == document.bill_version else Claim.THIS_BILL


def _reconcile(
    client: QuickBooksClient,
    document: QuickBooksDocument,
    duplicate: DuplicateDocumentNumber,
    idempotency_key: str,
) -> SendResult:
    """A create hit 6140: adopt the holder of the number if it is this bill's, else refuse."""

    def update(holder: dict[str, Any]) -> SendResult:
        payload = _update_payload(document, str(holder["Id"]), str(holder.get("SyncToken", "0")))
        written = client.update(document.entity, payload, idempotency_key)
        return result_for(document, written, created=True)

    # Without a DocNumber of ours the duplicate is QuickBooks' auto-numbering colliding, and a
    # 6140 without a visible holder may be a document of another type: the refusal stands.
    return reconcile_by_number(
        document.doc_number,
        duplicate,
        find=lambda number: _holders(client, document.entity, number),
        claim=lambda holder: _claim(document, holder),
        # Our own earlier attempt for this very version: nothing to write.
        adopt=lambda holder: result_for(document, holder, created=True),
        update=update,
        taken=lambda holder: duplicate if holder is None else _taken(document, duplicate, holder),
    )


# --- batches ---------------------------------------------------------------------------------


@attrs.frozen
class Prepared:
    """One delivery ready for a batch: its document, ledger entry, key and the write to send.

    ``payload`` is the batch item's body: the document for a create; for a full update the
    document with ``Id``, the current ``SyncToken`` and ``sparse: false``.
    """

    document: QuickBooksDocument
    previous: LedgerEntry | None
    idempotency_key: str
    payload: Mapping[str, Any]
    #: The bill became the other kind of document: sent on its own, not in a batch.
    replacing: bool = False

    def operation(self, bid: str) -> BatchOperation:
        """The ``/batch`` item for this delivery under ``bid``."""
        kind: Literal["create", "update"] = "create" if self.previous is None else "update"
        return BatchOperation(bid, kind, self.document.entity, self.payload)


def prepare(
    client: QuickBooksClient,
    document: QuickBooksDocument,
    previous: LedgerEntry | None,
    idempotency_key: str,
) -> Prepared:
    """Ready ``document`` for :func:`send_documents`.

    Reads the document's ``SyncToken`` when the ledger has none. A bill that became the other
    kind of document is marked ``replacing``: it is sent on its own.
    """
    if previous is None:
        return Prepared(document, previous, idempotency_key, document.payload)
    if replaces(document, previous):
        return Prepared(document, previous, idempotency_key, document.payload, replacing=True)
    token = _sync_token(client, document.entity, previous)
    payload = {**_update_payload(document, previous.external_id, token), "sparse": False}
    return Prepared(document, previous, idempotency_key, payload)


def send_documents(
    client: QuickBooksClient,
    prepared: Sequence[Prepared | Exception],
    idempotency_key: str,
) -> list[DeliveryOutcome]:
    """Deliver many documents, ``BATCH_MAX_ITEMS`` per ``/batch`` request, outcomes in order.

    The bookkeeping (errors kept, a failed first request raised, a later one given to its
    members, a missing answer retried) is :func:`billbridge.plugin.batches.send_in_batches`'.
    Each request's ``requestid`` is the core's batch ``idempotency_key`` bound to the request's
    body, so the same batch sent again is answered as the first time. Items the batch refused
    with 5010 or 6140 are settled one by one the way :func:`send_document` settles them.
    """

    def send(chunk: Sequence[Prepared]) -> list[BatchResult | None]:
        # bIds only need to be unique within one request; their position is enough.
        operations = [item.operation(f"b{n}") for n, item in enumerate(chunk)]
        results = client.batch(operations, idempotency_key)
        return [results.get(op.bid) for op in operations]

    def together(items: Sequence[Prepared | Exception]) -> list[DeliveryOutcome]:
        return send_in_batches(
            items,
            chunking=Chunking(BATCH_MAX_ITEMS),
            send=send,
            settle=functools.partial(_settle, client),
            system="QuickBooks",
            describe=lambda item: f"bill {item.document.bill_id}",
        )

    # A replacement is a read, a void and a create, in order: it cannot be one batch item.
    return send_apart(
        prepared,
        apart=lambda item: item.replacing,
        send_one=lambda item: send_document(
            client, item.document, previous=item.previous, idempotency_key=item.idempotency_key
        ),
        send_rest=together,
    )


def _settle(client: QuickBooksClient, entry: Prepared, result: BatchResult) -> SendResult:
    """What one batch item's answer means; raises the error a refused item stands for."""
    document = entry.document
    if not isinstance(result, Fault):
        return result_for(document, result, created=entry.previous is None)
    error = explained(document, result.to_exception())
    if isinstance(error, DuplicateDocumentNumber):
        if entry.previous is None:
            return _reconcile(client, document, error, entry.idempotency_key)
        raise _number_taken(client, document, error)
    if isinstance(error, StaleObject) and entry.previous is not None:
        # The batch saw a stale SyncToken: update this one on its own with a fresh one.
        current = client.read(document.entity, entry.previous.external_id)
        payload = _update_payload(
            document, entry.previous.external_id, str(current.get("SyncToken", "0"))
        )
        written = client.update(document.entity, payload, entry.idempotency_key)
        return result_for(document, written, created=False)
    raise error
