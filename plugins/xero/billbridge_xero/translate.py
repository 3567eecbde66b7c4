"""From a bill to a Xero sales invoice or credit note: a pure function, no I/O.

:func:`translate_bill` turns an (already filtered) bill, its account, the integration's Xero
panel values and the resolved external mappings into one element of Xero's ``Invoices`` or
``CreditNotes`` array. The invoice lines come from :func:`billbridge.domain.lines.plan_invoice`
(the line
rules QuickBooks shares); this module only writes them the way Xero wants them.

Decisions, with the Xero fact (REFERENCE.md) behind each:

* **Invoice or credit note.** Xero refuses a sales invoice whose total is negative, so a bill
  whose plan total is negative becomes an ``ACCRECCREDIT`` credit note built from
  :meth:`~billbridge.domain.lines.InvoicePlan.negated` (every amount negated exactly once).
* **Unit amounts.** Xero keeps 2 decimals of ``UnitAmount`` unless the request says
  ``unitdp=4``; plans are made with 4 unit price places, and :attr:`XeroDocument.unitdp` is 4
  exactly when a unit amount needs more than 2, so the client sends ``unitdp=4`` only then.
* **Line amounts.** Xero checks ``LineAmount == Quantity × UnitAmount`` rounded to 2 decimals
  (``× (1 − DiscountRate/100)``; no discounts are sent). The shared plan guarantees that to the
  currency's minor units, which is the same thing for 2-decimal currencies; for zero-decimal
  currencies (JPY) a derived line that would miss Xero's 2-decimal rule is re-expressed as
  ``1 × amount`` (exact mode) or refused with a clear message (strict mode, where figures are
  sent as on the bill). Xero stores amounts with 2 decimals, so a 3-decimal currency amount that
  is not a whole number of cents is refused rather than rounded silently.
* **Contact.** ``Contact{ContactID}`` from the mapping Account → Contact; without one the
  bill cannot be sent (:class:`~billbridge.errors.MissingMapping`).
* **Items and accounts.** Mappings to the ``Item`` table hold Xero item *codes* (``ItemCode``).
  A line without an item gets the panel's ``defaultAccountCode`` as ``AccountCode``; a line
  with neither cannot be posted to the books and is refused, naming the product or aggregation
  to map.
* **Numbers and references.** ``InvoiceNumber`` (``CreditNoteNumber``) is the panel's
  ``invoiceNumberPrefix`` followed by the number ``invoiceNumberSource`` names
  (:func:`billbridge.domain.documents.document_number`): Xero requires it unique for sales
  documents ("Invoice # must be unique."), which makes it the durable key the client uses to
  recognise a document it created before. When the bill lacks the chosen number, it is left to
  Xero's own numbering (with a warning); one longer than 255 characters is refused or left to
  Xero per ``invoiceNumberTooLong``, never cut. ``Reference`` per ``referenceSource``.
* **Account manager email.** Xero invoices have no copy-to address (``BillEmailCc`` in
  QuickBooks): Xero emails an invoice to the contact's own addresses only. The option is
  therefore not sent; when it is set, a warning says so, instead of pretending.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
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
from billbridge.domain.lines import InvoiceLine, InvoicePlan, LineOptions, plan_invoice
from billbridge.domain.models import Account, Bill
from billbridge.domain.money import round_half_up
from billbridge.domain.tax import ExpectedTotals, TaxSettings
from billbridge.errors import DestinationValidationError, MissingMapping
from billbridge.plugin.contract import ResolvedMappings
from billbridge_xero import tax

__all__ = [
    "DocumentKind",
    "XeroDocument",
    "line_amount",
    "translate_bill",
]

DocumentKind = Literal["Invoice", "CreditNote"]

#: Decimal places Xero keeps for a unit amount with ``unitdp=4`` (2 without it).
UNIT_PRICE_PLACES = 4
#: Decimal places of a quantity in Xero.
QUANTITY_PLACES = 4
#: Xero stores every amount with 2 decimals and checks LineAmount at 2 decimals.
AMOUNT_PLACES = 2
MAX_NUMBER_LENGTH = 255
MAX_DESCRIPTION_LENGTH = 4000
MAX_TRACKING_CATEGORIES = 2

REFERENCE_SOURCES = ("PURCHASE_ORDER_NUMBER", "BILL_REFERENCE", "NONE")
STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED")
LINE_AMOUNT_TYPES = ("Exclusive", "Inclusive", "NoTax")

_ZERO = Decimal(0)


def line_amount(quantity: Decimal, unit_amount: Decimal, discount_rate: Decimal = _ZERO) -> Decimal:
    """``Quantity × UnitAmount × (1 − DiscountRate/100)`` rounded half-up to 2 decimals.

    The amount Xero computes for a line and compares with the ``LineAmount`` sent.
    """
    factor = (Decimal(100) - discount_rate) / Decimal(100)
    return round_half_up(quantity * unit_amount * factor, AMOUNT_PLACES)


@attrs.frozen
class XeroDocument:
    """One Xero sales document ready to send: an element of ``Invoices`` or ``CreditNotes``.

    ``payload`` has ``Decimal`` numbers (write it with :func:`billbridge.domain.models.dumps`);
    ``unitdp`` is 4 when a unit amount has more than 2 decimals (send ``unitdp=4``), else 2.
    ``warnings`` are the plan's warnings plus Xero-specific ones, for the caller to log or show.
    """

    kind: DocumentKind
    payload: dict[str, Any]
    plan: InvoicePlan
    unitdp: int
    #: What Xero's document should total, tax included (:mod:`billbridge_xero.tax`).
    totals: ExpectedTotals
    bill_id: str = ""
    bill_version: int = 0
    warnings: tuple[str, ...] = ()

    @property
    def endpoint(self) -> str:
        """The API collection: ``Invoices`` or ``CreditNotes`` (also the body's array key)."""
        return "Invoices" if self.kind == "Invoice" else "CreditNotes"

    @property
    def id_field(self) -> str:
        """``InvoiceID`` or ``CreditNoteID``."""
        return "InvoiceID" if self.kind == "Invoice" else "CreditNoteID"

    @property
    def number_field(self) -> str:
        """``InvoiceNumber`` or ``CreditNoteNumber``."""
        return "InvoiceNumber" if self.kind == "Invoice" else "CreditNoteNumber"

    @property
    def number(self) -> str | None:
        """The document number sent, or ``None`` when Xero numbers it."""
        value = self.payload.get(self.number_field)
        return str(value) if value is not None else None

    @property
    def contact_id(self) -> str:
        """The Xero ContactID the document is for."""
        return str(self.payload["Contact"]["ContactID"])

    @property
    def label(self) -> str:
        """How messages name the document: ``invoice INV-000123 (bill …)``."""
        kind = "invoice" if self.kind == "Invoice" else "credit note"
        number = f" {self.number}" if self.number else ""
        return f"{kind}{number} (bill {self.bill_id})" if self.bill_id else f"{kind}{number}"

    def for_create(self) -> dict[str, Any]:
        """The element to create it (``PUT``): a deep copy of :attr:`payload`."""
        return copy.deepcopy(self.payload)

    def for_update(self, external_id: str) -> dict[str, Any]:
        """The element to update the document ``external_id`` (``POST``).

        ``Status`` is sent only when it is ``AUTHORISED``: Xero allows DRAFT → AUTHORISED and
        AUTHORISED → AUTHORISED but refuses AUTHORISED → DRAFT/SUBMITTED ("not of valid
        status for modification"), and a person may have approved the invoice in Xero since it
        was created. Leaving a lower status out keeps whatever status the document has now.
        """
        element: dict[str, Any] = {self.id_field: external_id}
        for key, value in self.payload.items():
            if key == "Status" and value != "AUTHORISED":
                continue
            element[key] = copy.deepcopy(value)
        return element


def _choice(config: Mapping[str, Any], key: str, allowed: Sequence[str], default: str) -> str:
    value = config.get(key)
    if value is None:
        return default
    if value not in allowed:
        raise DestinationValidationError(
            f"{key} must be one of {', '.join(allowed)}; got {value!r}: fix the integration's "
            "Xero configuration"
        )
    return str(value)


def _text(config: Mapping[str, Any], key: str) -> str | None:
    value = config.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return str(value).strip()


def _number_rule(config: Mapping[str, Any]) -> NumberRule:
    # Before the option existed a number too long was refused: that stays the default.
    return number_rule(
        config,
        limit=MAX_NUMBER_LENGTH,
        system="Xero",
        destination_numbers="XERO",
        default_when_too_long=WhenTooLong.REFUSE,
    )


def _reference(bill: Bill, source: str) -> str | None:
    bill_reference = bill.external_invoice_reference or bill.id
    if source == "NONE":
        return None
    if source == "PURCHASE_ORDER_NUMBER" and bill.purchase_order_number:
        return bill.purchase_order_number
    return bill_reference


def _tracking(config: Mapping[str, Any]) -> list[dict[str, str]]:
    categories = config.get("trackingCategories") or []
    if len(categories) > MAX_TRACKING_CATEGORIES:
        raise DestinationValidationError(
            f"{len(categories)} tracking categories are configured; Xero allows at most "
            f"{MAX_TRACKING_CATEGORIES} on a line: remove some from trackingCategories"
        )
    tracking = []
    for index, category in enumerate(categories):
        name = str(category.get("name") or "").strip()
        option = str(category.get("option") or "").strip()
        if not name or not option:
            raise DestinationValidationError(
                f"trackingCategories[{index}] needs both a category name and an option"
            )
        tracking.append({"Name": name, "Option": option})
    return tracking


def _missing_item(line: InvoiceLine) -> Exception:
    """The error for a line with neither an item nor a default account code."""
    source = line.source[0] if line.source else None
    where = f"the line {line.description!r}"
    advice = "or set a default account code (defaultAccountCode) in the Xero configuration"
    if source is not None:
        product = source.product_for_accounting
        if product:
            name = (
                source.accounting_product_name
                or source.accounting_product_code
                or source.product_name
                or source.product_code
            )
            label = f"{name} on {where}" if name else where
            return MissingMapping("Product", product, "Item", hint=f"{label}; {advice}")
        for entity, entity_id in (
            ("Aggregation", source.aggregation_id),
            ("CompoundAggregation", source.compound_aggregation_id),
        ):
            if entity_id:
                return MissingMapping(entity, entity_id, "Item", hint=f"{where}; {advice}")
    return DestinationValidationError(
        f"{where} has no product or aggregation that could map to a Xero item, and no default "
        "account code is configured: set defaultAccountCode in the Xero configuration so the "
        "line can be posted to a revenue account"
    )


def _decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _xero_line_figures(
    line: InvoiceLine, currency: str, strict: bool, warnings: list[str]
) -> tuple[Decimal, Decimal, Decimal]:
    """Quantity, unit amount and amount as Xero will check them (see the module notes)."""
    if line.amount != round_half_up(line.amount, AMOUNT_PLACES):
        raise DestinationValidationError(
            f"the line {line.description!r} amounts to {line.amount}, but Xero keeps amounts "
            f"with {AMOUNT_PLACES} decimal places: it cannot carry this amount exactly"
        )
    if line_amount(line.quantity, line.unit_price) == line.amount:
        return line.quantity, line.unit_price, line.amount
    if strict:
        raise DestinationValidationError(
            f"the line {line.description!r} is {line.quantity} × {line.unit_price} = "
            f"{line.amount} {currency}, but Xero checks the product at {AMOUNT_PLACES} decimal "
            f"places ({line_amount(line.quantity, line.unit_price)}) and would refuse the line: "
            "turn off strict line item mapping for this integration"
        )
    warnings.append(
        f"the line {line.description!r}: {line.quantity} × {line.unit_price} does not give "
        f"{line.amount} at Xero's 2 decimal places; sent as 1 × {line.amount}"
    )
    return Decimal(1), line.amount, line.amount


def _line_items(
    plan: InvoicePlan,
    config: Mapping[str, Any],
    taxes: TaxSettings,
    strict: bool,
    warnings: list[str],
) -> list[dict[str, Any]]:
    default_account = _text(config, "defaultAccountCode")
    tracking = _tracking(config)
    items: list[dict[str, Any]] = []
    for line in plan.lines:
        description = line.description
        if len(description) > MAX_DESCRIPTION_LENGTH:
            raise DestinationValidationError(
                f"a line description is {len(description)} characters long; Xero takes at most "
                f"{MAX_DESCRIPTION_LENGTH}: {description[:60]!r}…"
            )
        quantity, unit_amount, amount = _xero_line_figures(line, plan.currency, strict, warnings)
        element: dict[str, Any] = {
            "Description": description,
            "Quantity": quantity,
            "UnitAmount": unit_amount,
            "LineAmount": amount,
        }
        if line.item_id:
            element["ItemCode"] = line.item_id
        elif default_account:
            element["AccountCode"] = default_account
        else:
            raise _missing_item(line)
        tax_type = taxes.code_for(line.line_item_type)
        if tax_type:
            element["TaxType"] = tax_type
        if tracking:
            element["Tracking"] = [dict(t) for t in tracking]
        items.append(element)
    return items


def translate_bill(
    bill: Bill,
    account: Account,
    config: Mapping[str, Any],
    mappings: ResolvedMappings,
) -> XeroDocument:
    """The Xero document (invoice or credit note) for one bill version.

    :param bill: the bill, already filtered by the core (excluded lines removed).
    :param account: the billed account.
    :param config: the integration's Xero panel values (``schema.json``); absent keys take the
        panel's defaults.
    :param mappings: resolved external mappings (Account → Contact, Product/Aggregation → Item).
    :raises MissingMapping: the account has no Contact, or a line has neither an item nor a
        default account code while it has a product or aggregation to map.
    :raises DestinationValidationError: the bill cannot become a valid Xero document (no lines,
        a number too long, more than two tracking categories, a due date before the issue
        date...).
    """
    check_dates(bill)
    warnings: list[str] = []
    contact_id = mappings.get("Account", account.id, "Contact")
    if not contact_id:
        hint = " / ".join(x for x in (account.name, account.code) if x) or None
        raise MissingMapping("Account", account.id, "Contact", hint=hint)
    numbering = _number_rule(config)
    reference_source = _choice(
        config, "referenceSource", REFERENCE_SOURCES, "PURCHASE_ORDER_NUMBER"
    )
    status = _choice(config, "invoiceStatus", STATUSES, "DRAFT")
    amount_types = _choice(config, "lineAmountTypes", LINE_AMOUNT_TYPES, "Exclusive")
    try:
        options = LineOptions.from_config(
            config,
            unit_price_places=UNIT_PRICE_PLACES,
            quantity_places=QUANTITY_PLACES,
            item_table="Item",
        )
    except ValueError as exc:
        raise DestinationValidationError(f"invalid Xero configuration: {exc}") from None
    taxes = tax.settings(config, amount_types)
    plan = plan_invoice(bill, mappings, options)
    warnings.extend(plan.warnings)
    kind: DocumentKind = "CreditNote" if plan.is_credit else "Invoice"
    document_plan = plan.negated() if plan.is_credit else plan
    line_items = _line_items(document_plan, config, taxes, options.strict, warnings)

    payload: dict[str, Any] = {
        "Type": "ACCRECCREDIT" if kind == "CreditNote" else "ACCREC",
        "Contact": {"ContactID": contact_id},
    }
    number = document_number(bill, numbering, warnings)
    if number is not None:
        payload["CreditNoteNumber" if kind == "CreditNote" else "InvoiceNumber"] = number
    reference = _reference(bill, reference_source)
    if reference is not None:
        payload["Reference"] = reference
    if bill.invoice_date is not None:
        payload["Date"] = bill.invoice_date.isoformat()
    if bill.due_date is not None:
        payload["DueDate"] = bill.due_date.isoformat()
    payload["CurrencyCode"] = document_plan.currency
    payload["Status"] = status
    payload["LineAmountTypes"] = amount_types
    branding = _text(config, "brandingThemeId")
    if branding:
        payload["BrandingThemeID"] = branding
    payload["LineItems"] = line_items

    field = _text(config, "accountManagerEmailCustomField")
    if field and account.custom_fields and account.custom_fields.get(field):
        warnings.append(
            f"the account manager email (custom field {field!r}) is not sent: Xero invoices "
            "have no copy-to address; Xero emails invoices to the contact's own addresses"
        )
    unitdp = 4 if any(_decimals(item["UnitAmount"]) > 2 for item in line_items) else 2
    return XeroDocument(
        kind=kind,
        payload=payload,
        plan=document_plan,
        unitdp=unitdp,
        totals=tax.expected(document_plan, taxes, plan.total),
        bill_id=bill.id,
        bill_version=bill.version,
        warnings=tuple(warnings),
    )
