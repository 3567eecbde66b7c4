"""Destination fidelity end to end: the engine, its database and both emulators.

Bills go through the public API (``submit_bill``, ``deliver_pending``, ``runs.replay``) to the
QuickBooks and Xero emulators over loopback HTTP, on SQLite and PostgreSQL, on a manual clock.
What a person sees is checked where they see it: the run's status and error, the event raised,
the ledger's state, and the documents in the destination.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from benchmarks.harness import oauth_connect
from test_reliability_world import START, Emulators, make_engine, running_emulators

from billbridge.domain.models import Event, LedgerEntry, Run
from billbridge.engine import Engine
from billbridge.secrets import generate_key
from billbridge.testing.emulation.clock import ManualClock

ACCOUNT_ID = "acct-fidelity"
ACCOUNTS = {
    "quickbooks": {"id": ACCOUNT_ID, "name": "Globex Corporation", "currency": "USD"},
    "xero": {"id": ACCOUNT_ID, "name": "Acme Ltd", "currency": "GBP"},
}
CURRENCIES = {"quickbooks": "USD", "xero": "GBP"}
#: What every Xero integration here needs to post lines to the books.
XERO_BASE: dict[str, Any] = {"defaultAccountCode": "200", "invoiceStatus": "AUTHORISED"}


@attrs.define
class Books:
    """An engine wired to both emulators, and what a test needs to drive it."""

    engine: Engine
    world: Emulators
    integration_id: str = ""
    destination: str = ""

    def connect(self, destination: str, **destination_config: Any) -> str:
        """An integration to ``destination`` with a connected credential and the mappings
        (account → customer/contact, product ``p-platform`` → an item)."""
        if destination == "xero":
            destination_config = {**XERO_BASE, **destination_config}
        integration = self.engine.integrations.create(
            name=f"{destination} fidelity",
            destination=destination,
            destination_config=destination_config,
        )
        credential = oauth_connect(self.engine, destination, f"{destination} fidelity")
        self.engine.integrations.connect(integration.id, credential.id)
        if destination == "quickbooks":
            customer = self.world.company.id_of("Customer", "Globex Corporation")
            item, account_table = self.world.company.id_of("Item", "Platform"), "Customer"
        else:
            customer, item, account_table = (
                self.world.org.contact_id("Acme Ltd"),
                "PLATFORM",
                "Contact",
            )
        self.engine.mappings.create_many(
            [
                {
                    "entity": "Account",
                    "entity_id": ACCOUNT_ID,
                    "external_system": destination,
                    "external_table": account_table,
                    "external_id": customer,
                },
                {
                    "entity": "Product",
                    "entity_id": "p-platform",
                    "external_system": destination,
                    "external_table": "Item",
                    "external_id": item,
                },
            ]
        )
        self.integration_id, self.destination = integration.id, destination
        return integration.id

    def configure(self, **destination_config: Any) -> None:
        """Replace the integration's destination configuration (as a person fixing it would)."""
        current = self.engine.integrations.get(self.integration_id)
        if self.destination == "xero":
            destination_config = {**XERO_BASE, **destination_config}
        self.engine.integrations.update(
            self.integration_id, version=current.version, destination_config=destination_config
        )

    def submit(self, bill: dict[str, Any]) -> None:
        self.engine.submit_bill(bill, ACCOUNTS[self.destination])

    def deliver(self, bill: dict[str, Any]) -> Run:
        """Submit ``bill``, deliver what is due, and return the bill version's newest run."""
        self.submit(bill)
        self.engine.deliver_pending()
        return self.run(bill)

    def run(self, bill: dict[str, Any]) -> Run:
        runs = [
            r
            for r in self.engine.runs.list(bill_id=bill["id"], limit=None)
            if r.bill_version == bill["version"]
        ]
        return max(runs, key=lambda r: (r.created_at, r.id))

    def events(self, run: Run) -> list[Event]:
        return [
            e
            for e in self.engine.events.list(integration_id=self.integration_id, limit=None)
            if e.run_id == run.id
        ]

    def ledger(self, bill_id: str) -> LedgerEntry | None:
        with self.engine.uow() as uow:
            return uow.ledger.get(self.integration_id, bill_id)


@pytest.fixture
def books(database_url: str, tmp_path: Path) -> Iterator[Books]:
    clock = ManualClock(start=START)
    with running_emulators(clock, limits=False) as world:
        engine = make_engine(database_url, world, tmp_path, generate_key())
        try:
            yield Books(engine, world)
        finally:
            engine.close()


