"""From an m3ter bill to a QuickBooks Online Invoice or CreditMemo payload (pure, no I/O).

:func:`translate_bill` takes the bill (already filtered by the core), the account, the
integration's QuickBooks panel values and the resolved external mappings, and returns a
:class:`QuickBooksDocument`: which entity to write (``Invoice``, or ``CreditMemo`` when the bill's
total is negative), the JSON payload with every amount as an exact ``Decimal``, and the
:class:`~billbridge.domain.lines.InvoicePlan` it was built from.

The line logic (splitting, sorting, zero lines, strict or exact amounts, credit/debit memo items)
is the shared :mod:`billbridge.domain.lines`; this module only shapes its plan the way QuickBooks
wants
it and enforces QuickBooks' field limits, so that a bill QuickBooks would refuse is refused here
first, with a message that says what to change.

Field facts (Intuit's Invoice and CreditMemo reference, see REFERENCE.md):

* ``CustomerRef`` and at least one ``Line`` are required.
* ``DocNumber`` is at most 21 characters; when absent QuickBooks numbers the document itself.
* ``PrivateNote`` and a line's ``Description`` are at most 4000 characters, ``CustomerMemo`` 1000.
* ``Amount`` must equal ``Qty × UnitPrice`` rounded half-up to the currency's minor unit, else
  QuickBooks answers 6070; :func:`~billbridge.domain.lines.plan_invoice` guarantees it.
  ``UnitPrice``
  takes up to 7 decimals, so exact mode can keep the bill's quantity on most lines.
* ``Amount`` is "max 15 digits in 10.5 format": at most 10 digits before the point.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

import attrs

from billbridge.domain.documents import (
    NumberRule,
    WhenTooLong,
    check_dates,
    document_number,
    number_rule,
)
from billbridge.domain.lines import (
    InvoiceLine,
    InvoicePlan,
    LineOptions,
    fallback_option,
    plan_invoice,
)
from billbridge.domain.models import Account, Bill, LineItem
from billbridge.domain.tax import ExpectedTotals, TaxSettings
from billbridge.errors import DestinationValidationError, MissingMapping
from billbridge.plugin.contract import ResolvedMappings
from billbridge_quickbooks import tax

__all__ = [
    "AMOUNT_LIMIT",
    "CUSTOMER_MEMO_MAX",
    "DESCRIPTION_MAX",
    "DOC_NUMBER_MAX",
    "EMAIL_MAX",
    "PRIVATE_NOTE_MAX",
    "QUANTITY_PLACES",
    "UNIT_PRICE_PLACES",
    "Entity",
    "QuickBooksDocument",
    "bill_marker",
    "document_url",
    "marked_bill",
    "translate_bill",
]

Entity = Literal["Invoice", "CreditMemo"]

DOC_NUMBER_MAX = 21
PRIVATE_NOTE_MAX = 4000
DESCRIPTION_MAX = 4000
CUSTOMER_MEMO_MAX = 1000
#: ``EmailAddress.Address`` is stored in 100 characters.
EMAIL_MAX = 100
#: QuickBooks stores up to 7 decimals of a unit price.
UNIT_PRICE_PLACES = 7
QUANTITY_PLACES = 4
#: "Max 15 digits in 10.5 format" (Intuit's Line.Amount): at most 10 digits before the point.
AMOUNT_LIMIT = Decimal("9999999999.99999")

# A plausible single address: QuickBooks refuses malformed ones on email, not on save, so a bad
# address would only surface when the invoice is sent; we leave it off with a warning instead.
_EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")

# The marker billbridge writes at the start of PrivateNote. It is how a document found by its
# DocNumber after a duplicate-number error (6140) is recognised as this bill's own.
_MARKER = re.compile(r"\bbillbridge bill (?P<bill>\S+) version (?P<version>\d+)\b")

_APP_HOSTS = {False: "https://app.qbo.intuit.com", True: "https://app.sandbox.qbo.intuit.com"}
_APP_PATHS: Mapping[str, str] = {"Invoice": "invoice", "CreditMemo": "creditmemo"}


@attrs.frozen
class QuickBooksDocument:
    """What to write to QuickBooks for one bill version.

    ``payload`` is the JSON body for a create (no ``Id``/``SyncToken``); every amount in it is a
    ``Decimal`` (write it with :func:`billbridge.domain.models.dumps`). ``plan`` is the line plan
    it was
    built from; for a credit memo it is the negated plan, whose amounts are the ones sent.
    ``warnings`` are the plan's warnings plus what translation left out (a DocNumber too long,
    an email address that does not look like one).
    """

    entity: Entity
    payload: dict[str, Any]
    plan: InvoicePlan
    bill_id: str
    bill_version: int
    #: What QuickBooks' document should total, tax included (:mod:`billbridge_quickbooks.tax`).
    totals: ExpectedTotals
    sandbox: bool = False

    @property
    def doc_number(self) -> str | None:
        """The ``DocNumber`` sent, or ``None`` when QuickBooks numbers the document."""
        value = self.payload.get("DocNumber")
        return value if isinstance(value, str) else None

    @property
    def warnings(self) -> tuple[str, ...]:
        """Everything the caller should log or show about this translation."""
        return self.plan.warnings

    def url(self, external_id: str) -> str:
        """The QuickBooks web app address of the document once it has an ``Id``."""
        return document_url(self.entity, external_id, sandbox=self.sandbox)


def document_url(entity: str, external_id: str, *, sandbox: bool = False) -> str:
    """``https://app.qbo.intuit.com/app/invoice?txnId=…`` (sandbox host; creditmemo path)."""
    path = _APP_PATHS.get(entity, entity.lower())
    return f"{_APP_HOSTS[sandbox]}/app/{path}?txnId={external_id}"


