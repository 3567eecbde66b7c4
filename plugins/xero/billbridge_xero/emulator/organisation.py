"""An emulated Xero organisation: its lists, its sales documents and the rules Xero applies.

Used by :mod:`billbridge_xero.emulator`; nothing here does I/O. Documents are validated and
saved by :meth:`Organisation.apply`, which mirrors what Xero checks on ``PUT``/``POST
/Invoices`` and ``/CreditNotes`` (REFERENCE.md), with Xero's messages where they are known:

* ``Type`` and ``Contact`` are required; the contact must exist (or, given by ``Name`` only, is
  matched by name or created, as Xero does).
* ``InvoiceNumber`` is unique per organisation for sales invoices ("Invoice # must be
  unique."), as is ``CreditNoteNumber`` for sales credit notes ("Credit Note # must be
  unique."); without one Xero numbers the document (``INV-0001``, ``CN-0001``...).
* Line items: ``ItemCode``, ``AccountCode`` and ``TaxType`` must exist and suit a sale; the item
  fills in what the line leaves out (description, price, account, tax type); at most two
  tracking categories, each an existing category and option. ``UnitAmount`` is rounded to 2
  decimals, or 4 with ``unitdp=4``, *before* the line check, as Xero stores it; ``LineAmount`` must
  equal ``Quantity × UnitAmount × (1 − DiscountRate/100)`` rounded to 2 decimals, and is computed
  when left out (with a warning when the unit amount lost decimals).
* Approved (SUBMITTED/AUTHORISED) documents need an account on every line and at least one line;
  totals may not be negative.
* Status changes follow Xero: DRAFT/SUBMITTED → DRAFT, SUBMITTED, AUTHORISED, DELETED;
  SUBMITTED/AUTHORISED → VOIDED (a voided document keeps its number and amounts; a deleted
  one gives its number up); AUTHORISED → AUTHORISED; anything else, and any change to a PAID,
  VOIDED or DELETED document, is "… not of valid status for modification" (a paid one "cannot
  be edited as it has a payment or credit note allocated to it").
* A document dated on or before the lock date is refused: "The document date cannot be before
  the end of year lock date, currently set at 31-Mar-2026." (or "period lock date").
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import attrs

from billbridge.domain.money import round_half_up
from billbridge_xero.dates import format_ms_date, parse_xero_date
from billbridge_xero.emulator.payments import settlement

__all__ = ["Organisation", "seed_organisation"]

Kind = Literal["Invoice", "CreditNote"]
_NAMESPACE = uuid.UUID("6f1f8f4e-1d3b-4f57-9a0e-6b8d1c2e3f40")
_ZERO = Decimal(0)
_HUNDRED = Decimal(100)

_TYPES: dict[str, tuple[str, ...]] = {
    "Invoice": ("ACCREC", "ACCPAY"),
    "CreditNote": ("ACCRECCREDIT", "ACCPAYCREDIT"),
}
_SALES_TYPES = frozenset({"ACCREC", "ACCRECCREDIT"})
# REFERENCE.md: "Void: update the invoice with Status VOIDED (AUTHORISED or SUBMITTED, no
# payments); DRAFT and SUBMITTED can be DELETED. Credit notes likewise."
_TRANSITIONS: dict[str, frozenset[str]] = {
    "DRAFT": frozenset({"DRAFT", "SUBMITTED", "AUTHORISED", "DELETED"}),
    "SUBMITTED": frozenset({"DRAFT", "SUBMITTED", "AUTHORISED", "DELETED", "VOIDED"}),
    "AUTHORISED": frozenset({"AUTHORISED", "VOIDED"}),
}
_NEW_STATUSES = frozenset({"DRAFT", "SUBMITTED", "AUTHORISED"})
_AMOUNT_TYPES = {"exclusive": "Exclusive", "inclusive": "Inclusive", "notax": "NoTax"}
_MAX_TRACKING = 2
_NOT_FOUND = "The document with the supplied id was not found for this endpoint."


def stable_id(*parts: str) -> str:
    """A deterministic UUID for seeded records, so tests can name them."""
    return str(uuid.uuid5(_NAMESPACE, ":".join(parts)))


def _decimal(value: Any, what: str, errors: list[str]) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool):
        errors.append(f"{what} must be a number.")
        return None
    try:
        number = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError):
        errors.append(f"{what} must be a number.")
        return None
    if not number.is_finite():
        errors.append(f"{what} must be a number.")
        return None
    return number


def _money(value: Decimal) -> Decimal:
    return round_half_up(value, 2)


@attrs.define
class Organisation:
    """One Xero organisation (tenant) of the emulator, with everything it holds.

    Records are kept as Xero returns them (JSON-shaped dicts, ``Decimal`` numbers); sales
    documents in an internal form rendered by :meth:`render`.
    """

    tenant_id: str
    name: str
    base_currency: str = "GBP"
    short_code: str = "!emu01"
    country_code: str = "GB"
    currencies: set[str] = attrs.field(factory=set)
    contacts: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    items: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    accounts: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    tax_rates: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    tracking_categories: list[dict[str, Any]] = attrs.field(factory=list)
    branding_themes: list[dict[str, Any]] = attrs.field(factory=list)
    documents: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    #: Payments received, by PaymentID (see billbridge_xero.emulator.payments).
    payments: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    lock_date: date | None = None
    lock_kind: str = "end of year"
    created_at: datetime | None = None
    _sequence: dict[str, int] = attrs.field(factory=lambda: {"Invoice": 0, "CreditNote": 0})
    # (kind, casefolded number) -> keys of documents stored with that number at some point.
    # Xero checks a number's uniqueness with an index, not by reading every document; scanning
    # made each new invoice cost more than the last, so long runs measured the emulator, not
    # the client. Entries may be stale (a number changed): lookups re-check the document.
    _numbered: dict[tuple[str, str], set[str]] = attrs.field(factory=dict)

    # -- lookups ------------------------------------------------------------------------------

    def contact_by_name(self, name: str) -> dict[str, Any] | None:
        """The contact called ``name`` (case-insensitive), or ``None``."""
        wanted = name.casefold()
        return next(
            (c for c in self.contacts.values() if str(c["Name"]).casefold() == wanted), None
        )

    def contact_id(self, name: str) -> str:
        """The ContactID of the contact called ``name`` (``KeyError`` when there is none)."""
        contact = self.contact_by_name(name)
        if contact is None:
            raise KeyError(name)
        return str(contact["ContactID"])

    def item(self, code: str) -> dict[str, Any] | None:
        """The item with this code (Xero item codes ignore case)."""
        return self.items.get(code.casefold())

    def account(self, code: str) -> dict[str, Any] | None:
        """The account with this code."""
        return self.accounts.get(code.casefold())

    def tracking_category(self, name_or_id: str) -> dict[str, Any] | None:
        """An active tracking category by name (case-insensitive) or id."""
        wanted = name_or_id.casefold()
        for category in self.tracking_categories:
            if category["Status"] != "ACTIVE":
                continue
            if wanted in (str(category["Name"]).casefold(), category["TrackingCategoryID"]):
                return category
        return None

    def document(self, document_id: str) -> dict[str, Any] | None:
        """A stored invoice or credit note by id (ids compare case-insensitively)."""
        return self.documents.get(document_id.casefold())

    def documents_of(self, kind: Kind) -> list[dict[str, Any]]:
        """Stored documents of one kind, oldest first."""
        return [d for d in self.documents.values() if d["kind"] == kind]

    # -- test hooks ---------------------------------------------------------------------------

    def mark_paid(self, document_id: str, when: date) -> None:
        """Record a full payment (invoice) or allocation (credit note): status PAID."""
        document = self._existing(document_id)
        document["Status"] = "PAID"
        document["AmountPaid"] = document["Total"]
        document["FullyPaidOnDate"] = when

    def void(self, document_id: str) -> None:
        """Void the document, as a person would in Xero."""
        self._existing(document_id)["Status"] = "VOIDED"

    def _existing(self, document_id: str) -> dict[str, Any]:
        document = self.document(document_id)
        if document is None:
            raise KeyError(document_id)
        return document

    # -- writes -------------------------------------------------------------------------------

    def apply(
        self,
        kind: Kind,
        element: Any,
        *,
        method: str,
        unitdp: int,
        now: datetime,
    ) -> tuple[dict[str, Any] | None, list[str], list[str]]:
        """Validate one element of a ``PUT``/``POST`` and save it when valid.

        Returns ``(saved document, errors, warnings)``; nothing is saved when there are errors.
        """
        errors: list[str] = []
        warnings: list[str] = []
        label = "Invoice" if kind == "Invoice" else "Credit Note"
        if not isinstance(element, Mapping):
            return None, [f"The {label.lower()} could not be read."], []
        id_field = "InvoiceID" if kind == "Invoice" else "CreditNoteID"
        number_field = "InvoiceNumber" if kind == "Invoice" else "CreditNoteNumber"
        given_id = element.get(id_field)
        existing: dict[str, Any] | None = None
        if given_id:
            if method == "PUT":
                return (
                    None,
                    [f"A {label} with an {id_field} cannot be created: use POST to update it."],
                    [],
                )
            existing = self.document(str(given_id))
            if existing is None or existing["kind"] != kind:
                return (
                    None,
                    ["The document with the supplied id was not found for this endpoint."],
                    [],
                )
            status = existing["Status"]
            if status == "PAID":
                return (
                    None,
                    [
                        "This document cannot be edited as it has a payment or credit note "
                        "allocated to it."
                    ],
                    [],
                )
            if status in ("VOIDED", "DELETED"):
                return None, [f"{label} not of valid status for modification"], []

        doc: dict[str, Any] = copy.deepcopy(existing) if existing else {"kind": kind}

        # Type
        doc_type = element.get("Type", doc.get("Type"))
        if doc_type not in _TYPES[kind]:
            errors.append(
                f"A valid {label.lower()} Type must be specified ({' or '.join(_TYPES[kind])})."
            )
        elif existing and existing["Type"] != doc_type:
            errors.append(f"The Type of a {label.lower()} cannot be changed.")
        doc["Type"] = doc_type
        sales = doc_type in _SALES_TYPES

        # Contact
        contact_given = element.get("Contact")
        if contact_given is not None:
            contact = self._resolve_contact(contact_given, errors)
            if contact is not None:
                doc["ContactID"] = contact["ContactID"]
        elif "ContactID" not in doc:
            errors.append("A Contact must be specified for this type of transaction")

        # Dates
        today = now.date()
        for field in ("Date", "DueDate"):
            if field in element:
                raw = element[field]
                if raw is None:
                    doc[field] = None
                    continue
                try:
                    doc[field] = parse_xero_date(str(raw)[:10] if _iso_like(raw) else str(raw))
                except ValueError:
                    errors.append(f"The {field} '{raw}' is not a valid date.")
        doc.setdefault("Date", today)
        if doc.get("Date") is None:
            doc["Date"] = today
        doc.setdefault("DueDate", None)
        if self.lock_date is not None and isinstance(doc["Date"], date):
            locked = [doc["Date"]] + ([existing["Date"]] if existing else [])
            if any(d <= self.lock_date for d in locked):
                errors.append(
                    f"The document date cannot be before the {self.lock_kind} lock date, "
                    f"currently set at {self.lock_date.day:02d}-{self.lock_date:%b-%Y}."
                )

        # Currency, status, amount types, branding
        currency = str(element.get("CurrencyCode", doc.get("CurrencyCode", self.base_currency)))
        if currency.upper() not in self.currencies:
            errors.append(f"The currency {currency} is not enabled for this organisation.")
        doc["CurrencyCode"] = currency.upper()

        status = str(element.get("Status", doc.get("Status", "DRAFT"))).upper()
        if existing is None and status not in _NEW_STATUSES:
            errors.append(f"A new {label.lower()} cannot have the status {status}.")
        elif existing is not None and status not in _TRANSITIONS.get(existing["Status"], ()):
            errors.append(f"{label} not of valid status for modification")
        doc["Status"] = status

        amount_types = element.get("LineAmountTypes", doc.get("LineAmountTypes", "Exclusive"))
        normalised = _AMOUNT_TYPES.get(str(amount_types).casefold())
        if normalised is None:
            errors.append("LineAmountTypes must be Exclusive, Inclusive or NoTax.")
        doc["LineAmountTypes"] = normalised or "Exclusive"

        if "BrandingThemeID" in element:
            theme = element["BrandingThemeID"]
            if theme and not any(
                t["BrandingThemeID"] == str(theme).casefold() for t in self.branding_themes
            ):
                errors.append("Branding theme is not valid.")
            doc["BrandingThemeID"] = str(theme).casefold() if theme else None
        if "Reference" in element:
            doc["Reference"] = element["Reference"]

        # Number
        if number_field in element and element[number_field] not in (None, ""):
            number = str(element[number_field])
            if len(number) > 255:
                errors.append(f"{label} number must be 255 characters or fewer.")
            elif sales and self._number_taken(kind, number, doc.get("id")):
                errors.append(f"{label} # must be unique.")
            doc["Number"] = number
        doc.setdefault("Number", None)

        # Lines
        if "LineItems" in element:
            lines = element["LineItems"]
            if not isinstance(lines, list):
                errors.append("LineItems must be a list.")
                lines = []
            doc["LineItems"] = [
                self._line(line, doc_type, doc["LineAmountTypes"], unitdp, errors, warnings)
                for line in lines
            ]
        doc.setdefault("LineItems", [])
        if status in ("SUBMITTED", "AUTHORISED"):
            if not doc["LineItems"]:
                errors.append(f"{label}s must have at least one line item to be approved.")
            if any(not line.get("AccountCode") for line in doc["LineItems"]):
                errors.append(
                    "An account code must be specified for every line item of an approved document."
                )
        self._totals(doc)
        if doc["Total"] < 0:
            errors.append(f"The total of a {label.lower()} cannot be negative.")

        if errors:
            return None, errors, warnings
        if existing is None:
            doc["id"] = str(uuid.uuid4())
            doc["AmountPaid"] = _ZERO
            doc["FullyPaidOnDate"] = None
            if doc["Number"] is None and sales:
                doc["Number"] = self._next_number(kind)
        doc["UpdatedDateUTC"] = now
        key = doc["id"].casefold()
        self.documents[key] = doc
        if doc["Number"]:
            self._numbered.setdefault((kind, str(doc["Number"]).casefold()), set()).add(key)
        return doc, [], warnings

    def _resolve_contact(self, given: Any, errors: list[str]) -> dict[str, Any] | None:
        if not isinstance(given, Mapping):
            errors.append("A Contact must be specified for this type of transaction")
            return None
        contact_id = given.get("ContactID")
        if contact_id:
            contact = self.contacts.get(str(contact_id).casefold())
            if contact is None:
                errors.append(f"The contact with ContactID {contact_id} could not be found.")
            return contact
        name = str(given.get("Name") or "").strip()
        if not name:
            errors.append("A Contact must be specified for this type of transaction")
            return None
        found = self.contact_by_name(name)
        if found is not None:
            return found
        return self.add_contact(name)

    def add_contact(self, name: str, **fields: Any) -> dict[str, Any]:
        """Create a contact (Xero creates one when a document names an unknown contact)."""
        contact_id = str(
            fields.pop("ContactID", None) or stable_id(self.tenant_id, "contact", name)
        )
        contact = {
            "ContactID": contact_id,
            "ContactStatus": "ACTIVE",
            "Name": name,
            "IsCustomer": True,
            "IsSupplier": False,
            "UpdatedDateUTC": self.created_at,
            **fields,
        }
        self.contacts[contact_id.casefold()] = contact
        return contact

    def _number_taken(self, kind: Kind, number: str, own_id: str | None) -> bool:
        wanted = number.casefold()
        candidates = (self.documents.get(k) for k in self._numbered.get((kind, wanted), ()))
        return any(
            d is not None
            and d["kind"] == kind
            and d["Type"] in _SALES_TYPES
            and d["Status"] != "DELETED"
            and d.get("id") != own_id
            and str(d.get("Number") or "").casefold() == wanted
            for d in candidates
        )

    def _next_number(self, kind: Kind) -> str:
        prefix = "INV-" if kind == "Invoice" else "CN-"
        while True:
            self._sequence[kind] += 1
            number = f"{prefix}{self._sequence[kind]:04d}"
            if not self._number_taken(kind, number, None):
                return number

    def _line(
        self,
        given: Any,
        doc_type: Any,
        amount_types: str,
        unitdp: int,
        errors: list[str],
        warnings: list[str],
    ) -> dict[str, Any]:
        if not isinstance(given, Mapping):
            errors.append("A line item could not be read.")
            return {}
        sales = doc_type in _SALES_TYPES
        line: dict[str, Any] = {"LineItemID": str(given.get("LineItemID") or uuid.uuid4())}
        description = given.get("Description")
        item_code = given.get("ItemCode")
        item = None
        if item_code:
            item = self.item(str(item_code))
            if item is None:
                errors.append(f"Item code '{item_code}' is not valid.")
            elif sales and item.get("IsSold") is False:
                errors.append(f"Item code '{item_code}' cannot be used on a sale.")
            line["ItemCode"] = item["Code"] if item else str(item_code)
        details: Mapping[str, Any] = (item or {}).get("SalesDetails") or {}
        if description is None and item is not None:
            description = item.get("Description") or item.get("Name")
        if not description and not item_code:
            errors.append("Each line item must have a Description or an ItemCode.")
        if description and len(str(description)) > 4000:
            errors.append("The description of a line item cannot be longer than 4000 characters.")
        line["Description"] = str(description or "")

        quantity = _decimal(given.get("Quantity"), "Quantity", errors)
        unit_amount = _decimal(given.get("UnitAmount"), "UnitAmount", errors)
        line_amount = _decimal(given.get("LineAmount"), "LineAmount", errors)
        discount = _decimal(given.get("DiscountRate"), "DiscountRate", errors) or _ZERO
        if quantity is None:
            quantity = (
                line_amount / unit_amount
                if line_amount is not None and unit_amount not in (None, _ZERO)
                else Decimal(1)
            )
        quantity = round_half_up(quantity, 4)
        if unit_amount is None:
            if line_amount is not None and quantity and discount != _HUNDRED:
                unit_amount = line_amount / quantity / ((_HUNDRED - discount) / _HUNDRED)
            else:
                unit_amount = _decimal(details.get("UnitPrice"), "UnitPrice", errors) or _ZERO
        # Xero stores 2 decimals of a unit amount unless the request says unitdp=4.
        stored_unit = round_half_up(unit_amount, 4 if unitdp == 4 else 2)
        expected = _money(quantity * stored_unit * (_HUNDRED - discount) / _HUNDRED)
        if line_amount is None:
            if stored_unit != unit_amount:
                warnings.append(
                    f"The unit amount {unit_amount} was rounded to {stored_unit}; send unitdp=4 "
                    "to keep 4 decimal places."
                )
            line_amount = expected
        elif _money(line_amount) != expected or line_amount != _money(line_amount):
            errors.append(
                f"The line amount {line_amount} does not match Quantity × UnitAmount "
                f"({quantity.normalize():f} × {stored_unit.normalize():f} = {expected})."
            )
        line["Quantity"] = quantity
        line["UnitAmount"] = round_half_up(stored_unit, 4)
        line["LineAmount"] = _money(line_amount)
        if discount:
            line["DiscountRate"] = discount

        account_code = given.get("AccountCode") or details.get("AccountCode")
        account = None
        if account_code:
            account = self.account(str(account_code))
            if account is None or account["Status"] != "ACTIVE":
                errors.append(
                    f"Account code '{account_code}' is not a valid code for this document."
                )
            line["AccountCode"] = account["Code"] if account else str(account_code)
        tax_type = given.get("TaxType") or details.get("TaxType")
        if not tax_type and account is not None:
            tax_type = account.get("TaxType")
        if amount_types == "NoTax" or not tax_type:
            tax_type = tax_type or "NONE"
        rate = self.tax_rates.get(str(tax_type).upper())
        usable = "CanApplyToRevenue" if sales else "CanApplyToExpenses"
        if rate is None or rate["Status"] != "ACTIVE" or not rate.get(usable):
            errors.append(
                f"The TaxType code '{tax_type}' does not exist or cannot be used for this type of "
                "transaction."
            )
        line["TaxType"] = str(tax_type).upper()
        effective = Decimal(rate["EffectiveRate"]) if rate else _ZERO
        if amount_types == "NoTax":
            line["TaxAmount"] = _ZERO
        elif amount_types == "Inclusive":
            line["TaxAmount"] = _money(line["LineAmount"] * effective / (_HUNDRED + effective))
        else:
            line["TaxAmount"] = _money(line["LineAmount"] * effective / _HUNDRED)
        line["Tracking"] = self._tracking(given.get("Tracking"), errors)
        return line

    def _tracking(self, given: Any, errors: list[str]) -> list[dict[str, Any]]:
        if not given:
            return []
        if not isinstance(given, list):
            errors.append("Tracking must be a list.")
            return []
        if len(given) > _MAX_TRACKING:
            errors.append("A line item can only be tracked against 2 tracking categories.")
            return []
        tracked: list[dict[str, Any]] = []
        for entry in given:
            if not isinstance(entry, Mapping):
                errors.append("A tracking entry could not be read.")
                continue
            key = entry.get("TrackingCategoryID") or entry.get("Name") or ""
            category = self.tracking_category(str(key))
            if category is None:
                errors.append(f"The tracking category '{key}' does not exist or is archived.")
                continue
            if any(t["TrackingCategoryID"] == category["TrackingCategoryID"] for t in tracked):
                errors.append(f"A line item cannot be tracked against '{category['Name']}' twice.")
                continue
            wanted = str(entry.get("TrackingOptionID") or entry.get("Option") or "").casefold()
            option = next(
                (
                    o
                    for o in category["Options"]
                    if o["Status"] == "ACTIVE"
                    and wanted in (str(o["Name"]).casefold(), o["TrackingOptionID"])
                ),
                None,
            )
            if option is None:
                errors.append(
                    f"The tracking option '{entry.get('Option') or entry.get('TrackingOptionID')}'"
                    f" does not exist in the tracking category '{category['Name']}'."
                )
                continue
            tracked.append(
                {
                    "TrackingCategoryID": category["TrackingCategoryID"],
                    "TrackingOptionID": option["TrackingOptionID"],
                    "Name": category["Name"],
                    "Option": option["Name"],
                }
            )
        return tracked

    @staticmethod
    def _totals(doc: dict[str, Any]) -> None:
        lines = doc.get("LineItems") or []
        amounts = sum((line.get("LineAmount", _ZERO) for line in lines), _ZERO)
        tax = sum((line.get("TaxAmount", _ZERO) for line in lines), _ZERO)
        subtotal = amounts - tax if doc.get("LineAmountTypes") == "Inclusive" else amounts
        doc["SubTotal"] = _money(subtotal)
        doc["TotalTax"] = _money(tax)
        doc["Total"] = _money(subtotal + tax)

    # -- rendering ----------------------------------------------------------------------------

    def render(self, doc: Mapping[str, Any], *, unitdp: int = 2) -> dict[str, Any]:
        """A stored document as Xero's JSON (``/Date()/`` dates, 2- or 4-decimal unit amounts)."""
        kind = doc["kind"]
        contact = self.contacts.get(str(doc.get("ContactID", "")).casefold(), {})
        total = doc["Total"]
        paid = doc.get("AmountPaid", _ZERO)
        out: dict[str, Any] = {
            "Type": doc["Type"],
            "InvoiceID" if kind == "Invoice" else "CreditNoteID": doc["id"],
        }
        if doc.get("Number"):
            out["InvoiceNumber" if kind == "Invoice" else "CreditNoteNumber"] = doc["Number"]
        if doc.get("Reference") is not None:
            out["Reference"] = doc["Reference"]
        out["Contact"] = {
            "ContactID": contact.get("ContactID", doc.get("ContactID")),
            "Name": contact.get("Name"),
        }
        out["Date"] = format_ms_date(doc["Date"])
        out["DateString"] = f"{doc['Date'].isoformat()}T00:00:00"
        if doc.get("DueDate"):
            out["DueDate"] = format_ms_date(doc["DueDate"])
            out["DueDateString"] = f"{doc['DueDate'].isoformat()}T00:00:00"
        out["Status"] = doc["Status"]
        out["LineAmountTypes"] = doc["LineAmountTypes"]
        out["LineItems"] = [self._render_line(line, unitdp) for line in doc["LineItems"]]
        out["SubTotal"] = doc["SubTotal"]
        out["TotalTax"] = doc["TotalTax"]
        out["Total"] = total
        out["CurrencyCode"] = doc["CurrencyCode"]
        out["CurrencyRate"] = Decimal("1.000000")
        if doc.get("BrandingThemeID"):
            out["BrandingThemeID"] = doc["BrandingThemeID"]
        if kind == "Invoice":
            credited = doc.get("AmountCredited", _ZERO)
            gone = doc["Status"] in ("VOIDED", "DELETED")
            out["AmountDue"] = _ZERO if gone else _money(total - paid - credited)
            out["AmountPaid"] = paid
            out["AmountCredited"] = credited
        else:
            out["RemainingCredit"] = _money(total - paid)
        out.update(settlement(self, doc))
        if doc.get("FullyPaidOnDate"):
            out["FullyPaidOnDate"] = format_ms_date(doc["FullyPaidOnDate"])
        out["SentToContact"] = False
        out["HasAttachments"] = False
        out["HasErrors"] = False
        out["UpdatedDateUTC"] = format_ms_date(doc["UpdatedDateUTC"])
        return out

    @staticmethod
    def _render_line(line: Mapping[str, Any], unitdp: int) -> dict[str, Any]:
        out = {
            key: line[key]
            for key in ("LineItemID", "Description", "ItemCode", "AccountCode", "TaxType")
            if line.get(key) is not None
        }
        out["Quantity"] = round_half_up(line["Quantity"], 4)
        out["UnitAmount"] = round_half_up(line["UnitAmount"], 4 if unitdp == 4 else 2)
        out["LineAmount"] = line["LineAmount"]
        out["TaxAmount"] = line["TaxAmount"]
        if line.get("DiscountRate"):
            out["DiscountRate"] = line["DiscountRate"]
        out["Tracking"] = [dict(t) for t in line.get("Tracking", [])]
        return out