def bill(
    destination: str,
    n: int = 1,
    *,
    version: int = 1,
    amount: str = "100.00",
    **fields: Any,
) -> dict[str, Any]:
    """A one-line bill (a standing charge of ``amount``) numbered ``INV-{n}``."""
    return {
        "id": f"bill-{n}",
        "version": version,
        "accountId": ACCOUNT_ID,
        "currency": CURRENCIES[destination],
        "status": "APPROVED",
        "billDate": "2026-11-01",
        "dueDate": "2026-12-01",
        "sequentialInvoiceNumber": f"INV-{n}",
        "lineItems": [
            {
                "lineItemType": "STANDING_CHARGE",
                "sequenceNumber": 1,
                "description": "Platform",
                "quantity": "1",
                "averageUnitPrice": amount,
                "subtotal": amount,
                "productId": "p-platform",
            }
        ],
        **fields,
    }


def documents(books: Books) -> list[dict[str, Any]]:
    """Every sales document in the destination (invoices and credit notes)."""
    if books.destination == "quickbooks":
        company = books.world.company
        return [*company.invoices.values(), *company.credit_memos.values()]
    org = books.world.org
    return [org.render(doc) for doc in org.documents.values()]


# --- due dates ---------------------------------------------------------------------------------


@pytest.mark.parametrize("destination", ["quickbooks", "xero"])
def test_a_due_date_before_the_issue_date_is_refused_not_sent(
    books: Books, destination: str
) -> None:
    books.connect(destination)
    early = bill(destination, dueDate="2026-10-15")
    run = books.deliver(early)
    assert run.status.value == "ERROR"
    expected = (
        "bill bill-1 version 1: the due date 2026-10-15 is before the issue date 2026-11-01 "
        "(billDate); nothing was sent: correct the bill's dueDate and submit it again"
    )
    assert run.error == expected
    (event,) = books.events(run)
    assert event.type.value == "integration.validation.error" and expected in event.message
    assert documents(books) == []
    # The corrected version goes through.
    fixed = books.deliver(bill(destination, version=2))
    assert fixed.status.value == "COMPLETE"
    assert len(documents(books)) == 1


# --- invoice number prefix ------------------------------------------------------------------------


def numbers(books: Books) -> list[str]:
    field = "DocNumber" if books.destination == "quickbooks" else "InvoiceNumber"
    return [str(d[field]) for d in documents(books)]


@pytest.mark.parametrize(
    ("destination", "system", "limit"), [("quickbooks", "QuickBooks", 21), ("xero", "Xero", 255)]
)
def test_a_prefix_too_long_ends_the_run_in_error_and_a_replay_after_fixing_delivers(
    books: Books, destination: str, system: str, limit: int
) -> None:
    prefix = "P" * (limit - len("INV-1") + 1)
    books.connect(destination, invoiceNumberPrefix=prefix, invoiceNumberTooLong="REFUSE")
    run = books.deliver(bill(destination))
    assert run.status.value == "ERROR"
    expected = (
        f"the invoice number '{prefix}INV-1' (prefix '{prefix}' and the bill's "
        f"sequentialInvoiceNumber 'INV-1') has {limit + 1} characters; {system} takes at most "
        f"{limit}: shorten the invoice number prefix (invoiceNumberPrefix), or let {system} "
        "number such bills (invoiceNumberTooLong), then replay the run"
    )
    assert run.error == expected
    (event,) = books.events(run)
    assert event.type.value == "integration.validation.error" and expected in event.message
    assert documents(books) == []
    books.configure(invoiceNumberPrefix="US-", invoiceNumberTooLong="REFUSE")
    replay = books.engine.runs.replay(run.id)
    books.engine.deliver_pending()
    assert books.engine.runs.get(replay.id).status.value == "COMPLETE"
    assert numbers(books) == ["US-INV-1"]


# --- fallback items -------------------------------------------------------------------------------


def unmapped(destination: str, n: int = 1, **fields: Any) -> dict[str, Any]:
    """A bill with one mapped line and one whose product nobody mapped."""
    document = bill(destination, n, **fields)
    document["lineItems"].append(
        {
            "lineItemType": "AD_HOC",
            "sequenceNumber": 2,
            "description": "Onboarding",
            "quantity": "1",
            "averageUnitPrice": "50.00",
            "subtotal": "50.00",
            "productId": "p-nobody-mapped",
        }
    )
    return document


