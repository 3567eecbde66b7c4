"""Sample m3ter bills and accounts for destination tests and the conformance kit.

The documents are what m3ter sends (camelCase JSON, exact decimal amounts) and are small enough
to read: a monthly bill with a standing charge and a usage line, for one account. Every version
of a bill has the same id and a different usage quantity, so a new version changes the invoice
(what an update must carry over). Bills with different ``number`` have different ids and
invoice numbers, so several can be delivered side by side (a batch).

Map the two products (:data:`SAMPLE_PRODUCT_IDS`) and the account (:data:`SAMPLE_ACCOUNT_ID`)
to records of your fake destination to deliver them.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from billbridge.domain.models import Account, Bill, parse_account, parse_bill

__all__ = [
    "SAMPLE_ACCOUNT_ID",
    "SAMPLE_PRODUCT_IDS",
    "sample_account",
    "sample_account_document",
    "sample_bill",
    "sample_bill_document",
]

_NAMESPACE = uuid.UUID("0c7f1f5e-5b7a-4d2e-8f43-1a2b3c4d5e6f")

SAMPLE_ACCOUNT_ID = "5e0d6c1a-7b9f-4e21-9d3a-6f2b8c4e1a07"
"""The m3ter id of the sample account (``Account`` mappings are keyed by it)."""

SAMPLE_PRODUCT_IDS = {
    "platform": "1b6f9e2d-3c4a-4b5e-8f70-9a1b2c3d4e01",
    "api": "1b6f9e2d-3c4a-4b5e-8f70-9a1b2c3d4e02",
}
"""The m3ter product ids of the sample bill's two lines (``Product`` mappings are keyed by them)."""

_UNIT_PRICE = Decimal("0.01")
_STANDING_CHARGE = Decimal("100.00")


def _usage_quantity(version: int) -> Decimal:
    # Every version bills a different quantity, so every version is a different invoice.
    return Decimal(2000 + 500 * (version - 1))


def sample_bill_document(
    *,
    number: int = 1,
    version: int = 1,
    currency: str = "USD",
    account_id: str = SAMPLE_ACCOUNT_ID,
) -> dict[str, Any]:
    """An approved monthly m3ter bill as JSON-ready data (amounts are exact ``Decimal`` values).

    :param number: which bill (a different id and invoice number per number).
    :param version: the bill's version; the usage line's quantity grows with it.
    :param currency: the bill's currency (use your fake's home currency).
    :param account_id: the billed account's id.
    """
    if number < 1 or version < 1:
        raise ValueError("number and version start at 1")
    quantity = _usage_quantity(version)
    usage = quantity * _UNIT_PRICE
    bill_id = str(uuid.uuid5(_NAMESPACE, f"bill-{number}"))
    lines = [
        {
            "id": str(uuid.uuid5(_NAMESPACE, f"bill-{number}/line-1")),
            "sequenceNumber": 1,
            "lineItemType": "STANDING_CHARGE",
            "description": "Platform subscription",
            "productId": SAMPLE_PRODUCT_IDS["platform"],
            "productCode": "platform",
            "productName": "Platform",
            "quantity": Decimal(1),
            "units": Decimal(1),
            "averageUnitPrice": _STANDING_CHARGE,
            "subtotal": _STANDING_CHARGE,
            "currency": currency,
            "servicePeriodStartDate": "2026-10-01T00:00:00Z",
            "servicePeriodEndDate": "2026-11-01T00:00:00Z",
        },
        {
            "id": str(uuid.uuid5(_NAMESPACE, f"bill-{number}/line-2")),
            "sequenceNumber": 2,
            "lineItemType": "USAGE",
            "description": "API calls",
            "productId": SAMPLE_PRODUCT_IDS["api"],
            "productCode": "api",
            "productName": "API",
            "aggregationId": "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b60",
            "quantity": quantity,
            "units": quantity,
            "unit": "api_calls",
            "averageUnitPrice": _UNIT_PRICE,
            "subtotal": usage,
            "currency": currency,
            "servicePeriodStartDate": "2026-10-01T00:00:00Z",
            "servicePeriodEndDate": "2026-11-01T00:00:00Z",
        },
    ]
    return {
        "id": bill_id,
        "version": version,
        "accountId": account_id,
        "accountCode": "CONFORMANCE-1",
        "billDate": "2026-11-01",
        "startDate": "2026-10-01",
        "endDate": "2026-11-01",
        "dueDate": "2026-12-01",
        "externalInvoiceDate": "2026-11-01",
        "sequentialInvoiceNumber": f"CONF-{number:05d}",
        "purchaseOrderNumber": f"PO-{number:05d}",
        "currency": currency,
        "billingFrequency": "MONTHLY",
        "status": "APPROVED",
        "billTotal": _STANDING_CHARGE + usage,
        "lineItems": lines,
    }


def sample_bill(
    *,
    number: int = 1,
    version: int = 1,
    currency: str = "USD",
    account_id: str = SAMPLE_ACCOUNT_ID,
) -> Bill:
    """:func:`sample_bill_document` parsed into a :class:`~billbridge.domain.models.Bill`."""
    return parse_bill(
        sample_bill_document(
            number=number, version=version, currency=currency, account_id=account_id
        )
    )


def sample_account_document(
    *, currency: str = "USD", account_id: str = SAMPLE_ACCOUNT_ID
) -> dict[str, Any]:
    """The sample bills' account as m3ter JSON."""
    return {
        "id": account_id,
        "name": "Conformance Customer Ltd",
        "code": "CONFORMANCE-1",
        "currency": currency,
        "emailAddress": "billing@conformance.example",
        "address": {
            "addressLine1": "1 Test Street",
            "locality": "Testville",
            "postCode": "T1 1ST",
            "country": "US" if currency == "USD" else "GB",
        },
        "customFields": {"accountManagerEmail": "manager@conformance.example"},
    }


def sample_account(*, currency: str = "USD", account_id: str = SAMPLE_ACCOUNT_ID) -> Account:
    """:func:`sample_account_document` parsed into an :class:`~billbridge.domain.models.Account`."""
    return parse_account(sample_account_document(currency=currency, account_id=account_id))
