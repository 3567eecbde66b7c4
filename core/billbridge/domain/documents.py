"""Document-level rules every destination shares: the dates and the number an invoice carries.

QuickBooks and Xero write the same bill fields into their own headers (``TxnDate``/``Date``,
``DueDate``, ``DocNumber``/``InvoiceNumber``); what makes those values right or wrong does not
depend on the destination, so it is decided here once. A translator calls these functions and
writes the results under its own field names.
"""

from __future__ import annotations

from billbridge.domain.models import Bill
from billbridge.errors import DestinationValidationError

__all__ = ["check_dates"]


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