def _iso_like(value: Any) -> bool:
    """True for ISO text with a time part (``2021-10-18T00:00:00+11:00``): its date counts."""
    return isinstance(value, str) and len(value) > 10 and value[4] == "-" and value[10] == "T"


# --- seeding --------------------------------------------------------------------------------------

SAMPLE_CONTACTS = ("Acme Ltd", "Globex Corporation", "Initech")
#: Contacts beyond the samples, so that ``/Contacts`` has more than one page (100 a page).
FILLER_CONTACTS = 150

_ITEMS: tuple[tuple[str, str, str, str | None, str | None], ...] = (
    # code, name, sales unit price, sales account, sales tax type
    ("PLATFORM", "Platform subscription", "500.00", "200", None),
    ("API-CALLS", "API calls", "0.0050", "200", None),
    ("EVENTS", "Events ingested", "0.0004", "200", None),
    ("SEATS", "Seats", "15.00", "200", None),
    ("STORAGE", "Storage GB", "0.10", "200", None),
    ("CREDIT", "Credits and adjustments", "0.00", "260", None),
    ("FEES", "Fees", "0.00", "260", None),
    ("NOACCOUNT", "Item without a sales account", "0.00", None, None),
)
_ACCOUNTS: tuple[tuple[str, str, str, str, str], ...] = (
    # code, name, type, class, tax type
    ("090", "Business Bank Account", "BANK", "ASSET", "NONE"),
    ("200", "Sales", "REVENUE", "REVENUE", "OUTPUT2"),
    ("260", "Other Revenue", "REVENUE", "REVENUE", "OUTPUT2"),
    ("270", "Interest Income", "OTHERINCOME", "REVENUE", "NONE"),
    ("400", "Advertising", "EXPENSE", "EXPENSE", "INPUT2"),
    ("610", "Accounts Receivable", "CURRENT", "ASSET", "NONE"),
)
_TAX_RATES: tuple[tuple[str, str, str, bool, bool], ...] = (
    # tax type, name, rate, on revenue, on expenses
    ("OUTPUT2", "20% (VAT on Income)", "20.0000", True, False),
    ("RROUTPUT", "5% (VAT on Income)", "5.0000", True, False),
    ("ZERORATEDOUTPUT", "Zero Rated Income", "0.0000", True, False),
    ("EXEMPTOUTPUT", "Exempt Income", "0.0000", True, False),
    ("NONE", "No VAT", "0.0000", True, True),
    ("TAX001", "Sales Tax", "8.8750", True, False),
    ("INPUT2", "20% (VAT on Expenses)", "20.0000", False, True),
)
_TRACKING: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Region", ("UK", "US", "EU")),
    ("Department", ("Sales", "Engineering", "Support")),
    ("Channel", ("Direct", "Partner")),
)
_THEMES = ("Standard", "Special Projects")
_CURRENCIES = ("GBP", "USD", "EUR", "AUD", "NZD", "CAD", "JPY")


