"""QuickBooks' rules for invoices and credit memos: the properties each accepts, their limits,
and the checks a write passes before the company stores it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from billbridge.domain.money import minor_units, round_half_up
from billbridge_quickbooks.emulator.company import JSON, Company
from billbridge_quickbooks.emulator.errors import (
    business,
    inactive,
    required,
    too_long,
    unsupported,
    validation,
)
from billbridge_quickbooks.emulator.tax import apply_tax

__all__ = ["FIELDS", "active", "validated"]

_COMMON_FIELDS = frozenset(
    {
        "Id",
        "SyncToken",
        "sparse",
        "domain",
        "MetaData",
        "CustomField",
        "DocNumber",
        "TxnDate",
        "DepartmentRef",
        "CurrencyRef",
        "ExchangeRate",
        "PrivateNote",
        "TxnStatus",
        "LinkedTxn",
        "Line",
        "TxnTaxDetail",
        "CustomerRef",
        "CustomerMemo",
        "BillAddr",
        "ShipAddr",
        "ShipFromAddr",
        "ClassRef",
        "SalesTermRef",
        "GlobalTaxCalculation",
        "TotalAmt",
        "HomeTotalAmt",
        "PrintStatus",
        "EmailStatus",
        "BillEmail",
        "Balance",
        "HomeBalance",
        "ApplyTaxAfterDiscount",
        "TransactionLocationType",
        "ProjectRef",
        "RecurDataRef",
        "TaxExemptionRef",
        "TxnSource",
        "PaymentMethodRef",
        "DepositToAccountRef",
    }
)
#: Top-level properties each writable entity accepts; anything else is code 2010.
FIELDS: Mapping[str, frozenset[str]] = {
    "Invoice": _COMMON_FIELDS
    | {
        "DueDate",
        "ShipMethodRef",
        "ShipDate",
        "TrackingNum",
        "BillEmailCc",
        "BillEmailBcc",
        "Deposit",
        "DeliveryInfo",
        "AllowIPNPayment",
        "AllowOnlinePayment",
        "AllowOnlineCreditCardPayment",
        "AllowOnlineACHPayment",
        "InvoiceLink",
        "FreeFormAddress",
        "EInvoiceStatus",
    },
    "CreditMemo": _COMMON_FIELDS | {"RemainingCredit", "InvoiceRef"},
}
_LINE_FIELDS = frozenset(
    {
        "Id",
        "LineNum",
        "Description",
        "Amount",
        "DetailType",
        "SalesItemLineDetail",
        "DescriptionLineDetail",
        "SubTotalLineDetail",
        "LinkedTxn",
        "ProjectRef",
        "CustomField",
    }
)
_SALES_DETAIL_FIELDS = frozenset(
    {
        "ItemRef",
        "Qty",
        "UnitPrice",
        "ServiceDate",
        "TaxCodeRef",
        "ClassRef",
        "ItemAccountRef",
        "TaxInclusiveAmt",
        "DiscountRate",
        "DiscountAmt",
        "MarkupInfo",
        "TaxClassificationRef",
    }
)
_DETAIL_KEYS = {
    "SalesItemLineDetail": "SalesItemLineDetail",
    "DescriptionOnly": "DescriptionLineDetail",
    "SubTotalLineDetail": "SubTotalLineDetail",
}

DOC_NUMBER_MAX = 21
PRIVATE_NOTE_MAX = 4000
DESCRIPTION_MAX = 4000
CUSTOMER_MEMO_MAX = 1000


def active(company: Company, entity: str, ref: str | None, element: str) -> JSON:
    """The active ``entity`` ``ref`` names (2020 when missing, 610 if unknown or inactive)."""
    if ref is None:
        raise required(element)
    found = company.table(entity).get(ref)
    if found is None or found.get("Active") is False:
        raise inactive(element, ref)
    return found


def validated(
    company: Company,
    entity: str,
    obj: JSON,
    *,
    existing: JSON | None,
    today: Callable[[], date],
) -> JSON:
    """Check ``obj`` as QuickBooks would and return the document to store (new dict)."""
    customer_ref = _ref(obj, "CustomerRef")
    if customer_ref is None:
        raise required("CustomerRef")
    lines_in = obj.get("Line")
    if not isinstance(lines_in, list) or not lines_in:
        raise required("Line")
    customer = active(company, "Customer", customer_ref, "CustomerRef")
    currency = _ref(obj, "CurrencyRef") or company.home_currency
    customer_currency = _ref(customer, "CurrencyRef") or company.home_currency
    if currency != customer_currency:
        raise business(
            f"The currency of the transaction ({currency}) must match the customer's "
            f"currency ({customer_currency})",
            "CurrencyRef",
        )
    term = _ref(obj, "SalesTermRef")
    if term is not None:
        active(company, "Term", term, "SalesTermRef")

    doc_number = obj.get("DocNumber")
    if doc_number is not None:
        if not isinstance(doc_number, str):
            raise unsupported("DocNumber")
        if len(doc_number) > DOC_NUMBER_MAX:
            raise too_long("DocNumber", len(doc_number), DOC_NUMBER_MAX)
    for element, limit in (("PrivateNote", PRIVATE_NOTE_MAX),):
        text = obj.get(element)
        if isinstance(text, str) and len(text) > limit:
            raise too_long(element, len(text), limit)
    memo = obj.get("CustomerMemo")
    memo_text = memo.get("value") if isinstance(memo, Mapping) else None
    if isinstance(memo_text, str) and len(memo_text) > CUSTOMER_MEMO_MAX:
        raise too_long("CustomerMemo", len(memo_text), CUSTOMER_MEMO_MAX)

    txn_date = _date(obj["TxnDate"], "TxnDate") if obj.get("TxnDate") else today()
    if company.closing_date is not None:
        dates = [txn_date]
        if existing is not None and existing.get("TxnDate"):
            dates.append(_date(existing["TxnDate"], "TxnDate"))
        if min(dates) <= company.closing_date:
            raise business(
                "You can't create or change a transaction dated on or before the closing "
                f"date of the books ({company.closing_date.isoformat()}). Reopen the books "
                "or date the transaction after the closing date.",
                "TxnDate",
            )
    if obj.get("DueDate"):
        _date(obj["DueDate"], "DueDate")

    lines, total = _lines(company, lines_in, currency)
    if total < 0:
        kind = "An invoice" if entity == "Invoice" else "A credit memo"
        raise business(
            f"{kind} cannot have a negative total ({total}). Record a negative balance with "
            "a credit memo, and a refund with a refund receipt.",
            "Line",
        )

    if doc_number is None:
        doc_number = (
            existing.get("DocNumber") if existing is not None else None
        ) or company.next_doc_number()
    elif company.custom_doc_numbers:
        own_id = existing.get("Id") if existing is not None else None
        for other in company.table(entity).values():
            if other.get("DocNumber") == doc_number and other.get("Id") != own_id:
                raise validation(
                    "6140",
                    "Duplicate Document Number Error",
                    "Duplicate Document Number Error : You must specify a different "
                    f"number. This number has already been used. DocNumber={doc_number} is "
                    f"assigned to TxnType={entity} with TxnId={other['Id']}",
                    "DocNumber",
                )

    doc: JSON = {k: v for k, v in obj.items() if k not in ("sparse", "MetaData", "Id")}
    doc["CustomerRef"] = {"value": customer_ref, "name": customer.get("DisplayName")}
    doc["CurrencyRef"] = {"value": currency}
    doc["DocNumber"] = doc_number
    doc["TxnDate"] = txn_date.isoformat()
    doc["Line"] = lines
    gross, doc["TxnTaxDetail"] = apply_tax(
        company, lines, total, obj.get("GlobalTaxCalculation"), currency
    )
    doc["TotalAmt"] = gross
    if entity == "Invoice":
        doc["Balance"] = gross
        doc.setdefault("EmailStatus", "NotSet")
    else:
        doc["RemainingCredit"] = gross
        doc["Balance"] = gross
    doc.setdefault("PrintStatus", "NotSet")
    return doc


def _lines(company: Company, lines_in: list[Any], currency: str) -> tuple[list[JSON], Decimal]:
    places = minor_units(currency)
    lines: list[JSON] = []
    total = Decimal("0")
    for raw in lines_in:
        if not isinstance(raw, dict):
            raise unsupported("Line")
        for key in raw:
            if key not in _LINE_FIELDS:
                raise unsupported(key)
        detail_type = raw.get("DetailType")
        if detail_type is None:
            raise required("DetailType")
        if detail_type == "SubTotalLineDetail":
            continue  # computed by QuickBooks; clients echo it back on full updates
        detail_key = _DETAIL_KEYS.get(str(detail_type))
        if detail_key is None:
            raise unsupported(f"DetailType {detail_type}")
        line: JSON = {k: v for k, v in raw.items() if k != "Id"}
        description = raw.get("Description")
        if isinstance(description, str) and len(description) > DESCRIPTION_MAX:
            raise too_long("Description", len(description), DESCRIPTION_MAX)
        if detail_key == "DescriptionLineDetail":
            line.setdefault("DescriptionLineDetail", {})
            line.pop("Amount", None)
        else:
            detail = raw.get(detail_key)
            if not isinstance(detail, dict):
                raise required(detail_key)
            for key in detail:
                if key not in _SALES_DETAIL_FIELDS:
                    raise unsupported(key)
            if raw.get("Amount") is None:
                raise required("Amount")
            amount = _decimal(raw["Amount"], "Amount")
            item_ref = _ref(detail, "ItemRef")
            if item_ref is not None:
                item = active(company, "Item", item_ref, "ItemRef")
                detail = {**detail, "ItemRef": {"value": item_ref, "name": item.get("Name")}}
            tax_ref = _ref(detail, "TaxCodeRef")
            if tax_ref is not None:
                active(company, "TaxCode", tax_ref, "TaxCodeRef")
            qty = detail.get("Qty")
            price = detail.get("UnitPrice")
            if qty is not None and price is not None:
                product = _decimal(qty, "Qty") * _decimal(price, "UnitPrice")
                if round_half_up(product, places) != amount:
                    raise validation(
                        "6070",
                        "Amount is not equal to UnitPrice * Qty",
                        f"Amount is not equal to UnitPrice * Qty. Supplied value:{amount}",
                    )
            if detail.get("ServiceDate"):
                _date(detail["ServiceDate"], "ServiceDate")
            line[detail_key] = detail
            line["Amount"] = amount
            if item_ref is not None:
                # A sales line without an item is documentation: its amount is ignored.
                total += amount
        line["Id"] = str(len(lines) + 1)
        line["LineNum"] = len(lines) + 1
        lines.append(line)
    lines.append({"Amount": total, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
    return lines, total


def _decimal(value: Any, element: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise validation(
            "2010",
            "Request has invalid or unsupported property",
            f"Property Name:{element} must be a number",
            element,
        )
    try:
        result = Decimal(str(value))
    except ArithmeticError:
        raise validation(
            "2010",
            "Request has invalid or unsupported property",
            f"Property Name:{element} must be a number",
            element,
        ) from None
    if not result.is_finite():
        raise validation("2010", "Request has invalid or unsupported property", element)
    return result


def _date(value: Any, element: str) -> date:
    if not isinstance(value, str):
        raise validation("2010", "Request has invalid or unsupported property", element)
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise validation(
            "2010",
            "Request has invalid or unsupported property",
            f"Property Name:{element} must be a date (YYYY-MM-DD), got {value}",
            element,
        ) from None


def _ref(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping) or not isinstance(value.get("value"), str | int):
        raise validation(
            "2010",
            "Request has invalid or unsupported property",
            f"Property Name:{key} must be an object with a value",
            key,
        )
    return str(value["value"])