def bill_marker(bill: Bill) -> str:
    """The text that opens ``PrivateNote``: ``billbridge bill <id> version <n>``."""
    return f"billbridge bill {bill.id} version {bill.version}"


def marked_bill(private_note: object) -> tuple[str, int] | None:
    """``(bill id, version)`` from a document's ``PrivateNote``, or ``None`` if not marked."""
    if not isinstance(private_note, str):
        return None
    found = _MARKER.search(private_note)
    if found is None:
        return None
    return found.group("bill"), int(found.group("version"))


def translate_bill(
    bill: Bill,
    account: Account,
    config: Mapping[str, Any],
    mappings: ResolvedMappings,
    *,
    sandbox: bool = False,
) -> QuickBooksDocument:
    """Build the QuickBooks document for one bill version.

    :param bill: the bill, with excluded lines already removed by the core.
    :param account: the billed account.
    :param config: the integration's QuickBooks panel values.
    :param mappings: resolved external mappings (Account → Customer, Product/Aggregation → Item).
    :param sandbox: the document lives in a sandbox company (only changes :meth:`url`).

    ``DocNumber`` is the panel's ``invoiceNumberPrefix`` followed by the number
    ``invoiceNumberSource`` names (the bill's ``sequentialInvoiceNumber`` by default), see
    :func:`billbridge.domain.documents.document_number`. One longer than QuickBooks' 21
    characters is never cut (a cut number could be someone else's): per
    ``invoiceNumberTooLong`` the bill is refused, or (the default) QuickBooks numbers the
    document itself with a warning; the bill's own number stays in ``PrivateNote``. A credit
    memo carries no due date, payment options or email copies: QuickBooks' CreditMemo has no
    such fields.

    :raises MissingMapping: the account has no Customer, or a line's product/aggregation no Item.
    :raises DestinationValidationError: the bill cannot be written as QuickBooks requires (no
        lines left, a line with nothing to map, a field over QuickBooks' limits, a bad option,
        a due date before the issue date).
    """
    check_dates(bill)
    customer = mappings.get("Account", account.id, "Customer")
    if not customer:
        raise MissingMapping("Account", account.id, "Customer", hint=_account_hint(account))

    options = _line_options(config)
    taxes = tax.settings(config)
    plan = plan_invoice(bill, mappings, options)
    bill_total = plan.total
    entity: Entity = "CreditMemo" if plan.is_credit else "Invoice"
    if plan.is_credit:
        # QuickBooks refuses a document with a negative total; a credit is written as a
        # CreditMemo with the signs flipped once (the plan refuses to be negated twice).
        plan = plan.negated()
    warnings = list(plan.warnings)

    lines = [_line(index, line, taxes, options) for index, line in enumerate(plan.lines)]
    _check_amount(plan.total, f"the total of bill {bill.id}")

    payload: dict[str, Any] = {"CustomerRef": {"value": customer}, "Line": lines}
    calculation = tax.global_tax_calculation(config)
    if calculation is not None:
        payload["GlobalTaxCalculation"] = calculation

    # QuickBooks keeps 21 characters: a longer number is never cut (it would be a different,
    # maybe someone else's, number); the panel says whether to refuse or let QuickBooks number
    # it. The bill's own number stays in PrivateNote either way.
    number = document_number(bill, _number_rule(config), warnings)
    if number is not None:
        payload["DocNumber"] = number

    invoice_date = bill.invoice_date
    if invoice_date is not None:
        payload["TxnDate"] = invoice_date.isoformat()
    payload["CurrencyRef"] = {"value": plan.currency}
    payload["PrivateNote"] = _private_note(bill)

    bill_email = _email(account.email_address, "the account's email address", warnings)
    if bill_email:
        payload["BillEmail"] = {"Address": bill_email}

    memo = config.get("customerMemo")
    if isinstance(memo, str) and memo:
        if len(memo) > CUSTOMER_MEMO_MAX:
            raise DestinationValidationError(
                f"the customer memo has {len(memo)} characters; QuickBooks allows "
                f"{CUSTOMER_MEMO_MAX}"
            )
        payload["CustomerMemo"] = {"value": memo}

    term = config.get("salesTerm")
    if isinstance(term, str) and term:
        payload["SalesTermRef"] = {"value": term}

    if entity == "Invoice":
        # Due date, payment options and copies of the invoice email are Invoice fields; a
        # CreditMemo has none of them (it is not paid, it is applied).
        if bill.due_date is not None:
            payload["DueDate"] = bill.due_date.isoformat()
        payload["AllowOnlineACHPayment"] = config.get("allowBankTransferPayment") is True
        payload["AllowOnlineCreditCardPayment"] = config.get("allowCreditCardPayment") is True
        cc = _account_manager_email(account, config, warnings)
        if cc:
            payload["BillEmailCc"] = {"Address": cc}
        bcc = config.get("bccInvoiceEmail")
        bcc = _email(bcc if isinstance(bcc, str) else None, "the BCC invoice email", warnings)
        if bcc:
            payload["BillEmailBcc"] = {"Address": bcc}

    return QuickBooksDocument(
        entity=entity,
        payload=payload,
        plan=attrs.evolve(plan, warnings=tuple(warnings)),
        bill_id=bill.id,
        bill_version=bill.version,
        totals=tax.expected(plan, taxes, bill_total),
        sandbox=sandbox,
    )


