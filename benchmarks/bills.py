"""Synthetic m3ter bills and accounts for the benchmarks: realistic shapes, deterministic content.

A bill here looks like the ones m3ter sends at month-end (``shared/samples``): camelCase JSON
text with a standing charge, usage lines (some with pricing bands), a minimum spend and an
adjustment, every amount an exact decimal. The benchmarks submit the JSON *text*, because that
is what a billing service receives from m3ter; the engine stores it as received.

Everything is derived from ``(prefix, number)``, so two runs make the same bills and a bill can
be recognised at the destination by its invoice number (``{prefix}-{number:06d}``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import simplejson

__all__ = [
    "PRODUCTS",
    "account_document",
    "account_id",
    "bill_document",
    "bill_id",
    "bill_pairs",
    "invoice_number",
    "product_id",
]

_NAMESPACE = uuid.UUID("b3c1d7a2-54e6-4f0b-9a7e-0d2b6c8e1f30")

#: Distinct products a bill's lines are spread over (each is mapped to an external item).
PRODUCTS = 20

# Line item types cycled through a bill, in m3ter's proportions at a typical usage customer:
# mostly usage, one standing charge, a minimum spend and the odd adjustment.
_TYPES = (
    "STANDING_CHARGE",
    "USAGE",
    "USAGE",
    "USAGE",
    "COUNTER_RUNNING_TOTAL_CHARGE",
    "USAGE",
    "USAGE",
    "MINIMUM_SPEND",
    "USAGE",
    "OVERAGE_USAGE",
)


def account_id(prefix: str, number: int) -> str:
    """The m3ter id of account ``number`` (one account per bill at month-end)."""
    return str(uuid.uuid5(_NAMESPACE, f"{prefix}/account/{number}"))


def bill_id(prefix: str, number: int) -> str:
    """The m3ter id of bill ``number``."""
    return str(uuid.uuid5(_NAMESPACE, f"{prefix}/bill/{number}"))


def invoice_number(prefix: str, number: int) -> str:
    """The bill's ``sequentialInvoiceNumber`` (at most 21 characters, as QuickBooks wants)."""
    return f"{prefix}-{number:06d}"


def product_id(index: int) -> str:
    """The m3ter id of product ``index`` (``0 <= index < PRODUCTS``)."""
    return f"prod-{index:03d}"


def account_document(prefix: str, number: int, *, currency: str, country: str) -> dict[str, Any]:
    """An m3ter account (JSON-ready)."""
    return {
        "id": account_id(prefix, number),
        "name": f"Customer {prefix} {number}",
        "code": f"{prefix}-C{number:06d}",
        "currency": currency,
        "emailAddress": f"ap{number}@customer.example",
        "address": {
            "addressLine1": f"{number} High Street",
            "locality": "Springfield",
            "postCode": "00001",
            "country": country,
        },
        "customFields": {"segment": "mid-market", "tier": number % 3},
    }


def _line(prefix: str, number: int, index: int, currency: str) -> dict[str, Any]:
    kind = _TYPES[index % len(_TYPES)]
    product = product_id(index % PRODUCTS)
    line: dict[str, Any] = {
        "id": str(uuid.uuid5(_NAMESPACE, f"{prefix}/bill/{number}/line/{index}")),
        "sequenceNumber": index + 1,
        "lineItemType": kind,
        "description": f"{kind.replace('_', ' ').title()} {index + 1}",
        "productId": product,
        "productCode": product,
        "productName": f"Product {index % PRODUCTS}",
        "currency": currency,
        "servicePeriodStartDate": "2026-10-01T00:00:00Z",
        "servicePeriodEndDate": "2026-11-01T00:00:00Z",
    }
    if kind == "STANDING_CHARGE":
        quantity, price = Decimal(1), Decimal("250.00")
    else:
        # Usage in the thousands at fractions of a cent, varying per bill and line.
        quantity = Decimal(1000 + (number * 37 + index * 101) % 90_000)
        price = Decimal("0.0004") * (1 + index % 7)
        line["unit"] = "events"
        line["aggregationId"] = f"agg-{index % PRODUCTS:03d}"
    subtotal = (quantity * price).quantize(Decimal("0.01"))
    line.update(
        {
            "quantity": quantity,
            "units": quantity,
            "averageUnitPrice": price,
            "subtotal": subtotal,
            "convertedSubtotal": subtotal,
            "conversionRate": Decimal(1),
        }
    )
    if kind == "USAGE" and index % 3 == 0:
        # Tiered pricing: the first thousand at the line's price, the rest at the same price
        # (so the bands add up to the line exactly, as m3ter's do).
        first = Decimal(1000)
        rest = quantity - first
        line["usagePerPricingBand"] = [
            {
                "pricingBandId": "band-1",
                "lowerLimit": Decimal(0),
                "bandQuantity": first,
                "bandUnits": first,
                "unitPrice": price,
                "bandSubtotal": (first * price).quantize(Decimal("0.01")),
                "fixedPrice": Decimal(0),
            },
            {
                "pricingBandId": "band-2",
                "lowerLimit": first,
                "bandQuantity": rest,
                "bandUnits": rest,
                "unitPrice": price,
                "bandSubtotal": subtotal - (first * price).quantize(Decimal("0.01")),
                "fixedPrice": Decimal(0),
            },
        ]
    return line


def bill_document(
    prefix: str,
    number: int,
    *,
    lines: int = 20,
    currency: str = "USD",
    version: int = 1,
    account: int | None = None,
) -> dict[str, Any]:
    """An approved monthly m3ter bill with ``lines`` line items (JSON-ready, exact decimals).

    :param account: the account's number (default: ``number``, one account per bill).
    """
    items = [_line(prefix, number, index, currency) for index in range(lines)]
    total = sum((item["subtotal"] for item in items), Decimal(0))
    return {
        "id": bill_id(prefix, number),
        "version": version,
        "accountId": account_id(prefix, number if account is None else account),
        "accountCode": f"{prefix}-C{number:06d}",
        "billDate": "2026-11-01",
        "startDate": "2026-10-01",
        "endDate": "2026-11-01",
        "dueDate": "2026-12-01",
        "externalInvoiceDate": "2026-11-01",
        "sequentialInvoiceNumber": invoice_number(prefix, number),
        "purchaseOrderNumber": f"PO-{number:06d}",
        "currency": currency,
        "billingFrequency": "MONTHLY",
        "status": "APPROVED",
        "billTotal": total,
        "lineItems": items,
    }


def _text(document: dict[str, Any]) -> str:
    """JSON text with every Decimal written as an exact JSON number (as m3ter writes amounts)."""
    return simplejson.dumps(document, use_decimal=True, separators=(",", ":"))


def bill_pairs(
    prefix: str,
    count: int,
    *,
    start: int = 1,
    lines: int = 20,
    currency: str = "USD",
    country: str = "US",
    accounts: int | None = None,
) -> Iterator[tuple[str, str]]:
    """``count`` (bill JSON text, account JSON text) pairs, made lazily (a backfill streams).

    :param accounts: bills cycle over this many accounts (default: one account per bill).
    """
    for number in range(start, start + count):
        owner = number if accounts is None else (number - 1) % accounts + 1
        yield (
            _text(bill_document(prefix, number, lines=lines, currency=currency, account=owner)),
            _text(account_document(prefix, owner, currency=currency, country=country)),
        )
