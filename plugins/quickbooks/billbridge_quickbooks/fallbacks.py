"""Fallback items at QuickBooks: what a refusal of one means to the person fixing it.

Which lines take the panel's unmatched one-time or recurring item is the shared line logic's
(:mod:`billbridge.domain.lines`); the run records them under ``fallbackLines``
(:mod:`billbridge.plugin.state`). QuickBooks refuses an Item it does not have, or has made
inactive, with code 610 on ``ItemRef``, without saying which item: when the document used
fallback items, the refusal is completed with which lines took which item from which option.
"""

from __future__ import annotations

from billbridge.domain.lines import fallback_hint
from billbridge.errors import DestinationValidationError
from billbridge_quickbooks.client import DuplicateDocumentNumber
from billbridge_quickbooks.translate import QuickBooksDocument

__all__ = ["explained"]


def explained(document: QuickBooksDocument, error: Exception) -> Exception:
    """``error``, completed with the fallback items used when QuickBooks refused an item."""
    # A duplicate number is about something else and keeps its own type.
    if (
        not isinstance(error, DestinationValidationError)
        or isinstance(error, DuplicateDocumentNumber)
        or "ItemRef" not in str(error)
    ):
        return error
    hint = fallback_hint(document.plan, "QuickBooks")
    if hint is None:
        return error
    return DestinationValidationError(f"{error}; {hint}", detail=error.detail)
