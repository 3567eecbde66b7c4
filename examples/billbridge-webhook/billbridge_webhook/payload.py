"""Bill → webhook body: a pure function, no network (``preview_bill`` and ``send_bill`` share it).

The body is an envelope around an invoice-shaped document::

    {
      "event": "invoice.created",          # or "invoice.updated"
      "id": null,                          # the receiver's id of the invoice, on updates
      "invoice": {
        "billId": "...", "billVersion": 3, "number": "INV-000123", "currency": "GBP",
        "invoiceDate": "2025-10-01", "dueDate": "2025-10-31",
        "servicePeriod": {"start": "2025-09-01", "end": "2025-10-01"},
        "customer": {"accountId": "...", "code": "ACME-UK-001", "name": "Acme Ltd", ...},
        "total": "1270.00",
        "lines": [{"type": "USAGE", "description": "API Calls", "quantity": "150000",
                   "unitPrice": "0.004", "amount": "600.00", ...}]
      }
    }

Amounts and quantities are decimal strings, exactly as on the bill: every language reads them
without floating-point rounding.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from billbridge.domain.models import Account, Bill, LineItem

__all__ = ["CREATED", "UPDATED", "envelope", "invoice_document"]

CREATED = "invoice.created"
UPDATED = "invoice.updated"


def _amount(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _day(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _line(line: LineItem) -> dict[str, Any]:
    return {
        "id": line.id,
        "type": line.line_item_type,
        "description": line.description,
        "quantity": _amount(line.quantity),
        "unit": line.unit or None,
        "unitPrice": _amount(line.average_unit_price),
        "amount": _amount(line.subtotal),
        "productId": line.product_for_accounting,
        "productName": line.accounting_product_name or line.product_name,
        "servicePeriod": {
            "start": _day(line.service_period_start_date),
            "end": _day(line.service_period_end_date),
        },
    }


def invoice_document(bill: Bill, account: Account, config: Mapping[str, Any]) -> dict[str, Any]:
    """The invoice for ``bill`` (lines already filtered by the core's exclusions).

    The total is the sum of the lines sent, not m3ter's ``billTotal``: the integration may
    exclude lines, and the receiver must be able to add the lines up to the total.
    """
    document: dict[str, Any] = {
        "billId": bill.id,
        "billVersion": bill.version,
        "number": bill.sequential_invoice_number,
        "reference": bill.external_invoice_reference,
        "purchaseOrderNumber": bill.purchase_order_number,
        "status": bill.status,
        "currency": bill.currency,
        "invoiceDate": _day(bill.invoice_date),
        "dueDate": _day(bill.due_date),
        "servicePeriod": {"start": _day(bill.start_date), "end": _day(bill.end_date)},
        "customer": {
            "accountId": account.id,
            "code": account.code,
            "name": account.name,
            "email": account.email_address,
        },
        "total": _amount(bill.lines_total()),
    }
    if config.get("includeLineItems", True):
        document["lines"] = [_line(line) for line in bill.line_items]
    return document


def envelope(
    bill: Bill, account: Account, config: Mapping[str, Any], previous_id: str | None
) -> dict[str, Any]:
    """The whole body: a create, or an update of the receiver's invoice ``previous_id``."""
    return {
        "event": UPDATED if previous_id else CREATED,
        "id": previous_id,
        "invoice": invoice_document(bill, account, config),
    }
