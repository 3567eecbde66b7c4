"""Document-level rules every destination shares: the dates and the number an invoice carries.

QuickBooks and Xero write the same bill fields into their own headers (``TxnDate``/``Date``,
``DueDate``, ``DocNumber``/``InvoiceNumber``); what makes those values right or wrong does not
depend on the destination, so it is decided here once. A translator calls these functions and
writes the results under its own field names.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import attrs

from billbridge.domain.models import Bill
from billbridge.errors import DestinationValidationError

__all__ = [
    "NumberRule",
    "NumberSource",
    "WhenTooLong",
    "check_dates",
    "document_number",
    "number_rule",
]


def check_dates(bill: Bill) -> None:
    """Refuse a bill whose due date is before its issue date.

    The issue date is :attr:`Bill.invoice_date` (``externalInvoiceDate``, else ``billDate``).
    Both destinations would store such an invoice as overdue the day it is issued, and Xero's
    own screens refuse it, so it is never sent: the bill must be corrected at the source (a new
    version), which is what the message says. A bill without one of the dates passes.

    :raises DestinationValidationError: naming both dates and the field the issue date came
        from.
    """
    issued, due = bill.invoice_date, bill.due_date
    if issued is None or due is None or due >= issued:
        return
    field = "externalInvoiceDate" if bill.external_invoice_date is not None else "billDate"
    raise DestinationValidationError(
        f"bill {bill.id} version {bill.version}: the due date {due.isoformat()} is before the "
        f"issue date {issued.isoformat()} ({field}); nothing was sent: correct the bill's "
        "dueDate and submit it again"
    )


# --- numbers ----------------------------------------------------------------------------------


class NumberSource(StrEnum):
    """Where a document's number comes from (the panel's ``invoiceNumberSource``)."""

    #: m3ter's ``sequentialInvoiceNumber``.
    SEQUENTIAL_INVOICE_NUMBER = "SEQUENTIAL_INVOICE_NUMBER"
    #: m3ter's ``externalInvoiceReference``.
    EXTERNAL_INVOICE_REFERENCE = "EXTERNAL_INVOICE_REFERENCE"
    #: None: the destination numbers the document itself (each panel names this choice after
    #: its destination, ``QUICKBOOKS`` or ``XERO``).
    DESTINATION = "DESTINATION"


class WhenTooLong(StrEnum):
    """What to do when prefix and number are longer than the destination keeps
    (the panel's ``invoiceNumberTooLong``). Never: cut the number."""

    #: Refuse the bill: the run ends in error, with what to change.
    REFUSE = "REFUSE"
    #: Send no number: the destination numbers the document, and a warning says so.
    DESTINATION = "DESTINATION"


_FIELDS = {
    NumberSource.SEQUENTIAL_INVOICE_NUMBER: "sequentialInvoiceNumber",
    NumberSource.EXTERNAL_INVOICE_REFERENCE: "externalInvoiceReference",
}


@attrs.frozen
class NumberRule:
    """How one integration numbers its documents at one destination.

    ``limit`` is the destination's length limit for the number field (QuickBooks ``DocNumber``
    21, Xero ``InvoiceNumber`` 255); ``system`` names the destination in messages.
    """

    source: NumberSource
    limit: int
    system: str
    prefix: str = ""
    when_too_long: WhenTooLong = WhenTooLong.REFUSE


def _option(config: Mapping[str, Any], key: str, allowed: Mapping[str, Any], system: str) -> Any:
    value = config.get(key)
    if value is None:
        return None
    if value not in allowed:
        raise DestinationValidationError(
            f"{key} must be one of {', '.join(allowed)}; got {value!r}: fix the integration's "
            f"{system} configuration"
        )
    return allowed[value]


def number_rule(
    config: Mapping[str, Any],
    *,
    limit: int,
    system: str,
    destination_numbers: str,
    default_when_too_long: WhenTooLong,
) -> NumberRule:
    """The :class:`NumberRule` of a destination panel.

    Keys: ``invoiceNumberSource`` (``SEQUENTIAL_INVOICE_NUMBER`` by default,
    ``EXTERNAL_INVOICE_REFERENCE``, or ``destination_numbers``: the panel's own name for "the
    destination numbers it"), ``invoiceNumberPrefix`` and ``invoiceNumberTooLong`` (``REFUSE``
    or ``DESTINATION``; ``default_when_too_long`` when absent, so each destination keeps the
    behaviour it had before the option existed).

    :raises DestinationValidationError: a value the panel schema would have refused.
    """
    sources = {
        NumberSource.SEQUENTIAL_INVOICE_NUMBER.value: NumberSource.SEQUENTIAL_INVOICE_NUMBER,
        NumberSource.EXTERNAL_INVOICE_REFERENCE.value: NumberSource.EXTERNAL_INVOICE_REFERENCE,
        destination_numbers: NumberSource.DESTINATION,
    }
    source = _option(config, "invoiceNumberSource", sources, system)
    when = _option(config, "invoiceNumberTooLong", {w.value: w for w in WhenTooLong}, system)
    prefix = config.get("invoiceNumberPrefix")
    return NumberRule(
        source=source or NumberSource.SEQUENTIAL_INVOICE_NUMBER,
        limit=limit,
        system=system,
        prefix=prefix if isinstance(prefix, str) else "",
        when_too_long=when or default_when_too_long,
    )


def document_number(bill: Bill, rule: NumberRule, warnings: list[str]) -> str | None:
    """The number to send for ``bill``, or ``None`` when the destination numbers it.

    The bill's number (per ``rule.source``, spaces around it dropped) with ``rule.prefix``
    before it. When the bill has no such number the destination numbers the document, with a
    warning (a retried create can then not be recognised by its number). When prefix and
    number are longer than ``rule.limit`` they are never cut (a cut number could be another
    document's): ``WhenTooLong.REFUSE`` raises, ``WhenTooLong.DESTINATION`` sends no number and
    warns.

    :raises DestinationValidationError: the number is too long and the rule says refuse; the
        message names the prefix, the bill's number and the two options that fix it.
    """
    if rule.source is NumberSource.DESTINATION:
        return None
    field = _FIELDS[rule.source]
    raw = (
        bill.sequential_invoice_number
        if rule.source is NumberSource.SEQUENTIAL_INVOICE_NUMBER
        else bill.external_invoice_reference
    )
    if raw is None or not raw.strip():
        warnings.append(
            f"the bill has no {field}; {rule.system} numbers the document itself (a retried "
            "create cannot then be recognised by its number)"
        )
        return None
    own = raw.strip()
    number = rule.prefix + own
    if len(number) <= rule.limit:
        return number
    if rule.when_too_long is WhenTooLong.DESTINATION:
        warnings.append(
            f"the invoice number {number!r} is longer than {rule.system} allows ({rule.limit} "
            f"characters); {rule.system} numbers the document itself"
        )
        return None
    made_of = (
        f"prefix {rule.prefix!r} and the bill's {field} {own!r}"
        if rule.prefix
        else (f"the bill's {field}")
    )
    raise DestinationValidationError(
        f"the invoice number {number!r} ({made_of}) has {len(number)} characters; "
        f"{rule.system} takes at most {rule.limit}: shorten the invoice number prefix "
        f"(invoiceNumberPrefix), or let {rule.system} number such bills (invoiceNumberTooLong), "
        "then replay the run"
    )