# --- pieces ---------------------------------------------------------------------------------


def _account_hint(account: Account) -> str:
    named = [part for part in (account.name, account.code) if part]
    return " / ".join(named) if named else f"account {account.id}"


def _line_options(config: Mapping[str, Any]) -> LineOptions:
    try:
        return LineOptions.from_config(
            config,
            unit_price_places=UNIT_PRICE_PLACES,
            quantity_places=QUANTITY_PLACES,
            item_table="Item",
        )
    except ValueError as exc:
        # The panel schema refuses these already; a configuration saved around it ends here.
        raise DestinationValidationError(f"invalid QuickBooks configuration: {exc}") from None


def _number_rule(config: Mapping[str, Any]) -> NumberRule:
    # Before the option existed a number too long was left to QuickBooks: that stays the default.
    return number_rule(
        config,
        limit=DOC_NUMBER_MAX,
        system="QuickBooks",
        destination_numbers="QUICKBOOKS",
        default_when_too_long=WhenTooLong.DESTINATION,
    )


def _private_note(bill: Bill) -> str:
    parts = [bill_marker(bill)]
    if bill.external_invoice_reference:
        parts.append(f"reference {bill.external_invoice_reference}")
    if bill.sequential_invoice_number:
        parts.append(f"invoice number {bill.sequential_invoice_number}")
    if bill.purchase_order_number:
        parts.append(f"PO {bill.purchase_order_number}")
    note = "; ".join(parts)
    if len(note) > PRIVATE_NOTE_MAX:
        raise DestinationValidationError(
            f"the bill reference written to PrivateNote has {len(note)} characters; QuickBooks "
            f"allows {PRIVATE_NOTE_MAX}"
        )
    return note


