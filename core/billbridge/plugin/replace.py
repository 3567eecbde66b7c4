"""Replacing a document with one of the other kind: an invoice that must become a credit note.

A regenerated bill can change sign: version 1 totalled 930.00 and became an invoice, version 2
totals -70.00 and must be a credit note (or back). Accounting systems cannot change a
document's type, so the earlier document is voided where the destination allows it and the new
kind created. :func:`replace_document` is the algorithm, the same for every destination; the
plugin says how its destination reads, voids and creates documents.

1. The new document's number must not be one a document billbridge voided for this bill still
   holds (a voided document keeps its number; a deleted one gives it up): checked first,
   against the ledger's history, so that nothing changes before the refusal.
2. ``look()`` reads the earlier document as the destination has it now (:class:`Earlier`).
3. Paid (in part or in full): nothing is voided, ``InvoiceAlreadyPaid`` is raised; a person
   settles the difference.
4. Open: ``void(earlier)`` voids it (or deletes a draft) and says which. Already voided or
   deleted, or gone: nothing to do, which is what makes a retry safe: after a lost answer the
   retry finds the document voided and does not void it twice.
5. ``create()`` creates the new document with the delivery's idempotency key (so a retry after
   a lost answer gets the same document back, not a second one) and returns its result.
6. The result's state records the earlier document under ``voided`` (with the history carried
   over) and one informational note under ``notes`` (:mod:`billbridge.plugin.state`).

Exceptions: nothing is caught here; what the callables raise is the delivery's outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Literal

import attrs

from billbridge.domain.models import LedgerEntry
from billbridge.errors import DestinationValidationError, InvoiceAlreadyPaid
from billbridge.plugin.contract import SendResult
from billbridge.plugin.state import VOIDED, add_note, record_voided

__all__ = ["Earlier", "Replacement", "Standing", "kind_label", "replace_document"]

Standing = Literal["OPEN", "PAID", "VOIDED", "DELETED", "MISSING"]

_LABELS = {"Invoice": "invoice", "CreditMemo": "credit memo", "CreditNote": "credit note"}


def kind_label(kind: str) -> str:
    """How people call a document kind: ``CreditMemo`` → ``credit memo``."""
    return _LABELS.get(kind, kind.lower())


def _article(label: str) -> str:
    return "an" if label[:1] in "aeiou" else "a"


@attrs.frozen
class Earlier:
    """The earlier document, as the destination has it now.

    ``standing`` is ``OPEN`` (can be voided), ``PAID`` (in part or in full: it cannot),
    ``VOIDED`` or ``DELETED`` (already done, by billbridge or a person) or ``MISSING`` (the
    destination no longer has it).
    """

    kind: str
    id: str
    number: str | None
    standing: Standing


@attrs.frozen
class Replacement:
    """What is being replaced by what, for messages: the bill version and the new document."""

    system: str
    bill_id: str
    bill_version: int
    #: The bill's total, signed as on the bill, and its currency.
    total: Decimal
    currency: str
    kind: str
    number: str | None


def _check_number(replacement: Replacement, previous: LedgerEntry) -> None:
    """Refuse a number that a document billbridge voided for this bill still holds."""
    if replacement.number is None:
        return
    for entry in previous.state.get(VOIDED) or ():
        if (
            entry.get("kind") == replacement.kind
            and entry.get("number") == replacement.number
            and entry.get("status") == "VOIDED"
        ):
            system = replacement.system
            raise DestinationValidationError(
                f"the number {replacement.number} is still held by {system} "
                f"{kind_label(replacement.kind)} {entry.get('id')}, voided for version "
                f"{entry.get('billVersion')} (a voided document keeps its number): give the bill "
                f"another number (invoiceNumberPrefix), or let {system} number it "
                "(invoiceNumberSource), then replay the run"
            )


def _named(earlier: Earlier) -> str:
    number = f" ({earlier.number})" if earlier.number else ""
    return f"{kind_label(earlier.kind)} {earlier.id}{number}"


def _paid(replacement: Replacement, earlier: Earlier, previous: LedgerEntry) -> Exception:
    new = kind_label(replacement.kind)
    return InvoiceAlreadyPaid(
        f"{replacement.system} {_named(earlier)}, made for version {previous.bill_version} of "
        f"bill {replacement.bill_id}, is paid and cannot be voided; version "
        f"{replacement.bill_version} totals {replacement.total} {replacement.currency} and would "
        f"replace it with {_article(new)} {new}: settle the difference in "
        f"{replacement.system} by hand"
    )


_DONE = {
    "VOIDED": "was voided",
    "DELETED": "was deleted (it was a draft)",
    "ALREADY_VOIDED": "was already voided",
    "ALREADY_DELETED": "was already deleted",
    "MISSING": "no longer exists in {system}",
}


def _note(
    replacement: Replacement, earlier: Earlier, done: str, previous: LedgerEntry, result: SendResult
) -> str:
    new = kind_label(replacement.kind)
    number = f" ({result.number})" if result.number else ""
    return (
        f"bill {replacement.bill_id} version {replacement.bill_version} totals "
        f"{replacement.total} {replacement.currency}, so it is now {_article(new)} {new}: "
        f"{replacement.system} {_named(earlier)}, made for version {previous.bill_version}, "
        f"{_DONE[done].format(system=replacement.system)}, and {new} {result.external_id}"
        f"{number} replaces it"
    )


def replace_document(
    replacement: Replacement,
    previous: LedgerEntry,
    *,
    look: Callable[[], Earlier],
    void: Callable[[Earlier], Literal["VOIDED", "DELETED"]],
    create: Callable[[], SendResult],
) -> SendResult:
    """Void the document ``previous`` recorded and create the new kind (module docs).

    :param replacement: the bill version and the new document, for messages and the check of
        its number.
    :param previous: the ledger entry of the earlier delivery (its ``state`` carries the
        history of documents voided before).
    :param look: reads the earlier document and says where it stands.
    :param void: voids (``VOIDED``) or deletes (``DELETED``) an open earlier document; raises
        when the destination cannot (QuickBooks cannot void a credit memo).
    :param create: creates the new document and returns its result.
    :raises InvoiceAlreadyPaid: the earlier document is paid.
    :raises DestinationValidationError: the new number is held by a document voided before.
    """
    _check_number(replacement, previous)
    earlier = look()
    if earlier.standing == "PAID":
        raise _paid(replacement, earlier, previous)
    if earlier.standing == "OPEN":
        status: str = void(earlier)
        done = status
    elif earlier.standing == "MISSING":
        status = done = "MISSING"
    else:
        status, done = earlier.standing, f"ALREADY_{earlier.standing}"
    result = create()
    state = dict(result.state)
    record_voided(
        state,
        previous.state,
        {
            "kind": earlier.kind,
            "id": earlier.id,
            "number": earlier.number,
            "status": status,
            "billVersion": previous.bill_version,
        },
    )
    add_note(state, _note(replacement, earlier, done, previous, result))
    return attrs.evolve(result, state=state)
