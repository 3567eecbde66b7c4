"""Reconciling a taken document number: adopt this bill's own document, refuse anyone else's.

Accounting systems keep sales document numbers unique per tenant, and a plugin sends the bill's
own number (m3ter's sequential invoice number, or the external reference). When a create is
refused because the number is taken, the holder is most often this bill's own document: made
by an earlier attempt whose answer was lost, or recorded in a ledger that has since been reset.
Idempotency keys are remembered for a while only (Xero: minutes); the number is the guard that
lasts. :func:`reconcile_by_number` is the algorithm; the plugin says how its destination finds
the holder of a number, tells whose document it is, adopts or updates it, and words the refusal.

Exceptions: nothing is caught here. What ``find``, ``adopt`` or ``update`` raise is the
delivery's outcome (in ``send_bill`` it is raised to the core; in a batch,
:func:`billbridge.plugin.batches.send_in_batches` makes it that member's outcome).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from typing import TypeVar

from billbridge.plugin.contract import SendResult

__all__ = ["Claim", "reconcile_by_number"]

Holder = TypeVar("Holder")


class Claim(enum.Enum):
    """Whose document holds the number, as far as the destination can tell."""

    #: Made for this very bill version (its create answer was lost): adopt it, write nothing.
    THIS_VERSION = "this version"
    #: Made for this bill, for another version or one the destination cannot tell: update it to
    #: this version.
    THIS_BILL = "this bill"
    #: Someone else's (typed in by hand, another bill with the same number): leave it alone.
    ANOTHER = "another"


def reconcile_by_number(
    number: str | None,
    refused: Exception,
    *,
    find: Callable[[str], Iterable[Holder]],
    claim: Callable[[Holder], Claim],
    update: Callable[[Holder], SendResult],
    taken: Callable[[Holder | None], Exception],
    adopt: Callable[[Holder], SendResult] | None = None,
) -> SendResult:
    """Settle a create that ``refused`` because ``number`` is taken.

    1. Without a ``number`` of ours the collision is the destination's own numbering:
       ``refused`` is raised as it is.
    2. The holders of the number are looked up with ``find(number)`` (live documents only) and
       the first one ``claim`` says is this bill's is adopted (``Claim.THIS_VERSION``) or
       updated to this version (``Claim.THIS_BILL``); what that returns is the result.
    3. Otherwise the number belongs to someone else: ``taken(holder)`` is raised, with the
       first holder found, or ``None`` when none could be seen (another document type may hold
       it).

    :param number: the document number the create sent, if it sent one.
    :param refused: the destination's refusal (e.g. QuickBooks 6140, Xero "must be unique").
    :param find: the documents that hold ``number``.
    :param claim: whose document a holder is (destinations mark theirs differently:
        QuickBooks by a note naming the bill, Xero by contact, currency, date and reference).
    :param update: writes this version over a holder made for the bill; returns the result.
        Destination rules stay in it (Xero refuses to touch a paid or voided document).
    :param taken: the error saying the number belongs to another document.
    :param adopt: the result for a holder made for this very version, which needs no write;
        without it such a holder is updated like any other of this bill's (for destinations
        whose ``claim`` cannot tell versions apart and never says ``Claim.THIS_VERSION``).
    :raises Exception: ``refused``, ``taken(...)``, or what the callables raise.
    """
    if not number:
        raise refused
    holders = list(find(number))
    for holder in holders:
        whose = claim(holder)
        if whose is Claim.THIS_VERSION:
            return (adopt or update)(holder)
        if whose is Claim.THIS_BILL:
            return update(holder)
    raise taken(holders[0] if holders else None)