def _email(value: str | None, what: str, warnings: list[str]) -> str | None:
    if value is None or not value.strip():
        return None
    address = value.strip()
    if len(address) > EMAIL_MAX or not _EMAIL.match(address):
        warnings.append(
            f"{what} {address!r} is not an email address QuickBooks can use; left off the invoice"
        )
        return None
    return address


def _account_manager_email(
    account: Account, config: Mapping[str, Any], warnings: list[str]
) -> str | None:
    field = config.get("accountManagerEmailCustomField")
    if not isinstance(field, str) or not field:
        return None
    value = (account.custom_fields or {}).get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        warnings.append(f"the account custom field {field!r} does not hold an email address; no Cc")
        return None
    return _email(value, f"the account custom field {field!r}", warnings)


def _check_amount(value: Decimal, what: str) -> None:
    if value.copy_abs() > AMOUNT_LIMIT:
        raise DestinationValidationError(
            f"{what} is {value}; QuickBooks amounts have at most 10 digits before the decimal point"
        )


def _line(
    index: int, line: InvoiceLine, taxes: TaxSettings, options: LineOptions
) -> dict[str, Any]:
    if line.item_id is None:
        raise _missing_item(line, options)
    if len(line.description) > DESCRIPTION_MAX:
        raise DestinationValidationError(
            f"line {index + 1} ({line.description[:40]!r}…) has a description of "
            f"{len(line.description)} characters; QuickBooks allows {DESCRIPTION_MAX}"
        )
    _check_amount(line.amount, f"the amount of line {index + 1} ({line.description!r})")
    _check_amount(line.unit_price, f"the unit price of line {index + 1} ({line.description!r})")
    detail: dict[str, Any] = {
        "ItemRef": {"value": line.item_id},
        "Qty": line.quantity,
        "UnitPrice": line.unit_price,
    }
    if line.service_start is not None:
        detail["ServiceDate"] = line.service_start.isoformat()
    tax_code = taxes.code_for(line.line_item_type)
    if tax_code is not None:
        detail["TaxCodeRef"] = {"value": tax_code}
    return {
        "LineNum": index + 1,
        "Description": line.description,
        "Amount": line.amount,
        "DetailType": "SalesItemLineDetail",
        "SalesItemLineDetail": detail,
    }


def _missing_item(line: InvoiceLine, options: LineOptions) -> Exception:
    """The error for a line with no Item: QuickBooks sales lines need one.

    A SalesItemLine without ``ItemRef`` is taken by QuickBooks as a note: its amount is ignored,
    so the invoice total would silently differ from the bill. billbridge therefore requires an
    Item on every line and names the product (accounting product first) or aggregation to map.
    """
    first: LineItem = line.source[0]
    where = f"line {first.sequence_number}" if first.sequence_number is not None else "a line"
    described = f"{where} ({line.description!r}, {first.line_item_type})"
    memo_option = {"CREDIT_MEMO": "creditMemoItem", "DEBIT_MEMO": "debitMemoItem"}.get(
        first.line_item_type
    )
    memo_hint = f", or set the panel option {memo_option}" if memo_option else ""
    if not options.allow_fallback_items:
        option = fallback_option(first.line_item_type)
        memo_hint += f", or allow fallback items (allowFallbackItems, {option})"
    product = first.product_for_accounting
    if product:
        name = first.accounting_product_name if first.accounting_product_id else first.product_name
        shown = f"product {name}" if name else "product"
        return MissingMapping(
            "Product",
            product,
            options.item_table,
            hint=f"{shown} on {described}{memo_hint}",
        )
    if first.aggregation_id:
        return MissingMapping(
            "Aggregation", first.aggregation_id, options.item_table, hint=f"{described}{memo_hint}"
        )
    if first.compound_aggregation_id:
        return MissingMapping(
            "CompoundAggregation",
            first.compound_aggregation_id,
            options.item_table,
            hint=f"{described}{memo_hint}",
        )
    return DestinationValidationError(
        f"{described} has no product or aggregation to map to a QuickBooks Item, and QuickBooks "
        "needs an Item on every sales line"
        + (f": set the panel option {memo_option}" if memo_option else "")
        + f", or exclude the line item type {first.line_item_type} from this integration"
    )
