"""Fallback items at Xero: what a refusal of one means to the person fixing it.

Which lines take the panel's unmatched one-time or recurring item is the shared line logic's
(:mod:`billbridge.domain.lines`); the run records them under ``fallbackLines``
(:mod:`billbridge.plugin.state`). Xero refuses an item code it does not have ("Item code 'X'
is not valid."), without knowing the panel chose it: when the document used fallback items,
the refusal is completed with which lines took which item from which option.
"""

from __future__ import annotations

from billbridge.domain.lines import fallback_hint
from billbridge.errors import DestinationValidationError
from billbridge_xero.translate import XeroDocument

__all__ = ["explained"]


def explained(document: XeroDocument, error: Exception) -> Exception:
    """``error``, completed with the fallback items used when Xero refused an item code."""
    # Subclasses (a duplicate number...) are about something else and keep their own type.
    if type(error) is not DestinationValidationError or "Item code" not in str(error):
        return error
    hint = fallback_hint(document.plan, "Xero")
    if hint is None:
        return error
    return DestinationValidationError(f"{str(error).rstrip('. ')}; {hint}", detail=error.detail)
