"""QuickBooks translation: bill + account + panel + mappings → Invoice / CreditMemo payload.

Pure: no network. Runs on the shared m3ter samples and on bills built here, covering every
option of the QuickBooks panel (a meta-test keeps that list honest).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs
import pytest
from billbridge_quickbooks.translate import (
    DOC_NUMBER_MAX,
    QuickBooksDocument,
    bill_marker,
    document_url,
    marked_bill,
    translate_bill,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from billbridge.domain.models import (
    Account,
    Band,
    Bill,
    LineItem,
    dumps,
    loads,
    parse_account,
    parse_bill,
)
from billbridge.domain.money import round_half_up
from billbridge.errors import DestinationValidationError, MissingMapping
from billbridge.plugin.contract import ResolvedMappings
from support import ROOT, SAMPLES

D = Decimal
PANEL = ROOT / "plugins" / "quickbooks" / "billbridge_quickbooks" / "schema.json"

# Every panel option some test below sets (the meta-test compares with schema.json).
OPTIONS_TESTED = {
    "splitUsageLineItems",
    "creditMemoItem",
    "debitMemoItem",
    "sendZeroQuantityLines",
    "allowBankTransferPayment",
    "allowCreditCardPayment",
    "bccInvoiceEmail",
    "accountManagerEmailCustomField",
    "sortLineItemsBy",
    "strictLineItemMapping",
    "defaultTaxCode",
    "taxCodesByLineType",
    "taxCalculation",
    "taxRates",
    "salesTerm",
    "customerMemo",
    "invoiceNumberSource",
    "invoiceNumberPrefix",
    "invoiceNumberTooLong",
    "allowFallbackItems",
    "unmatchedOneTimeItem",
    "unmatchedRecurringItem",
    # Status read-back, not translation: tests/unit/test_status_mapping.py.
    "paymentMethodMapping",
}


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


@pytest.fixture
def acme() -> tuple[Bill, Account]:
    """The Acme bill minus its account-wide commitment line (the core excludes that type)."""
    bill = parse_bill(sample("bill-acme-uk-2025-09.json"))
    kept = tuple(li for li in bill.line_items if li.line_item_type != "COMMITMENT_CONSUMED")
    return attrs.evolve(bill, line_items=kept), parse_account(sample("account-acme-uk.json"))


@pytest.fixture
def globex() -> tuple[Bill, Account]:
    return (
        parse_bill(sample("bill-globex-us-2026-09.json")),
        parse_account(sample("account-globex-us.json")),
    )


def mappings(account: Account, **extra: str) -> ResolvedMappings:
    entries = {
        ("Account", account.id, "Customer"): "58",
        ("Product", "p-platform", "Item"): "11",
        ("Product", "p-api", "Item"): "12",
        ("Product", "p-storage", "Item"): "13",
        ("Product", "p-events", "Item"): "14",
        ("Product", "p-seats", "Item"): "15",
    }
    for key, value in extra.items():
        entity, _, entity_id = key.partition("__")
        entries[(entity, entity_id, "Item")] = value
    return ResolvedMappings(entries)


def lines_of(document: QuickBooksDocument) -> list[dict[str, Any]]:
    return list(document.payload["Line"])


def amounts(document: QuickBooksDocument) -> list[Decimal]:
    return [line["Amount"] for line in lines_of(document)]


def detail(line: Mapping[str, Any]) -> Mapping[str, Any]:
    assert line["DetailType"] == "SalesItemLineDetail"
    value: Mapping[str, Any] = line["SalesItemLineDetail"]
    return value


def line(
    seq: int,
    subtotal: str,
    *,
    kind: str = "USAGE",
    quantity: str | None = "1",
    price: str | None = None,
    product: str | None = "p-platform",
    aggregation: str | None = None,
    description: str | None = None,
    bands: tuple[Band, ...] | None = None,
) -> LineItem:
    return LineItem(
        line_item_type=kind,
        id=f"li-{seq}",
        sequence_number=seq,
        description=description or f"line {seq}",
        quantity=D(quantity) if quantity is not None else None,
        average_unit_price=D(price) if price is not None else None,
        subtotal=D(subtotal),
        product_id=product,
        aggregation_id=aggregation,
        bands=bands,
    )


def bill_of(*items: LineItem, currency: str = "USD", **fields: Any) -> Bill:
    defaults: dict[str, Any] = {
        "id": "bill-1",
        "account_id": "acc-1",
        "currency": currency,
        "version": 1,
    }
    defaults.update(fields)
    return Bill(line_items=items, **defaults)


ACCOUNT = Account(id="acc-1", name="Initech", code="INITECH")


def translate(bill: Bill, config: Mapping[str, Any] | None = None, **kw: Any) -> QuickBooksDocument:
    return translate_bill(bill, ACCOUNT, config or {}, mappings(ACCOUNT), **kw)


# --- the samples -------------------------------------------------------------------------------


def test_acme_sample_invoice(acme: tuple[Bill, Account]) -> None:
    bill, account = acme
    doc = translate_bill(bill, account, {}, mappings(account))
    payload = doc.payload
    assert doc.entity == "Invoice"
    assert payload["CustomerRef"] == {"value": "58"}
    assert payload["DocNumber"] == "INV-000123"
    assert payload["TxnDate"] == "2025-10-01"  # externalInvoiceDate
    assert payload["DueDate"] == "2025-10-31"
    assert payload["CurrencyRef"] == {"value": "GBP"}
    assert payload["BillEmail"] == {"Address": "ap@acme.example"}
    assert payload["AllowOnlineACHPayment"] is False
    assert payload["AllowOnlineCreditCardPayment"] is False
    for absent in ("BillEmailCc", "BillEmailBcc", "CustomerMemo", "SalesTermRef"):
        assert absent not in payload
    note = payload["PrivateNote"]
    assert note.startswith(f"billbridge bill {bill.id} version 3")
    assert "INV-2025-000123" in note and "PO-7788" in note
    assert marked_bill(note) == (bill.id, 3)

    lines = lines_of(doc)
    # The zero storage line is left off; five lines remain, numbered in order.
    assert [ln["Description"] for ln in lines] == [
        "Standing Charge",
        "API Calls",
        "Platform Minimum Spend Adjustment",
        "Goodwill credit - outage 2025-09-12",
        "Late onboarding fee",
    ]
    assert [ln["LineNum"] for ln in lines] == [1, 2, 3, 4, 5]
    assert amounts(doc) == [D("500.00"), D("600.00"), D("300.00"), D("-50.00"), D("20.00")]
    # Bill total 1270 includes the excluded -100 commitment line.
    assert sum(amounts(doc)) == bill.lines_total() == D("1370")
    assert bill.bill_total is not None and sum(amounts(doc)) == bill.bill_total + D(100)
    api = detail(lines[1])
    assert api["ItemRef"] == {"value": "12"}
    assert api["Qty"] == D("150000") and api["UnitPrice"] == D("0.004")
    assert api["ServiceDate"] == "2025-09-01"
    assert detail(lines[0])["ServiceDate"] == "2025-10-01"
    assert "ServiceDate" not in detail(lines[2])
    assert "TaxCodeRef" not in api
    # The credit line keeps a positive quantity; the sign is on the price and amount.
    assert detail(lines[3])["Qty"] == D(1) and detail(lines[3])["UnitPrice"] == D(-50)


def test_acme_commitment_line_needs_an_item() -> None:
    bill = parse_bill(sample("bill-acme-uk-2025-09.json"))
    account = parse_account(sample("account-acme-uk.json"))
    with pytest.raises(DestinationValidationError, match=r"COMMITMENT_CONSUMED") as caught:
        translate_bill(bill, account, {}, mappings(account))
    assert "Item on every sales line" in str(caught.value)


def test_globex_sample_and_zero_lines(globex: tuple[Bill, Account]) -> None:
    bill, account = globex
    doc = translate_bill(bill, account, {}, mappings(account))
    assert doc.payload["DocNumber"] == "INV-001042"
    assert doc.payload["CurrencyRef"] == {"value": "USD"}
    assert [ln["Description"] for ln in lines_of(doc)] == [
        "Standing Charge",
        "Events ingested",
        "Seats",
    ]
    assert sum(amounts(doc)) == bill.bill_total == D("930")

    with_zero = translate_bill(bill, account, {"sendZeroQuantityLines": True}, mappings(account))
    zero = lines_of(with_zero)[-1]
    assert zero["Description"] == "Overage (zero this month)"
    assert zero["Amount"] == D("0.00")
    assert detail(zero)["Qty"] == D(0)
    assert detail(zero)["ItemRef"] == {"value": "15"}


def test_payload_json_keeps_decimals_exact(globex: tuple[Bill, Account]) -> None:
    bill, account = globex
    doc = translate_bill(bill, account, {}, mappings(account))
    text = dumps(doc.payload)
    assert '"Amount": 250.00' in text and '"UnitPrice": 0.0004' in text
    assert loads(text)["Line"][1]["SalesItemLineDetail"]["UnitPrice"] == D("0.0004")
    assert "e-" not in text.lower().replace("service", "")  # no exponent notation


# --- every panel option ----------------------------------------------------------------------


def test_split_per_usage_band(acme: tuple[Bill, Account]) -> None:
    bill, account = acme
    doc = translate_bill(bill, account, {"splitUsageLineItems": "USAGE_BAND"}, mappings(account))
    lines = lines_of(doc)
    assert [ln["Description"] for ln in lines[1:3]] == [
        "API Calls (0 – 100,000)",
        "API Calls (over 100,000)",
    ]
    assert [ln["Amount"] for ln in lines[1:3]] == [D("500.00"), D("100.00")]
    assert [(detail(ln)["Qty"], detail(ln)["UnitPrice"]) for ln in lines[1:3]] == [
        (D(100000), D("0.005")),
        (D(50000), D("0.002")),
    ]
    assert sum(amounts(doc)) == D("1370")


def test_split_per_product_and_per_aggregation() -> None:
    bill = bill_of(
        line(1, "10.00", product="p-api", aggregation="agg-a", quantity="10", price="1"),
        line(2, "5.00", kind="STANDING_CHARGE", product="p-platform"),
        line(3, "2.50", product="p-api", aggregation="agg-b", quantity="5", price="0.5"),
    )
    per_product = translate(bill, {"splitUsageLineItems": "PRODUCT"})
    assert amounts(per_product) == [D("12.50"), D("5.00")]
    assert detail(lines_of(per_product)[0])["ItemRef"] == {"value": "12"}
    per_aggregation = translate(bill, {"splitUsageLineItems": "AGGREGATION"})
    assert amounts(per_aggregation) == [D("10.00"), D("5.00"), D("2.50")]


def test_sort_line_items() -> None:
    bill = bill_of(
        line(1, "1.00", aggregation="agg-c"),
        line(2, "30.00", aggregation="agg-a"),
        line(3, "20.00", aggregation=None),
        line(4, "5.00", aggregation="agg-b"),
    )
    assert amounts(translate(bill)) == [D("1.00"), D("30.00"), D("20.00"), D("5.00")]
    by_subtotal = translate(bill, {"sortLineItemsBy": "SUBTOTAL"})
    assert amounts(by_subtotal) == [D("30.00"), D("20.00"), D("5.00"), D("1.00")]
    # LineNum follows the sorted order: QuickBooks shows lines by LineNum.
    assert [ln["LineNum"] for ln in lines_of(by_subtotal)] == [1, 2, 3, 4]
    by_aggregation = translate(bill, {"sortLineItemsBy": "AGGREGATION_ID"})
    assert amounts(by_aggregation) == [D("30.00"), D("5.00"), D("1.00"), D("20.00")]


def test_strict_and_exact_line_item_mapping() -> None:
    # 3 × 3.333 = 9.999 → 10.00 rounded, but the bill's subtotal is 9.99.
    bill = bill_of(line(1, "9.99", quantity="3", price="3.333"))
    exact = lines_of(translate(bill))[0]
    assert exact["Amount"] == D("9.99")
    assert round_half_up(detail(exact)["Qty"] * detail(exact)["UnitPrice"], 2) == D("9.99")
    strict_doc = translate(bill, {"strictLineItemMapping": True})
    strict = lines_of(strict_doc)[0]
    assert (detail(strict)["Qty"], detail(strict)["UnitPrice"]) == (D(3), D("3.333"))
    assert strict["Amount"] == D("10.00")
    assert any("9.99" in w for w in strict_doc.warnings)


def test_credit_and_debit_memo_items(acme: tuple[Bill, Account]) -> None:
    bill, account = acme
    config = {"creditMemoItem": "77", "debitMemoItem": "78"}
    lines = lines_of(translate_bill(bill, account, config, mappings(account)))
    by_description = {ln["Description"]: detail(ln)["ItemRef"]["value"] for ln in lines}
    assert by_description["Goodwill credit - outage 2025-09-12"] == "77"
    assert by_description["Late onboarding fee"] == "78"
    assert by_description["Standing Charge"] == "11"


def test_payment_options_emails_tax_term_and_memo(acme: tuple[Bill, Account]) -> None:
    bill, account = acme
    config = {
        "allowBankTransferPayment": True,
        "allowCreditCardPayment": True,
        "bccInvoiceEmail": "books@vendor.example",
        "accountManagerEmailCustomField": "accountManagerEmail",
        "defaultTaxCode": "TAX",
        "salesTerm": "3",
        "customerMemo": "Thank you for your business.",
    }
    payload = translate_bill(bill, account, config, mappings(account)).payload
    assert payload["AllowOnlineACHPayment"] is True
    assert payload["AllowOnlineCreditCardPayment"] is True
    assert payload["BillEmailBcc"] == {"Address": "books@vendor.example"}
    assert payload["BillEmailCc"] == {"Address": "sam@billing.example"}
    assert payload["SalesTermRef"] == {"value": "3"}
    assert payload["CustomerMemo"] == {"value": "Thank you for your business."}
    assert all(detail(ln)["TaxCodeRef"] == {"value": "TAX"} for ln in payload["Line"])


def test_tax_code_per_line_type_and_the_calculation() -> None:
    bill = bill_of(
        line(1, "100.00", kind="STANDING_CHARGE"),
        line(2, "40.00", kind="USAGE"),
        line(3, "10.00", kind="AD_HOC"),
    )
    config = {
        "defaultTaxCode": "7",
        "taxCodesByLineType": {"USAGE": "8", "AD_HOC": ""},
        "taxCalculation": "TaxExcluded",
        "taxRates": [{"taxCode": "7", "ratePercent": "20"}, {"taxCode": "8", "ratePercent": "5"}],
    }
    doc = translate(bill, config)
    assert [detail(li)["TaxCodeRef"]["value"] for li in lines_of(doc)] == ["7", "8", "7"]
    assert doc.payload["GlobalTaxCalculation"] == "TaxExcluded"
    # QuickBooks rounds per rate: 110.00 at 20 % and 40.00 at 5 %.
    assert (doc.totals.tax, doc.totals.destination) == (D("24.00"), D("174.00"))
    assert "GlobalTaxCalculation" not in translate(bill, {"defaultTaxCode": "7"}).payload
    with pytest.raises(DestinationValidationError, match="taxCalculation must be one of"):
        translate(bill, {"taxCalculation": "Sometimes"})


def test_account_manager_cc_only_when_it_looks_like_an_email(acme: tuple[Bill, Account]) -> None:
    bill, account = acme
    config = {"accountManagerEmailCustomField": "country"}  # holds "UK", not an address
    doc = translate_bill(bill, account, config, mappings(account))
    assert "BillEmailCc" not in doc.payload
    assert any("'country'" in w for w in doc.warnings)
    missing = translate_bill(
        bill, account, {"accountManagerEmailCustomField": "nope"}, mappings(account)
    )
    assert "BillEmailCc" not in missing.payload
    no_fields = attrs.evolve(account, custom_fields=None)
    assert "BillEmailCc" not in translate_bill(bill, no_fields, config, mappings(account)).payload


def test_customer_memo_over_limit_is_refused(acme: tuple[Bill, Account]) -> None:
    bill, account = acme
    with pytest.raises(DestinationValidationError, match="1000"):
        translate_bill(bill, account, {"customerMemo": "x" * 1001}, mappings(account))


def test_panel_option_of_the_wrong_kind_is_a_validation_error() -> None:
    with pytest.raises(DestinationValidationError, match="splitUsageLineItems"):
        translate(bill_of(line(1, "1.00")), {"splitUsageLineItems": "PER_MOON"})


def test_every_panel_option_is_tested() -> None:
    options = set(json.loads(PANEL.read_text())["properties"])
    assert options == OPTIONS_TESTED


# --- documents and numbers ---------------------------------------------------------------------


def test_negative_total_becomes_a_credit_memo() -> None:
    bill = bill_of(
        line(1, "-150.00", kind="CREDIT_MEMO", quantity="1", price="-150"),
        line(2, "50.00", kind="STANDING_CHARGE"),
        due_date=datetime(2026, 2, 1).date(),
        sequential_invoice_number="CM-1",
    )
    doc = translate(bill, {"allowCreditCardPayment": True, "bccInvoiceEmail": "b@x.example"})
    assert doc.entity == "CreditMemo"
    assert doc.plan.is_negated and doc.plan.total == D("100.00")
    # Negated exactly once: the credit is positive on the memo, the charge negative.
    assert amounts(doc) == [D("150.00"), D("-50.00")]
    assert detail(lines_of(doc)[0])["UnitPrice"] == D(150)
    assert all(detail(ln)["Qty"] >= 0 for ln in lines_of(doc))
    for invoice_only in (
        "DueDate",
        "AllowOnlineACHPayment",
        "AllowOnlineCreditCardPayment",
        "BillEmailBcc",
        "BillEmailCc",
    ):
        assert invoice_only not in doc.payload
    assert doc.payload["DocNumber"] == "CM-1"
    assert doc.url("7") == "https://app.qbo.intuit.com/app/creditmemo?txnId=7"


def test_zero_total_stays_an_invoice() -> None:
    bill = bill_of(line(1, "-5.00"), line(2, "5.00", kind="STANDING_CHARGE"))
    doc = translate(bill)
    assert doc.entity == "Invoice" and sum(amounts(doc)) == 0


def test_jpy_has_no_minor_units() -> None:
    bill = bill_of(
        line(1, "1000", quantity="3", price="333.3333"),
        line(2, "1500", quantity="1", price="1500"),
        currency="JPY",
    )
    doc = translate(bill)
    assert doc.payload["CurrencyRef"] == {"value": "JPY"}
    assert amounts(doc) == [D("1000"), D("1500")]
    for ln in lines_of(doc):
        assert ln["Amount"].as_tuple().exponent == 0
        assert round_half_up(detail(ln)["Qty"] * detail(ln)["UnitPrice"], 0) == ln["Amount"]


def test_long_invoice_number_is_left_to_quickbooks() -> None:
    number = "INV-" + "9" * (DOC_NUMBER_MAX - 3)
    doc = translate(bill_of(line(1, "1.00"), sequential_invoice_number=number))
    assert "DocNumber" not in doc.payload and doc.doc_number is None
    assert any("longer than QuickBooks allows" in w for w in doc.warnings)
    assert number in doc.payload["PrivateNote"]
    fits = translate(bill_of(line(1, "1.00"), sequential_invoice_number=number[:DOC_NUMBER_MAX]))
    assert fits.doc_number == number[:DOC_NUMBER_MAX]


def test_invoice_number_source_and_prefix() -> None:
    base = bill_of(
        line(1, "1.00"), sequential_invoice_number="INV-7", external_invoice_reference="EXT-7"
    )
    assert translate(base, {"invoiceNumberPrefix": "US-"}).doc_number == "US-INV-7"
    external = {"invoiceNumberSource": "EXTERNAL_INVOICE_REFERENCE", "invoiceNumberPrefix": "R"}
    assert translate(base, external).doc_number == "REXT-7"
    own = translate(base, {"invoiceNumberSource": "QUICKBOOKS", "invoiceNumberPrefix": "US-"})
    assert own.doc_number is None and "DocNumber" not in own.payload
    # The bill's own number stays in the private note, whatever goes into DocNumber.
    assert "invoice number INV-7" in own.payload["PrivateNote"]


def test_a_prefixed_number_too_long_is_refused_or_left_to_quickbooks() -> None:
    long = bill_of(line(1, "1.00"), sequential_invoice_number="INV-" + "9" * 15)
    refuse = {"invoiceNumberPrefix": "US-", "invoiceNumberTooLong": "REFUSE"}
    with pytest.raises(DestinationValidationError) as caught:
        translate(long, refuse)
    assert str(caught.value) == (
        "the invoice number 'US-INV-999999999999999' (prefix 'US-' and the bill's "
        "sequentialInvoiceNumber 'INV-999999999999999') has 22 characters; QuickBooks takes at "
        "most 21: shorten the invoice number prefix (invoiceNumberPrefix), or let QuickBooks "
        "number such bills (invoiceNumberTooLong), then replay the run"
    )
    left = translate(long, {"invoiceNumberPrefix": "US-"})  # the default leaves it to QuickBooks
    assert left.doc_number is None
    assert any("longer than QuickBooks allows" in w for w in left.warnings)


def test_dates_fall_back_to_the_bill_date() -> None:
    day = datetime(2026, 3, 1).date()
    doc = translate(bill_of(line(1, "1.00"), bill_date=day))
    assert doc.payload["TxnDate"] == "2026-03-01" and "DueDate" not in doc.payload
    assert "TxnDate" not in translate(bill_of(line(1, "1.00"))).payload


def test_a_due_date_before_the_issue_date_is_refused() -> None:
    day = datetime(2026, 3, 1).date
    early = bill_of(line(1, "1.00"), bill_date=day(), due_date=datetime(2026, 2, 27).date())
    with pytest.raises(DestinationValidationError) as caught:
        translate(early)
    assert str(caught.value) == (
        "bill bill-1 version 1: the due date 2026-02-27 is before the issue date 2026-03-01 "
        "(billDate); nothing was sent: correct the bill's dueDate and submit it again"
    )
    # The external invoice date is the issue date when the bill has one; the same day is fine.
    dated = attrs.evolve(early, external_invoice_date=datetime(2026, 2, 20).date())
    assert translate(dated).payload["DueDate"] == "2026-02-27"
    assert translate(attrs.evolve(early, due_date=day())).payload["DueDate"] == "2026-03-01"


def test_urls_and_markers() -> None:
    assert document_url("Invoice", "12") == "https://app.qbo.intuit.com/app/invoice?txnId=12"
    assert (
        document_url("Invoice", "12", sandbox=True)
        == "https://app.sandbox.qbo.intuit.com/app/invoice?txnId=12"
    )
    assert (
        translate(bill_of(line(1, "1.00")), sandbox=True)
        .url("3")
        .startswith("https://app.sandbox.qbo.intuit.com/app/invoice")
    )
    bill = bill_of(line(1, "1.00"), version=4)
    assert marked_bill(f"note; {bill_marker(bill)}; more") == ("bill-1", 4)
    assert marked_bill("typed by a person") is None
    assert marked_bill(None) is None


# --- mappings and limits -----------------------------------------------------------------------


def test_missing_customer_mapping(acme: tuple[Bill, Account]) -> None:
    bill, account = acme
    with pytest.raises(MissingMapping) as caught:
        translate_bill(bill, account, {}, ResolvedMappings({}))
    error = caught.value
    assert (error.entity, error.entity_id, error.table) == ("Account", account.id, "Customer")
    assert "Acme Ltd" in str(error) and "ACME-UK-001" in str(error)


def test_missing_item_mapping_names_the_product(acme: tuple[Bill, Account]) -> None:
    bill, account = acme
    entries = dict(mappings(account).entries)
    del entries[("Product", "p-api", "Item")]
    with pytest.raises(MissingMapping) as caught:
        translate_bill(bill, account, {}, ResolvedMappings(entries))
    assert (caught.value.entity, caught.value.entity_id) == ("Product", "p-api")
    assert "API Calls" in str(caught.value)


def test_fallback_items_for_unmapped_lines_only_when_allowed() -> None:
    bill = bill_of(
        line(1, "10.00", kind="STANDING_CHARGE", product="p-new"),
        line(2, "5.00", kind="USAGE", product="p-newer"),
        line(3, "1.00", product="p-platform"),
    )
    fallbacks = {"unmatchedOneTimeItem": "31", "unmatchedRecurringItem": "32"}
    with pytest.raises(MissingMapping, match="allowFallbackItems"):
        translate(bill, fallbacks)
    doc = translate(bill, {**fallbacks, "allowFallbackItems": True})
    assert [detail(li)["ItemRef"]["value"] for li in lines_of(doc)] == ["31", "32", "11"]
    assert [entry["option"] for entry in doc.plan.fallbacks()] == [
        "unmatchedOneTimeItem",
        "unmatchedRecurringItem",
    ]


def test_missing_item_for_an_aggregation_and_a_memo() -> None:
    by_aggregation = bill_of(line(1, "1.00", product=None, aggregation="agg-x"))
    with pytest.raises(MissingMapping) as caught:
        translate(by_aggregation)
    assert (caught.value.entity, caught.value.entity_id) == ("Aggregation", "agg-x")
    memo = bill_of(line(1, "-1.00", kind="CREDIT_MEMO", product=None), line(2, "5.00"))
    with pytest.raises(DestinationValidationError, match="creditMemoItem"):
        translate(memo)
    assert amounts(translate(memo, {"creditMemoItem": "9"})) == [D("-1.00"), D("5.00")]


def test_field_limits() -> None:
    with pytest.raises(DestinationValidationError, match="4000"):
        translate(bill_of(line(1, "1.00", description="d" * 4001)))
    with pytest.raises(DestinationValidationError, match="10 digits"):
        translate(bill_of(line(1, "12345678901.00")))
    with pytest.raises(DestinationValidationError, match="PrivateNote"):
        translate(bill_of(line(1, "1.00"), external_invoice_reference="r" * 4000))
    with pytest.raises(DestinationValidationError, match="no lines left"):
        translate(bill_of(line(1, "0", quantity="0")))


def test_unusable_bill_email_is_left_off() -> None:
    account = attrs.evolve(ACCOUNT, email_address="not an address")
    doc = translate_bill(bill_of(line(1, "1.00")), account, {}, mappings(account))
    assert "BillEmail" not in doc.payload
    assert any("not an email address" in w for w in doc.warnings)


def test_line_totals_equal_the_bill_to_the_cent() -> None:
    # Thirds of a dollar: rounded one by one they would make 0.99; allocated they make 1.00.
    bill = bill_of(
        line(1, "0.333333", quantity="1"),
        line(2, "0.333333", quantity="1"),
        line(3, "0.333334", quantity="1"),
        line(4, "0.005", quantity="1"),
    )
    doc = translate(bill)
    assert sum(amounts(doc)) == round_half_up(bill.lines_total(), 2) == D("1.01")
    for ln in lines_of(doc):
        assert round_half_up(detail(ln)["Qty"] * detail(ln)["UnitPrice"], 2) == ln["Amount"]


# --- the 6070 property -----------------------------------------------------------------------

_quantities = st.decimals(min_value=D("0"), max_value=D("100000"), places=4)
_subtotals = st.decimals(min_value=D("-50000"), max_value=D("50000"), places=6)
_prices = st.decimals(min_value=D("-1000"), max_value=D("1000"), places=8)


@st.composite
def _bills(draw: st.DrawFn) -> Bill:
    count = draw(st.integers(min_value=1, max_value=6))
    items = []
    for seq in range(1, count + 1):
        bands = None
        if draw(st.booleans()):
            band_subtotals = draw(st.lists(_subtotals, min_size=1, max_size=3))
            bands = tuple(
                Band(
                    lower_limit=D(i * 100),
                    band_quantity=draw(_quantities),
                    unit_price=draw(_prices),
                    band_subtotal=s,
                )
                for i, s in enumerate(band_subtotals)
            )
            subtotal = sum(band_subtotals, D(0))
        else:
            subtotal = draw(_subtotals)
        items.append(
            LineItem(
                line_item_type=draw(st.sampled_from(["USAGE", "STANDING_CHARGE", "CREDIT_MEMO"])),
                sequence_number=seq,
                description=f"line {seq}",
                quantity=draw(st.none() | _quantities),
                average_unit_price=draw(st.none() | _prices),
                subtotal=subtotal,
                product_id="p-platform",
                aggregation_id=draw(st.sampled_from(["agg-a", "agg-b", None])),
                bands=bands,
            )
        )
    # A bill whose every line is zero has nothing to send: give it one charge.
    items.append(line(count + 1, "1.00", kind="STANDING_CHARGE"))
    return bill_of(*items, currency=draw(st.sampled_from(["USD", "GBP", "EUR"])))


@settings(max_examples=150, deadline=None)
@given(
    bill=_bills(),
    split=st.sampled_from(["NONE", "USAGE_BAND", "PRODUCT", "AGGREGATION"]),
    strict=st.booleans(),
    zero=st.booleans(),
)
def test_every_line_multiplies_out_to_its_amount(
    bill: Bill, split: str, strict: bool, zero: bool
) -> None:
    config = {
        "splitUsageLineItems": split,
        "strictLineItemMapping": strict,
        "sendZeroQuantityLines": zero,
    }
    doc = translate(bill, config)
    for ln in lines_of(doc):
        sales = detail(ln)
        # What QuickBooks checks (else 6070): Amount == round_half_up(Qty × UnitPrice, 2).
        assert round_half_up(sales["Qty"] * sales["UnitPrice"], 2) == ln["Amount"]
        assert sales["Qty"] >= 0
        assert -sales["UnitPrice"].as_tuple().exponent <= 7
        assert ln["Amount"].as_tuple().exponent >= -2
    total = sum(amounts(doc), D(0))
    sign = -1 if doc.entity == "CreditMemo" else 1
    if not strict:
        # Exact mode: the document totals the bill's lines to the cent (lines left off are
        # zero), whatever the split.
        assert total == round_half_up(bill.lines_total() * sign, 2)
    assert (doc.entity == "CreditMemo") == doc.plan.is_negated
    assert total >= 0
    # What goes on the wire is what was computed, digit for digit.
    assert dumps(loads(dumps(doc.payload))) == dumps(doc.payload)