QBO_INACTIVE = (
    "Object Not Found : Something you're trying to use has been made inactive. Check the fields "
    "with accounts, customers, items, vendors or employees. (ItemRef 999)"
)
FALLBACK_CASES = [
    (
        "quickbooks",
        "999",
        f"QuickBooks cannot use ItemRef: it does not exist or has been made inactive (code 610): "
        f"{QBO_INACTIVE}; line 2 ('Onboarding') uses the unmatched one-time item 999 "
        "(unmatchedOneTimeItem): choose items that exist and are active in QuickBooks, then "
        "replay the run",
        f"Object Not Found: {QBO_INACTIVE} (code 610, element ItemRef)",
    ),
    (
        "xero",
        "NO-SUCH-ITEM",
        "Xero refused invoice INV-1 (bill bill-1): Item code 'NO-SUCH-ITEM' is not valid.; An "
        "account code must be specified for every line item of an approved document; line 2 "
        "('Onboarding') uses the unmatched one-time item NO-SUCH-ITEM (unmatchedOneTimeItem): "
        "choose items that exist and are active in Xero, then replay the run",
        "Item code 'NO-SUCH-ITEM' is not valid.\nAn account code must be specified for every "
        "line item of an approved document.",
    ),
]


@pytest.mark.parametrize(("destination", "missing", "expected", "detail"), FALLBACK_CASES)
def test_a_fallback_item_the_destination_does_not_have_ends_in_error_until_fixed(
    books: Books, destination: str, missing: str, expected: str, detail: str
) -> None:
    books.connect(destination, allowFallbackItems=True, unmatchedOneTimeItem=missing)
    run = books.deliver(unmapped(destination))
    assert run.status.value == "ERROR"
    # The message, then the destination's own words (the core keeps both on the run).
    assert run.error == f"{expected}: {detail}"
    (event,) = books.events(run)
    assert event.type.value == "integration.validation.error" and expected in event.message
    assert documents(books) == []
    existing = (
        books.world.company.id_of("Item", "Services") if destination == "quickbooks" else "FEES"
    )
    books.configure(allowFallbackItems=True, unmatchedOneTimeItem=existing)
    replay = books.engine.runs.replay(run.id)
    books.engine.deliver_pending()
    assert books.engine.runs.get(replay.id).status.value == "COMPLETE"
    # Which line fell back is on the record of the delivery, and in a preview beforehand.
    preview = books.engine.preview(
        unmapped(destination), ACCOUNTS[destination], books.integration_id
    )
    assert [f["line"] for f in preview["fallbackLines"]] == ["line 2 ('Onboarding')"]
    entry = books.ledger("bill-1")
    assert entry is not None
    assert entry.state["fallbackLines"] == [
        {
            "line": "line 2 ('Onboarding')",
            "lineItemType": "AD_HOC",
            "item": existing,
            "option": "unmatchedOneTimeItem",
        }
    ]


def test_without_fallback_items_an_unmapped_product_is_still_a_missing_mapping(
    books: Books,
) -> None:
    # A fallback item chosen but not allowed changes nothing: the default stays MissingMapping.
    books.connect("quickbooks", unmatchedOneTimeItem=books.world.company.id_of("Item", "Fees"))
    run = books.deliver(unmapped("quickbooks"))
    assert run.status.value == "ERROR"
    assert "Product p-nobody-mapped" in (run.error or "")
    (event,) = books.events(run)
    assert event.type.value == "integration.validation.error"
    assert documents(books) == []


# --- tax --------------------------------------------------------------------------------------------


QBO_NO_TAX_CODE = (
    "Object Not Found : Something you're trying to use has been made inactive. Check the fields "
    "with accounts, customers, items, vendors or employees. (TaxCodeRef NO-SUCH-CODE)"
)
TAX_CASES = [
    (
        "quickbooks",
        {"defaultTaxCode": "NO-SUCH-CODE"},
        f"QuickBooks cannot use TaxCodeRef: it does not exist or has been made inactive (code "
        f"610): {QBO_NO_TAX_CODE}: Object Not Found: {QBO_NO_TAX_CODE} (code 610, element "
        "TaxCodeRef)",
    ),
    (
        "xero",
        {"defaultTaxType": "NO-SUCH-TYPE"},
        "Xero refused invoice INV-1 (bill bill-1): The TaxType code 'NO-SUCH-TYPE' does not "
        "exist or cannot be used for this type of transaction.",
    ),
]


@pytest.mark.parametrize(("destination", "config", "expected"), TAX_CASES)
def test_a_tax_code_the_destination_rejects_ends_in_error_until_fixed(
    books: Books, destination: str, config: dict[str, Any], expected: str
) -> None:
    books.connect(destination, **config)
    run = books.deliver(bill(destination))
    assert run.status.value == "ERROR"
    # The message and the destination's own words, exactly as the run keeps them.
    assert run.error == expected
    (event,) = books.events(run)
    assert event.type.value == "integration.validation.error" and expected in event.message
    assert documents(books) == []
    books.configure(**TAXED[destination])
    replay = books.engine.runs.replay(run.id)
    books.engine.deliver_pending()
    assert books.engine.runs.get(replay.id).status.value == "COMPLETE"