def seed_organisation(org: Organisation, *, filler_contacts: int = FILLER_CONTACTS) -> None:
    """Fill a new organisation with contacts, items, accounts, tax rates, tracking, themes."""
    tenant = org.tenant_id
    created = org.created_at
    org.currencies.update(_CURRENCIES)
    org.currencies.add(org.base_currency.upper())
    samples = {
        "Acme Ltd": "ap@acme.example",
        "Globex Corporation": "payables@globex.example",
        "Initech": "accounts@initech.example",
    }
    for name, email in samples.items():
        org.add_contact(name, EmailAddress=email)
    for n in range(1, filler_contacts + 1):
        org.add_contact(f"Customer {n:03d}", ContactNumber=f"C{n:04d}")
    org.add_contact("Old Customer (archived)", ContactStatus="ARCHIVED")
    for code, name, price, account, tax in _ITEMS:
        details: dict[str, Any] = {"UnitPrice": Decimal(price)}
        if account:
            details["AccountCode"] = account
        if tax:
            details["TaxType"] = tax
        org.items[code.casefold()] = {
            "ItemID": stable_id(tenant, "item", code),
            "Code": code,
            "Name": name,
            "Description": name,
            "IsSold": True,
            "IsPurchased": False,
            "IsTrackedAsInventory": False,
            "SalesDetails": details,
            "UpdatedDateUTC": created,
        }
    org.items["purchase-only"] = {
        "ItemID": stable_id(tenant, "item", "PURCHASE-ONLY"),
        "Code": "PURCHASE-ONLY",
        "Name": "Bought in, never sold",
        "IsSold": False,
        "IsPurchased": True,
        "IsTrackedAsInventory": False,
        "PurchaseDetails": {"UnitPrice": Decimal("1.00"), "AccountCode": "400"},
        "UpdatedDateUTC": created,
    }
    for code, name, account_type, account_class, tax in _ACCOUNTS:
        org.accounts[code.casefold()] = {
            "AccountID": stable_id(tenant, "account", code),
            "Code": code,
            "Name": name,
            "Type": account_type,
            "Class": account_class,
            "Status": "ACTIVE",
            "TaxType": tax,
            "EnablePaymentsToAccount": False,
            "ShowInExpenseClaims": False,
            "BankAccountType": "",
            "ReportingCode": account_class[:3],
            "UpdatedDateUTC": created,
        }
    for tax_type, name, rate, revenue, expenses in _TAX_RATES:
        org.tax_rates[tax_type] = {
            "Name": name,
            "TaxType": tax_type,
            "Status": "ACTIVE",
            "ReportTaxType": "OUTPUT" if revenue else "INPUT",
            "CanApplyToAssets": expenses,
            "CanApplyToEquity": expenses,
            "CanApplyToExpenses": expenses,
            "CanApplyToLiabilities": expenses,
            "CanApplyToRevenue": revenue,
            "DisplayTaxRate": Decimal(rate),
            "EffectiveRate": Decimal(rate),
            "TaxComponents": [
                {
                    "Name": name,
                    "Rate": Decimal(rate),
                    "IsCompound": False,
                    "IsNonRecoverable": False,
                }
            ],
        }
    for name, options in _TRACKING:
        category_id = stable_id(tenant, "tracking", name)
        org.tracking_categories.append(
            {
                "TrackingCategoryID": category_id,
                "Name": name,
                "Status": "ACTIVE",
                "Options": [
                    {
                        "TrackingOptionID": stable_id(tenant, "tracking", name, option),
                        "Name": option,
                        "Status": "ACTIVE",
                    }
                    for option in options
                ],
            }
        )
    for order, name in enumerate(_THEMES):
        org.branding_themes.append(
            {
                "BrandingThemeID": stable_id(tenant, "theme", name),
                "Name": name,
                "Type": "INVOICE",
                "SortOrder": order,
                "CreatedDateUTC": created,
            }
        )
