"""Bill → Tallybook invoice: a pure function, no network (``send_bill`` and ``preview_bill``).

A Tallybook invoice is a client, dates, a currency and lines of ``qty × unit_cost``::

    {"invoice": {
        "clientid": "3", "invoice_number": "INV-000123", "po_number": "PO-7",
        "create_date": "2026-11-01", "due_date": "2026-12-01", "currency_code": "USD",
        "notes": "Thank you for your business.", "action_email": false,
        "lines": [{"name": "API", "description": "API calls (2026-10-01 to 2026-11-01)",
                   "qty": "2000", "unit_cost": {"amount": "0.01", "code": "USD"},
                   "itemid": "2"}]}}

Amounts stay exact: a line keeps its quantity and unit price when their product is exactly its
subtotal, and is otherwise one unit of the subtotal, so every invoice adds up to the bill.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from billbridge.domain.models import Account, Bill, LineItem
from billbridge.errors import MissingMapping
from billbridge.plugin.contract import ResolvedMappings

__all__ = ["CLIENT_TABLE", "ITEM_TABLE", "invoice_body", "invoice_line"]

CLIENT_TABLE = "Client"
ITEM_TABLE = "Item"


def invoice_body(
    bill: Bill, account: Account, config: Mapping[str, Any], mappings: ResolvedMappings
) -> dict[str, Any]:
    """The JSON body Tallybook's invoice endpoints take, for ``bill``.

    :raises MissingMapping: the account is mapped to no Tallybook client.
    """
    client = mappings.get("Account", account.id, CLIENT_TABLE)
    if client is None:
        raise MissingMapping("Account", account.id, CLIENT_TABLE, hint=account.name or None)
    invoice: dict[str, Any] = {
        "clientid": client,
        "invoice_number": bill.sequential_invoice_number,
        "po_number": bill.purchase_order_number,
        "create_date": _day(bill.invoice_date),
        "due_date": _day(bill.due_date),
        "currency_code": bill.currency,
        "notes": config.get("notes") or "",
        "action_email": bool(config.get("sendByEmail", False)),
        "lines": [invoice_line(line, bill, config, mappings) for line in bill.line_items],
    }
    return {"invoice": invoice}


def invoice_line(
    line: LineItem, bill: Bill, config: Mapping[str, Any], mappings: ResolvedMappings
) -> dict[str, Any]:
    """One Tallybook line: name, description, ``qty × unit_cost`` exactly, and its item."""
    qty, cost = _quantity_and_cost(line)
    name_from = config.get("lineName", "PRODUCT")
    product = line.accounting_product_name or line.product_name
    name = (product if name_from == "PRODUCT" else line.description) or line.line_item_type
    made: dict[str, Any] = {
        "name": name,
        "description": _description(line),
        "qty": str(qty),
        "unit_cost": {"amount": str(cost), "code": line.currency or bill.currency},
    }
    item = mappings.get("Product", line.product_for_accounting, ITEM_TABLE)
    item = item or config.get("defaultItem")
    if item:
        made["itemid"] = str(item)
    return made


def _quantity_and_cost(line: LineItem) -> tuple[Decimal, Decimal]:
    subtotal = line.subtotal if line.subtotal is not None else Decimal(0)
    quantity, price = line.quantity, line.average_unit_price
    if quantity and price is not None and quantity * price == subtotal:
        return quantity, price
    return Decimal(1), subtotal


def _description(line: LineItem) -> str:
    text = line.description or ""
    start, end = line.service_period_start_date, line.service_period_end_date
    if start is not None and end is not None:
        text = f"{text} ({_day(start)} to {_day(end)})".strip()
    return text


def _day(value: date | datetime | None) -> str | None:
    if value is None:
        return None
    return (value.date() if isinstance(value, datetime) else value).isoformat()