TAXED: dict[str, dict[str, Any]] = {
    # The QuickBooks company's UK standard rate code is the first code added with a rate.
    "quickbooks": {
        "defaultTaxCode": "1",
        "taxCalculation": "TaxExcluded",
        "taxRates": [{"taxCode": "1", "ratePercent": "20"}],
    },
    "xero": {
        "defaultTaxType": "OUTPUT2",
        "lineAmountTypes": "Exclusive",
        "taxRates": [{"taxType": "OUTPUT2", "ratePercent": "20"}],
    },
}


@pytest.mark.parametrize("destination", ["quickbooks", "xero"])
def test_the_preview_shows_the_bill_total_and_the_destination_total_with_tax(
    books: Books, destination: str
) -> None:
    books.connect(destination, **TAXED[destination])
    if destination == "quickbooks":
        assert books.world.company.id_of("TaxCode", "20.0% S") == "1"
    document = bill(destination, amount="100.00")
    preview = books.engine.preview(document, ACCOUNTS[destination], books.integration_id)
    assert (
        preview["totals"]["bill"],
        preview["totals"]["tax"],
        preview["totals"]["destination"],
    ) == (
        "100.00",
        "20.00",
        "120.00",
    )
    run = books.deliver(document)
    assert run.status.value == "COMPLETE"
    (delivered,) = documents(books)
    total = delivered["TotalAmt"] if destination == "quickbooks" else delivered["Total"]
    assert str(total) == preview["totals"]["destination"]
    entry = books.ledger("bill-1")
    assert entry is not None and entry.state["totals"]["destination"] == "120.00"


# --- a bill whose total changes sign --------------------------------------------------------------


def credited(destination: str, version: int) -> dict[str, Any]:
    """Version ``version`` of bill 1 with a refund of 150.00: it totals -50.00."""
    document = bill(destination, version=version)
    document["lineItems"].append(
        {
            "lineItemType": "CREDIT_MEMO",
            "sequenceNumber": 2,
            "description": "Refund",
            "quantity": "1",
            "averageUnitPrice": "-150.00",
            "subtotal": "-150.00",
            "productId": "p-platform",
        }
    )
    return document


def earlier_invoice(books: Books) -> dict[str, Any]:
    if books.destination == "quickbooks":
        (invoice,) = books.world.company.invoices.values()
        return invoice
    (invoice,) = books.world.xero.documents(books.world.org.tenant_id, "Invoice")
    return invoice


@pytest.mark.parametrize("destination", ["quickbooks", "xero"])
def test_a_bill_that_becomes_a_credit_voids_its_invoice_and_gets_a_credit_note(
    books: Books, destination: str
) -> None:
    books.connect(destination)
    first = books.deliver(bill(destination))
    assert first.status.value == "COMPLETE"
    run = books.deliver(credited(destination, 2))
    assert (run.status.value, run.error) == ("COMPLETE", None)
    entry = books.ledger("bill-1")
    assert entry is not None and entry.bill_version == 2
    # QuickBooks numbers invoices and credit memos apart (both may be 1): the URL tells them.
    assert entry.external_id == run.external_id and entry.external_url == run.external_url
    assert run.external_url != first.external_url
    (voided,) = entry.state["voided"]
    assert (voided["id"], voided["status"], voided["billVersion"]) == (
        first.external_id,
        "VOIDED",
        1,
    )
    (note,) = entry.state["notes"]
    assert note.startswith("bill bill-1 version 2 totals -50.00 ")
    invoice = earlier_invoice(books)
    if destination == "quickbooks":
        assert invoice["TotalAmt"] == 0 and invoice["PrivateNote"].startswith("Voided")
        (memo,) = books.world.company.credit_memos.values()
        assert (memo["Id"], memo["TotalAmt"]) == (run.external_id, 50)
    else:
        assert invoice["Status"] == "VOIDED"
        (memo,) = books.world.xero.documents(books.world.org.tenant_id, "CreditNote")
        assert memo["CreditNoteID"] == run.external_id and memo["SubTotal"] == 50
    assert books.events(run) == []


@pytest.mark.parametrize("destination", ["quickbooks", "xero"])
def test_a_paid_invoice_is_not_voided_and_the_run_says_so(books: Books, destination: str) -> None:
    books.connect(destination)
    first = books.deliver(bill(destination))
    tenant = (
        books.world.company.realm_id if destination == "quickbooks" else books.world.org.tenant_id
    )
    emulator = books.world.quickbooks if destination == "quickbooks" else books.world.xero
    emulator.mark_paid(tenant, first.external_id)
    run = books.deliver(credited(destination, 2))
    assert run.status.value == "INVOICE_ALREADY_PAID"
    assert "is paid and cannot be voided" in (run.error or "")
    (event,) = books.events(run)
    assert event.type.value == "integration.perform.error"
    entry = books.ledger("bill-1")
    assert entry is not None and entry.bill_version == 1 and "voided" not in entry.state
