"""One QuickBooks company (realm): the store of its documents and name lists, and its seed."""

from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import Decimal
from typing import Any

import attrs

__all__ = ["ENTITIES", "JSON", "NAME_LISTS", "WRITABLE", "Company"]

JSON = dict[str, Any]

#: Path segment → entity name, for the entities the emulator serves.
ENTITIES = {
    "invoice": "Invoice",
    "creditmemo": "CreditMemo",
    "customer": "Customer",
    "item": "Item",
    "account": "Account",
    "taxcode": "TaxCode",
    "taxrate": "TaxRate",
    "term": "Term",
    "companyinfo": "CompanyInfo",
    "payment": "Payment",
    "paymentmethod": "PaymentMethod",
}
WRITABLE = ("Invoice", "CreditMemo")
#: Name lists: queries return only active rows unless they mention Active.
NAME_LISTS = frozenset(
    {"Customer", "Item", "Account", "TaxCode", "TaxRate", "Term", "PaymentMethod"}
)


@attrs.define
class Company:
    """One QuickBooks company (realm) and everything in it. Tests read and change it freely."""

    realm_id: str
    name: str
    country: str = "US"
    home_currency: str = "USD"
    #: When False QuickBooks numbers documents itself and never answers 6140.
    custom_doc_numbers: bool = True
    closing_date: date | None = None
    subscription_ended: bool = False
    #: entity → Id → object, in creation order.
    entities: dict[str, dict[str, JSON]] = attrs.field(factory=dict)
    paid: set[str] = attrs.field(factory=set)
    #: Documents created / updated per entity (requestid replays excluded).
    created: Counter[str] = attrs.field(factory=Counter)
    updated: Counter[str] = attrs.field(factory=Counter)
    #: requestid → (HTTP status, body) of the first answer.
    replies: dict[str, tuple[int, bytes]] = attrs.field(factory=dict)
    _next_ids: Counter[str] = attrs.field(factory=Counter)
    _next_doc_number: int = 1001

    # -- inspection ---------------------------------------------------------------------------

    def table(self, entity: str) -> dict[str, JSON]:
        """Every ``entity`` object by Id (created on first use)."""
        return self.entities.setdefault(entity, {})

    @property
    def invoices(self) -> dict[str, JSON]:
        """Invoices by Id."""
        return self.table("Invoice")

    @property
    def credit_memos(self) -> dict[str, JSON]:
        """Credit memos by Id."""
        return self.table("CreditMemo")

    @property
    def customers(self) -> dict[str, JSON]:
        """Customers by Id."""
        return self.table("Customer")

    @property
    def items(self) -> dict[str, JSON]:
        """Items by Id."""
        return self.table("Item")

    def stored(self, entity: str, document_id: str) -> JSON:
        """The ``entity`` object with Id ``document_id`` (a test hook's ``KeyError`` if none)."""
        found = self.table(entity).get(document_id)
        if found is None:
            raise KeyError(f"no {entity} {document_id} in company {self.realm_id}")
        return found

    def find(self, entity: str, name: str) -> JSON:
        """The ``entity`` whose ``DisplayName`` (customers) or ``Name`` is ``name``."""
        for obj in self.table(entity).values():
            if name in (obj.get("DisplayName"), obj.get("Name")):
                return obj
        raise KeyError(f"no {entity} named {name!r} in company {self.realm_id}")

    def id_of(self, entity: str, name: str) -> str:
        """The Id of the ``entity`` named ``name``."""
        return str(self.find(entity, name)["Id"])

    # -- seeding ------------------------------------------------------------------------------

    def next_id(self, entity: str) -> str:
        """A new Id for ``entity`` (each entity has its own sequence, as in QuickBooks)."""
        self._next_ids[entity] += 1
        return str(self._next_ids[entity])

    def next_doc_number(self) -> str:
        """QuickBooks' own numbering, for documents sent without a DocNumber."""
        taken = {
            str(o.get("DocNumber"))
            for entity in WRITABLE
            for o in self.table(entity).values()
            if o.get("DocNumber")
        }
        while str(self._next_doc_number) in taken:
            self._next_doc_number += 1
        number = str(self._next_doc_number)
        self._next_doc_number += 1
        return number

    def add(self, entity: str, obj: JSON, entity_id: str | None = None) -> JSON:
        """Store ``obj`` as a new ``entity`` (with a new Id unless ``entity_id`` is given)."""
        new_id = entity_id or self.next_id(entity)
        stored = {"Id": new_id, "SyncToken": "0", "domain": "QBO", "sparse": False, **obj}
        self.table(entity)[new_id] = stored
        return stored

    def add_customer(
        self,
        name: str,
        *,
        currency: str | None = None,
        email: str | None = None,
        active: bool = True,
    ) -> JSON:
        """Add a customer (``DisplayName`` ``name``)."""
        obj: JSON = {
            "DisplayName": name,
            "CompanyName": name,
            "Active": active,
            "CurrencyRef": {"value": currency or self.home_currency},
            "Balance": Decimal("0"),
        }
        if email:
            obj["PrimaryEmailAddr"] = {"Address": email}
        return self.add("Customer", obj)

    def add_item(self, name: str, *, item_type: str = "Service", active: bool = True) -> JSON:
        """Add an item (a product or service sold)."""
        return self.add(
            "Item",
            {
                "Name": name,
                "FullyQualifiedName": name,
                "Type": item_type,
                "Active": active,
                "IncomeAccountRef": {"value": "1", "name": "Services"},
            },
        )

    def add_account(self, name: str, account_type: str, *, number: str | None = None) -> JSON:
        """Add a ledger account."""
        obj: JSON = {
            "Name": name,
            "FullyQualifiedName": name,
            "AccountType": account_type,
            "Active": True,
            "CurrencyRef": {"value": self.home_currency},
        }
        if number:
            obj["AcctNum"] = number
        return self.add("Account", obj)

    def add_tax_rate(self, name: str, rate: str) -> JSON:
        """Add a sales tax rate (``RateValue``: a percentage)."""
        return self.add(
            "TaxRate",
            {
                "Name": name,
                "Description": name,
                "Active": True,
                "RateValue": Decimal(rate),
                "AgencyRef": {"value": "1"},
                "SpecialTaxType": "NONE",
                "DisplayType": "ReadOnly",
            },
        )

    def add_tax_code(
        self,
        name: str,
        *,
        description: str = "",
        code_id: str | None = None,
        rates: tuple[JSON, ...] = (),
    ) -> JSON:
        """Add a tax code (US companies use the ids ``TAX`` and ``NON``, which carry no rate:
        theirs comes from the transaction); ``rates`` are the sales rates it applies."""
        obj: JSON = {"Name": name, "Description": description, "Active": True, "Taxable": True}
        obj["SalesTaxRateList"] = {
            "TaxRateDetail": [
                {
                    "TaxRateRef": {"value": rate["Id"], "name": rate["Name"]},
                    "TaxTypeApplicable": "TaxOnAmount",
                    "TaxOrder": 0,
                }
                for rate in rates
            ]
        }
        return self.add("TaxCode", obj, code_id)

    def add_term(self, name: str, due_days: int) -> JSON:
        """Add a payment term."""
        return self.add(
            "Term", {"Name": name, "Active": True, "Type": "STANDARD", "DueDays": due_days}
        )

    def seed(self) -> None:
        """A small company: the sample accounts' customers, items (one inactive), ledger
        accounts, tax codes and terms."""
        self.add_account("Services", "Income")
        self.add_account("Sales of Product Income", "Income", number="4000")
        self.add_account("Accounts Receivable (A/R)", "Accounts Receivable", number="1100")
        self.add_account("Undeposited Funds", "Other Current Asset")
        self.add_customer("Amy's Bird Sanctuary", email="birds@intuit.example")
        self.add_customer("Bill's Windsurf Shop")
        self.add_customer("Cool Cars")
        self.add_customer("Acme Ltd", currency="GBP", email="ap@acme.example")
        self.add_customer("Globex Corporation", email="payables@globex.example")
        self.add_customer("Initech")
        self.add_customer("Dukes Basketball Camp")
        self.add_customer("Old Customer Inc", active=False)
        for item in (
            "Services",
            "Platform",
            "API Calls",
            "Storage",
            "Events",
            "Seats",
            "Credits and Adjustments",
            "Fees",
        ):
            self.add_item(item)
        self.add_item("Legacy Plan", active=False)
        self.add_tax_code("TAX", description="Taxable", code_id="TAX")
        self.add_tax_code("NON", description="Non-taxable", code_id="NON")
        # Codes with their own rates, as a UK company has them (VAT).
        for name, rate, description in (
            ("20.0% S", "20", "UK standard rate"),
            ("5.0% R", "5", "UK reduced rate"),
            ("0.0% Z", "0", "UK zero rate"),
        ):
            tax_rate = self.add_tax_rate(name, rate)
            self.add_tax_code(name, description=description, rates=(tax_rate,))
        self.add_term("Due on receipt", 0)
        self.add_term("Net 15", 15)
        self.add_term("Net 30", 30)
        self.add_term("Net 60", 60)
