"""Well-known keys of ``SendResult.state``: what a delivery did besides writing one document.

A plugin's ``state`` is its own (QuickBooks' ``SyncToken``, the document type...): the core
stores it in the delivery ledger and hands it back as ``previous.state``. A few keys mean the
same for every destination, so that the core, a UI or a report can read them without knowing
the plugin. Write them with the functions here; all values are plain JSON.

==================  ================================================================================
key                 value
==================  ================================================================================
``notes``           Sentences a person should read about this delivery although nothing failed
                    (an earlier document voided, say). Informational, not errors: the core is to
                    turn them into events (until then they stay in the ledger with the rest of
                    the state). Written only by the delivery that did the thing, never carried
                    over.
``fallbackLines``   The invoice lines that took the panel's unmatched one-time or recurring item
                    because nothing was mapped: ``[{line, lineItemType, item, option}]``
                    (:meth:`billbridge.domain.lines.InvoicePlan.fallbacks`). Absent when none.
``voided``          Documents billbridge voided (or deleted) for this bill because a later version
                    had to be another kind of document (an invoice became a credit note):
                    ``[{kind, id, number, status, billVersion}]``, oldest first. Carried over from
                    ``previous.state`` so the ledger keeps the whole history.
``totals``          What the document comes to: ``{currency, bill, lines, tax, destination}`` as
                    decimal strings; ``bill`` is the bill's own total, ``destination`` what the
                    destination's document totals including tax.
==================  ================================================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from billbridge.domain.tax import ExpectedTotals, totals_note

__all__ = [
    "FALLBACK_LINES",
    "NOTES",
    "TOTALS",
    "VOIDED",
    "add_note",
    "record_fallbacks",
    "record_totals",
    "record_voided",
]

NOTES = "notes"
FALLBACK_LINES = "fallbackLines"
VOIDED = "voided"
TOTALS = "totals"


def add_note(state: dict[str, Any], note: str) -> dict[str, Any]:
    """Append ``note`` to ``state["notes"]`` (in place) and return ``state``."""
    state.setdefault(NOTES, []).append(note)
    return state


def record_fallbacks(
    state: dict[str, Any], fallbacks: Sequence[Mapping[str, str]]
) -> dict[str, Any]:
    """Set ``state["fallbackLines"]`` when any line fell back (in place); return ``state``."""
    if fallbacks:
        state[FALLBACK_LINES] = [dict(entry) for entry in fallbacks]
    return state


def record_voided(
    state: dict[str, Any], previous: Mapping[str, Any] | None, entry: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Carry ``previous["voided"]`` over into ``state`` and add ``entry`` (in place).

    ``previous`` is the earlier delivery's state (``previous.state``), ``entry`` the document
    voided by this delivery, if any. Returns ``state``.
    """
    history = list((previous or {}).get(VOIDED) or ())
    if entry is not None:
        history.append(dict(entry))
    if history:
        state[VOIDED] = history
    return state


def record_totals(
    state: dict[str, Any],
    expected: ExpectedTotals,
    *,
    total: Any,
    tax: Any,
    system: str,
    document: str,
) -> dict[str, Any]:
    """Set ``state["totals"]`` from the destination's answer (in place); return ``state``.

    ``total`` and ``tax`` are what the destination says its document comes to (``None`` when
    its answer has no such figure); ``expected`` is what billbridge worked out before sending.
    When they differ a note says so (:func:`billbridge.domain.tax.totals_note`), naming
    ``document`` (``invoice 12``) of ``system``.
    """
    state[TOTALS] = {
        "currency": expected.currency,
        "bill": str(expected.bill),
        "lines": str(expected.lines),
        "tax": None if tax is None else str(tax),
        "destination": None if total is None else str(total),
    }
    if total is not None:
        note = totals_note(expected, Decimal(str(total)), system=system, document=document)
        if note is not None:
            add_note(state, note)
    return state
