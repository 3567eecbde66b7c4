"""Xero translation: bill + account + panel + mappings → one Invoices/CreditNotes element.

Pure tests on the real samples (``shared/samples``) and on bills built here: every panel
option, credit notes for negative totals, zero-decimal currencies, ``unitdp``, tracking, missing
mappings, and the line rule Xero checks (``LineAmount == Quantity × UnitAmount`` at 2 decimals)
as a property.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs
import pytest
from billbridge_xero.translate import XeroDocument, line_amount, translate_bill
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billbridge.domain.models import Account, Bill, dumps, loads, parse_account, parse_bill
from billbridge.domain.money import round_money
from billbridge.errors import DestinationValidationError, MissingMapping
from billbridge.plugin.contract import ResolvedMappings
from support import SAMPLES

D = Decimal
CONTACT = "3f2d9b1e-4c55-4bb5-9a6a-1c1f2e3d4a5b"
THEME = "5d4e3f2a-1b0c-4d9e-8f7a-6b5c4d3e2f1a"


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


@pytest.fixture(scope="module")
def acme_bill() -> Bill:
    return parse_bill((SAMPLES / "bill-acme-uk-2025-09.json").read_text())


@pytest.fixture(scope="module")
def acme() -> Account:
    return parse_account((SAMPLES / "account-acme-uk.json").read_text())


@pytest.fixture(scope="module")
def globex_bill() -> Bill:
    return parse_bill((SAMPLES / "bill-globex-us-2026-09.json").read_text())


@pytest.fixture(scope="module")
def globex() -> Account:
    return parse_account((SAMPLES / "account-globex-us.json").read_text())


def mappings(account: Account, **items: str) -> ResolvedMappings:
    """Account → Contact, plus ``Product``/``Aggregation`` → Item codes (``p_api="API"``)."""
    entries: dict[tuple[str, str, str], str] = {("Account", account.id, "Contact"): CONTACT}
    for key, code in items.items():
        entity, _, entity_id = key.partition("__")
        entries[(entity, entity_id.replace("_", "-"), "Item")] = code
    return ResolvedMappings(entries)


def full_mappings(account: Account) -> ResolvedMappings:
    return mappings(
        account,
        Product__p_platform="PLATFORM",
        Product__p_api="API-CALLS",
        Product__p_storage="STORAGE",
        Product__p_events="EVENTS",
        Product__p_seats="SEATS",
    )


def line(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "lineItemType": "USAGE",
        "quantity": 1,
        "averageUnitPrice": 10,
        "subtotal": 10,
        "productId": "p-api",
    }
    base.update(fields)
    return base


def make_bill(lines: Sequence[Mapping[str, Any]], currency: str = "GBP", **fields: Any) -> Bill:
    data: dict[str, Any] = {
        "id": "bill-1",
        "version": 1,
        "accountId": "acct-1",
        "currency": currency,
        "billDate": "2026-02-01",
        "dueDate": "2026-03-01",
        "sequentialInvoiceNumber": "INV-42",
        "externalInvoiceReference": "EXT-42",
        "purchaseOrderNumber": "PO-9",
        "lineItems": [dict(li, sequenceNumber=i + 1) for i, li in enumerate(lines)],
    }
    data.update(fields)
    return parse_bill(data)


ACCOUNT = Account(id="acct-1", name="Initech", code="INITECH")


def translate(bill: Bill, config: Mapping[str, Any] | None = None, **items: str) -> XeroDocument:
    return translate_bill(
        bill,
        ACCOUNT,
        {"defaultAccountCode": "200", **(config or {})},
        mappings(ACCOUNT, Product__p_api="API-CALLS", **items),
    )


def amounts(document: XeroDocument) -> list[Decimal]:
    return [li["LineAmount"] for li in document.payload["LineItems"]]


# --- the real samples --------------------------------------------------------------------------


def test_acme_sample_with_defaults(acme_bill: Bill, acme: Account) -> None:
    document = translate_bill(acme_bill, acme, {"defaultAccountCode": "200"}, full_mappings(acme))
    payload = document.payload
    assert document.kind == "Invoice"
    assert payload["Type"] == "ACCREC"
    assert payload["Contact"] == {"ContactID": CONTACT}
    assert payload["InvoiceNumber"] == "INV-000123"
    assert payload["Reference"] == "PO-7788"
    assert payload["Date"] == "2025-10-01"
    assert payload["DueDate"] == "2025-10-31"
    assert payload["CurrencyCode"] == "GBP"
    assert payload["Status"] == "DRAFT"
    assert payload["LineAmountTypes"] == "Exclusive"
    assert "BrandingThemeID" not in payload
    lines = payload["LineItems"]
    # The zero-quantity, zero-amount storage line is left off by default.
    assert [li["Description"] for li in lines] == [
        "Standing Charge",
        "API Calls",
        "Platform Minimum Spend Adjustment",
        "Goodwill credit - outage 2025-09-12",
        "Late onboarding fee",
        "Commitment Consumed (account-wide)",
    ]
    assert sum(amounts(document), D(0)) == D("1270.00") == acme_bill.bill_total
    assert lines[1] == {
        "Description": "API Calls",
        "Quantity": D("150000"),
        "UnitAmount": D("0.004"),
        "LineAmount": D("600.00"),
        "ItemCode": "API-CALLS",
    }
    # The commitment line maps to nothing: it posts to the default revenue account.
    assert lines[5]["AccountCode"] == "200" and "ItemCode" not in lines[5]
    assert all("AccountCode" not in li for li in lines[:5])
    # 0.004 has three decimals: the request must say unitdp=4.
    assert document.unitdp == 4
    assert document.warnings == ()


def test_globex_sample(globex_bill: Bill, globex: Account) -> None:
    document = translate_bill(
        globex_bill,
        globex,
        {"defaultAccountCode": "200", "splitUsageLineItems": "USAGE_BAND"},
        full_mappings(globex),
    )
    assert document.payload["InvoiceNumber"] == "INV-001042"
    assert document.payload["Reference"] == "PO-55"
    assert document.payload["CurrencyCode"] == "USD"
    assert [li["Description"] for li in document.payload["LineItems"]] == [
        "Standing Charge",
        "Events ingested (0 – 1,000,000)",
        "Events ingested (over 1,000,000)",
        "Seats",
    ]
    assert sum(amounts(document), D(0)) == D("930.00")


def test_line_totals_equal_the_bill_minus_excluded_lines(acme_bill: Bill, acme: Account) -> None:
    # The core drops excluded lines (types, products, aggregations) before translating.
    kept = tuple(
        li
        for li in acme_bill.line_items
        if li.line_item_type not in ("CREDIT_MEMO", "COMMITMENT_CONSUMED")
    )
    filtered = attrs.evolve(acme_bill, line_items=kept)
    document = translate_bill(filtered, acme, {"defaultAccountCode": "200"}, full_mappings(acme))
    expected = sum((li.subtotal or D(0) for li in kept), D(0))
    assert sum(amounts(document), D(0)) == round_money(expected, "GBP") == D("1420.00")
    assert document.plan.total == D("1420.00")


# --- panel options -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("SEQUENTIAL_INVOICE_NUMBER", "INV-000123"),
        ("EXTERNAL_INVOICE_REFERENCE", "INV-2025-000123"),
        ("XERO", None),
    ],
)
def test_invoice_number_source(
    acme_bill: Bill, acme: Account, source: str, expected: str | None
) -> None:
    document = translate_bill(
        acme_bill,
        acme,
        {"defaultAccountCode": "200", "invoiceNumberSource": source},
        full_mappings(acme),
    )
    assert document.payload.get("InvoiceNumber") == expected
    assert document.number == expected


def test_a_missing_number_is_left_to_xero_with_a_warning() -> None:
    bill = make_bill([line()], sequentialInvoiceNumber=None)
    document = translate(bill)
    assert "InvoiceNumber" not in document.payload
    assert any("sequentialInvoiceNumber" in w for w in document.warnings)


def test_an_invoice_number_over_255_characters_is_refused() -> None:
    bill = make_bill([line()], sequentialInvoiceNumber="N" * 256)
    with pytest.raises(DestinationValidationError, match="at most 255"):
        translate(bill)
    assert translate(make_bill([line()], sequentialInvoiceNumber="N" * 255)).number == "N" * 255


def test_invoice_number_prefix_on_invoices_and_credit_notes() -> None:
    prefixed = translate(make_bill([line()]), {"invoiceNumberPrefix": "UK-"})
    assert prefixed.payload["InvoiceNumber"] == "UK-INV-42"
    credit = make_bill([line(subtotal=-10, averageUnitPrice=-10)])
    assert translate(credit, {"invoiceNumberPrefix": "UK-"}).number == "UK-INV-42"
    own = translate(
        make_bill([line()]), {"invoiceNumberSource": "XERO", "invoiceNumberPrefix": "X"}
    )
    assert "InvoiceNumber" not in own.payload


def test_a_prefixed_number_too_long_is_refused_or_left_to_xero() -> None:
    bill = make_bill([line()], sequentialInvoiceNumber="N" * 250)
    with pytest.raises(DestinationValidationError) as caught:
        translate(bill, {"invoiceNumberPrefix": "UK-2026-"})
    assert str(caught.value).startswith(
        f"the invoice number 'UK-2026-{'N' * 250}' (prefix 'UK-2026-' and the bill's "
        f"sequentialInvoiceNumber '{'N' * 250}') has 258 characters; Xero takes at most 255: "
    )
    left = translate(
        bill, {"invoiceNumberPrefix": "UK-2026-", "invoiceNumberTooLong": "DESTINATION"}
    )
    assert "InvoiceNumber" not in left.payload
    assert any("longer than Xero allows (255 characters)" in w for w in left.warnings)


@pytest.mark.parametrize(
    ("source", "bill_fields", "expected"),
    [
        ("PURCHASE_ORDER_NUMBER", {}, "PO-9"),
        ("PURCHASE_ORDER_NUMBER", {"purchaseOrderNumber": None}, "EXT-42"),
        (
            "PURCHASE_ORDER_NUMBER",
            {"purchaseOrderNumber": None, "externalInvoiceReference": None},
            "bill-1",
        ),
        ("BILL_REFERENCE", {}, "EXT-42"),
        ("BILL_REFERENCE", {"externalInvoiceReference": None}, "bill-1"),
        ("NONE", {}, None),
    ],
)
def test_reference_source(source: str, bill_fields: dict[str, Any], expected: str | None) -> None:
    document = translate(make_bill([line()], **bill_fields), {"referenceSource": source})
    assert document.payload.get("Reference") == expected


def test_reference_defaults_to_the_purchase_order_number() -> None:
    assert translate(make_bill([line()])).payload["Reference"] == "PO-9"


@pytest.mark.parametrize("status", ["DRAFT", "SUBMITTED", "AUTHORISED"])
def test_invoice_status_and_what_an_update_sends(status: str) -> None:
    document = translate(make_bill([line()]), {"invoiceStatus": status})
    assert document.payload["Status"] == status
    update = document.for_update("11111111-2222-3333-4444-555555555555")
    assert next(iter(update)) == "InvoiceID"
    # A lower status is not sent on update: Xero refuses AUTHORISED → DRAFT/SUBMITTED.
    assert update.get("Status") == ("AUTHORISED" if status == "AUTHORISED" else None)
    assert document.for_create() == document.payload
    assert document.for_create() is not document.payload


@pytest.mark.parametrize("amount_types", ["Exclusive", "Inclusive", "NoTax"])
def test_line_amount_types(amount_types: str) -> None:
    document = translate(make_bill([line()]), {"lineAmountTypes": amount_types})
    assert document.payload["LineAmountTypes"] == amount_types


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("invoiceStatus", "PAID"),
        ("lineAmountTypes", "exclusive"),
        ("invoiceNumberSource", "RANDOM"),
        ("referenceSource", "CUSTOMER"),
        ("splitUsageLineItems", "PER_DAY"),
    ],
)
def test_invalid_option_values_are_refused_clearly(key: str, value: str) -> None:
    with pytest.raises(DestinationValidationError, match=key):
        translate(make_bill([line()]), {key: value})


def test_branding_theme_tax_type_and_tracking_on_every_line() -> None:
    bill = make_bill([line(), line(productId="p-other", description="Other")])
    document = translate(
        bill,
        {
            "brandingThemeId": THEME,
            "defaultTaxType": "OUTPUT2",
            "trackingCategories": [
                {"name": "Region", "option": "UK"},
                {"name": "Department", "option": "Sales"},
            ],
        },
    )
    assert document.payload["BrandingThemeID"] == THEME
    for item in document.payload["LineItems"]:
        assert item["TaxType"] == "OUTPUT2"
        assert item["Tracking"] == [
            {"Name": "Region", "Option": "UK"},
            {"Name": "Department", "Option": "Sales"},
        ]
    # Each line has its own list: changing one does not change the others.
    assert (
        document.payload["LineItems"][0]["Tracking"]
        is not document.payload["LineItems"][1]["Tracking"]
    )


def test_tax_type_per_line_type() -> None:
    bill = make_bill([line(lineItemType="STANDING_CHARGE"), line(), line(lineItemType="AD_HOC")])
    config = {
        "defaultTaxType": "OUTPUT2",
        "taxTypesByLineType": {"USAGE": "RROUTPUT", "AD_HOC": ""},
        "taxRates": [{"taxType": "OUTPUT2", "ratePercent": "20"}],
        "lineAmountTypes": "Inclusive",
    }
    document = translate(bill, config)
    assert [li["TaxType"] for li in document.payload["LineItems"]] == [
        "OUTPUT2",
        "RROUTPUT",
        "OUTPUT2",
    ]
    assert document.totals.destination is None
    assert document.totals.unknown == (
        "no rate is given for RROUTPUT in the panel's tax rates (taxRates)",
    )


def test_more_than_two_tracking_categories_are_refused() -> None:
    config = {
        "trackingCategories": [
            {"name": "Region", "option": "UK"},
            {"name": "Department", "option": "Sales"},
            {"name": "Channel", "option": "Direct"},
        ]
    }
    with pytest.raises(DestinationValidationError, match="at most 2"):
        translate(make_bill([line()]), config)


def test_a_tracking_category_without_an_option_is_refused() -> None:
    with pytest.raises(DestinationValidationError, match="option"):
        translate(make_bill([line()]), {"trackingCategories": [{"name": "Region", "option": ""}]})


def test_default_account_code_only_on_lines_without_an_item() -> None:
    bill = make_bill([line(), line(productId="p-unmapped", description="Unmapped")])
    items = translate(bill).payload["LineItems"]
    assert items[0]["ItemCode"] == "API-CALLS" and "AccountCode" not in items[0]
    assert items[1]["AccountCode"] == "200" and "ItemCode" not in items[1]


def test_split_per_usage_band(acme_bill: Bill, acme: Account) -> None:
    document = translate_bill(
        acme_bill,
        acme,
        {"defaultAccountCode": "200", "splitUsageLineItems": "USAGE_BAND"},
        full_mappings(acme),
    )
    bands = [li for li in document.payload["LineItems"] if li["Description"].startswith("API")]
    assert bands == [
        {
            "Description": "API Calls (0 – 100,000)",
            "Quantity": D("100000"),
            "UnitAmount": D("0.005"),
            "LineAmount": D("500.00"),
            "ItemCode": "API-CALLS",
        },
        {
            "Description": "API Calls (over 100,000)",
            "Quantity": D("50000"),
            "UnitAmount": D("0.002"),
            "LineAmount": D("100.00"),
            "ItemCode": "API-CALLS",
        },
    ]


@pytest.mark.parametrize(("split", "expected_lines"), [("PRODUCT", 2), ("AGGREGATION", 3)])
def test_split_per_product_and_per_aggregation(split: str, expected_lines: int) -> None:
    bill = make_bill(
        [
            line(aggregationId="agg-a", quantity=10, averageUnitPrice=1, subtotal=10),
            line(aggregationId="agg-b", quantity=5, averageUnitPrice=1, subtotal=5),
            line(
                productId="p-seats",
                aggregationId="agg-c",
                quantity=2,
                averageUnitPrice=3,
                subtotal=6,
            ),
        ]
    )
    document = translate(bill, {"splitUsageLineItems": split}, Product__p_seats="SEATS")
    assert len(document.payload["LineItems"]) == expected_lines
    assert sum(amounts(document), D(0)) == D("21.00")


def test_sort_by_subtotal() -> None:
    bill = make_bill(
        [
            line(subtotal=5, averageUnitPrice=5, description="small"),
            line(subtotal=50, averageUnitPrice=50, description="big"),
            line(subtotal=20, averageUnitPrice=20, description="middle"),
        ]
    )
    document = translate(bill, {"sortLineItemsBy": "SUBTOTAL"})
    assert [li["Description"] for li in document.payload["LineItems"]] == [
        "big",
        "middle",
        "small",
    ]


def test_sort_by_aggregation_id() -> None:
    bill = make_bill(
        [
            line(aggregationId="agg-b", description="b"),
            line(aggregationId=None, description="none"),
            line(aggregationId="agg-a", description="a"),
        ]
    )
    document = translate(bill, {"sortLineItemsBy": "AGGREGATION_ID"})
    assert [li["Description"] for li in document.payload["LineItems"]] == ["a", "b", "none"]


def test_zero_quantity_lines_only_when_asked(acme_bill: Bill, acme: Account) -> None:
    config = {"defaultAccountCode": "200", "sendZeroQuantityLines": True}
    document = translate_bill(acme_bill, acme, config, full_mappings(acme))
    storage = [
        li for li in document.payload["LineItems"] if li["Description"].startswith("Storage")
    ]
    assert storage == [
        {
            "Description": "Storage GB (eu-west-1)",
            "Quantity": D(0),
            "UnitAmount": D(0),
            "LineAmount": D("0.00"),
            "ItemCode": "STORAGE",
        }
    ]


def test_credit_and_debit_memo_items(acme_bill: Bill, acme: Account) -> None:
    config = {"defaultAccountCode": "200", "creditMemoItem": "CREDIT", "debitMemoItem": "FEES"}
    items = translate_bill(acme_bill, acme, config, full_mappings(acme)).payload["LineItems"]
    by_description = {li["Description"]: li for li in items}
    assert by_description["Goodwill credit - outage 2025-09-12"]["ItemCode"] == "CREDIT"
    assert by_description["Late onboarding fee"]["ItemCode"] == "FEES"


def test_strict_line_item_mapping_sends_the_bills_figures() -> None:
    bill = make_bill([line(quantity=3, averageUnitPrice=D("3.3333"), subtotal=10)])
    exact = translate(bill).payload["LineItems"][0]
    strict_document = translate(bill, {"strictLineItemMapping": True})
    strict = strict_document.payload["LineItems"][0]
    assert (exact["Quantity"], exact["UnitAmount"], exact["LineAmount"]) == (
        D(3),
        D("3.3333"),
        D("10.00"),
    )
    assert (strict["Quantity"], strict["UnitAmount"], strict["LineAmount"]) == (
        D(3),
        D("3.3333"),
        D("10.00"),
    )
    # A figure that does not multiply out: exact mode keeps the money, strict keeps the figures.
    odd = make_bill([line(quantity=3, averageUnitPrice=D("3.34"), subtotal=10)])
    assert translate(odd).payload["LineItems"][0]["LineAmount"] == D("10.00")
    strict_odd = translate(odd, {"strictLineItemMapping": True})
    assert strict_odd.payload["LineItems"][0]["LineAmount"] == D("10.02")
    assert any("10.02" in w for w in strict_odd.warnings)


def test_the_account_manager_email_is_not_a_xero_field(acme_bill: Bill, acme: Account) -> None:
    config = {"defaultAccountCode": "200", "accountManagerEmailCustomField": "accountManagerEmail"}
    document = translate_bill(acme_bill, acme, config, full_mappings(acme))
    assert "sam@billing.example" not in dumps(document.payload)
    assert any("account manager email" in w for w in document.warnings)
    # No warning when the account has no such field.
    plain = translate_bill(
        acme_bill, attrs.evolve(acme, custom_fields={}), config, full_mappings(acme)
    )
    assert not any("account manager" in w for w in plain.warnings)


def test_dates_come_from_the_external_invoice_date_first() -> None:
    bill = make_bill([line()], externalInvoiceDate="2026-02-03")
    assert translate(bill).payload["Date"] == "2026-02-03"
    no_dates = make_bill([line()], billDate=None, dueDate=None)
    payload = translate(no_dates).payload
    assert "Date" not in payload and "DueDate" not in payload


def test_a_due_date_before_the_issue_date_is_refused() -> None:
    early = make_bill([line()], externalInvoiceDate="2026-02-03", dueDate="2026-02-02")
    with pytest.raises(DestinationValidationError) as caught:
        translate(early)
    assert str(caught.value) == (
        "bill bill-1 version 1: the due date 2026-02-02 is before the issue date 2026-02-03 "
        "(externalInvoiceDate); nothing was sent: correct the bill's dueDate and submit it again"
    )
    # Credits too: the bill's dates are wrong whatever document it becomes.
    credit = make_bill([line(subtotal=-10, averageUnitPrice=-10)], dueDate="2026-01-31")
    with pytest.raises(DestinationValidationError, match="before the issue date 2026-02-01"):
        translate(credit)
    assert translate(make_bill([line()], dueDate="2026-02-01")).payload["DueDate"] == "2026-02-01"


# --- credit notes ------------------------------------------------------------------------------


def test_a_negative_total_becomes_an_accreccredit_credit_note() -> None:
    bill = make_bill(
        [
            line(subtotal=-150, averageUnitPrice=-150, lineItemType="CREDIT_MEMO"),
            line(subtotal=50, averageUnitPrice=50, description="Usage"),
        ]
    )
    document = translate(bill)
    payload = document.payload
    assert document.kind == "CreditNote"
    assert document.endpoint == "CreditNotes"
    assert payload["Type"] == "ACCRECCREDIT"
    assert payload["CreditNoteNumber"] == "INV-42"
    assert "InvoiceNumber" not in payload
    # Negated exactly once: the credit is positive on the credit note, the charge negative.
    assert amounts(document) == [D("150.00"), D("-50.00")]
    assert [li["UnitAmount"] for li in payload["LineItems"]] == [D(150), D(-50)]
    assert all(li["Quantity"] >= 0 for li in payload["LineItems"])
    assert document.plan.total == D("100.00") and document.plan.is_negated
    assert document.for_update("cn-id")["CreditNoteID"] == "cn-id"


def test_a_zero_total_is_an_invoice() -> None:
    bill = make_bill([line(subtotal=10), line(subtotal=-10, averageUnitPrice=-10)])
    assert translate(bill).kind == "Invoice"


# --- currencies and decimals ------------------------------------------------------------------


def test_jpy_amounts_are_whole_yen_and_pass_xeros_two_decimal_check() -> None:
    bill = make_bill(
        [
            line(quantity=150, averageUnitPrice=D("6.6667"), subtotal=1000),
            line(quantity=3, averageUnitPrice=D("333.3333"), subtotal=1000, productId="p-x"),
            line(quantity=150000, averageUnitPrice=D("0.0033"), subtotal=495, productId="p-y"),
        ],
        currency="JPY",
    )
    document = translate(bill)
    items = document.payload["LineItems"]
    assert amounts(document) == [D(1000), D(1000), D(495)]
    for item in items:
        assert item["LineAmount"] == line_amount(item["Quantity"], item["UnitAmount"])
    # 150 × 6.6667 = 1000.005, which Xero rounds to 1000.01: re-expressed as 1 × 1000.
    assert (items[0]["Quantity"], items[0]["UnitAmount"]) == (D(1), D(1000))
    assert any("1 × 1000" in w for w in document.warnings)
    assert document.payload["CurrencyCode"] == "JPY"


def test_jpy_strict_line_that_xero_would_refuse_is_refused_first() -> None:
    bill = make_bill([line(quantity=150, averageUnitPrice=D("6.6667"), subtotal=1000)], "JPY")
    with pytest.raises(DestinationValidationError, match="strict line item mapping"):
        translate(bill, {"strictLineItemMapping": True})


def test_three_decimal_currency_amounts_must_be_whole_cents() -> None:
    fine = make_bill([line(subtotal=D("12.340"), averageUnitPrice=D("12.34"))], "KWD")
    assert amounts(translate(fine)) == [D("12.340")]
    odd = make_bill([line(subtotal=D("12.345"), averageUnitPrice=D("12.345"))], "KWD")
    with pytest.raises(DestinationValidationError, match="2 decimal places"):
        translate(odd)


def test_unitdp_is_4_only_when_a_unit_amount_needs_it() -> None:
    assert (
        translate(make_bill([line(averageUnitPrice=D("10.50"), subtotal=D("10.50"))])).unitdp == 2
    )
    four = translate(
        make_bill([line(quantity=1000, averageUnitPrice=D("0.0125"), subtotal=D("12.50"))])
    )
    assert four.unitdp == 4
    assert four.payload["LineItems"][0]["UnitAmount"] == D("0.0125")


# --- mappings ----------------------------------------------------------------------------------


def test_a_missing_contact_mapping(acme_bill: Bill, acme: Account) -> None:
    with pytest.raises(MissingMapping) as caught:
        translate_bill(acme_bill, acme, {"defaultAccountCode": "200"}, ResolvedMappings({}))
    error = caught.value
    assert (error.entity, error.entity_id, error.table) == ("Account", acme.id, "Contact")
    assert "Acme Ltd" in str(error) and "ACME-UK-001" in str(error)


def test_a_line_with_neither_item_nor_default_account_names_the_product(acme: Account) -> None:
    bill = make_bill([line(productId="p-x", productName="Widgets")])
    with pytest.raises(MissingMapping) as caught:
        translate_bill(bill, ACCOUNT, {}, mappings(ACCOUNT))
    assert (caught.value.entity, caught.value.entity_id, caught.value.table) == (
        "Product",
        "p-x",
        "Item",
    )
    assert "Widgets" in str(caught.value) and "defaultAccountCode" in str(caught.value)


def test_fallback_items_take_unmapped_lines_before_the_default_account() -> None:
    bill = make_bill(
        [
            line(lineItemType="STANDING_CHARGE", productId="p-new"),
            line(lineItemType="USAGE", productId="p-newer"),
            line(),
        ]
    )
    fallbacks = {"unmatchedOneTimeItem": "FEES", "unmatchedRecurringItem": "EVENTS"}
    # Not allowed: unmapped lines post to the default account, as before.
    before = translate(bill, fallbacks).payload["LineItems"]
    assert [(li.get("ItemCode"), li.get("AccountCode")) for li in before] == [
        (None, "200"),
        (None, "200"),
        ("API-CALLS", None),
    ]
    document = translate(bill, {**fallbacks, "allowFallbackItems": True})
    assert [li.get("ItemCode") for li in document.payload["LineItems"]] == [
        "FEES",
        "EVENTS",
        "API-CALLS",
    ]
    assert [entry["item"] for entry in document.plan.fallbacks()] == ["FEES", "EVENTS"]


def test_a_line_with_only_an_aggregation_names_the_aggregation() -> None:
    bill = make_bill([line(productId=None, aggregationId="agg-9")])
    with pytest.raises(MissingMapping) as caught:
        translate_bill(bill, ACCOUNT, {}, mappings(ACCOUNT))
    assert (caught.value.entity, caught.value.entity_id) == ("Aggregation", "agg-9")


def test_a_line_with_nothing_to_map_asks_for_a_default_account_code() -> None:
    bill = make_bill([line(productId=None, lineItemType="COMMITMENT_CONSUMED")])
    with pytest.raises(DestinationValidationError, match="defaultAccountCode"):
        translate_bill(bill, ACCOUNT, {}, mappings(ACCOUNT))


def test_the_accounting_product_mapping_wins() -> None:
    bill = make_bill([line(productId="p-api", accountingProductId="p-acct")])
    document = translate(bill, Product__p_acct="ACCOUNTING")
    assert document.payload["LineItems"][0]["ItemCode"] == "ACCOUNTING"


def test_an_overlong_description_is_refused() -> None:
    with pytest.raises(DestinationValidationError, match="4000"):
        translate(make_bill([line(description="x" * 4001)]))


def test_a_bill_with_no_lines_left_is_refused() -> None:
    with pytest.raises(DestinationValidationError, match="no lines"):
        translate(make_bill([line(quantity=0, subtotal=0)]))


def test_the_payload_serialises_decimals_exactly(acme_bill: Bill, acme: Account) -> None:
    document = translate_bill(acme_bill, acme, {"defaultAccountCode": "200"}, full_mappings(acme))
    text = dumps({"Invoices": [document.payload]})
    assert '"UnitAmount": 0.004' in text and '"LineAmount": 600.00' in text
    assert loads(text)["Invoices"][0] == document.payload


# --- the line rule, as a property -------------------------------------------------------------

quantities = st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False)
prices = st.decimals(min_value=-(10**4), max_value=10**4, places=6, allow_nan=False)
currencies = st.sampled_from(["GBP", "USD", "EUR", "JPY", "NZD"])


@st.composite
def bills(draw: st.DrawFn) -> tuple[Bill, dict[str, Any]]:
    currency = draw(currencies)
    count = draw(st.integers(min_value=1, max_value=6))
    lines = []
    for n in range(count):
        quantity = draw(quantities)
        price = draw(prices)
        exact = quantity * price
        subtotal = draw(
            st.sampled_from(
                [round_money(exact, currency), exact, round_money(exact, currency) + D("0.01")]
            )
        )
        lines.append(
            line(
                quantity=quantity,
                averageUnitPrice=price,
                subtotal=subtotal,
                productId=f"p-{n % 3}",
                description=f"line {n}",
            )
        )
    config = {
        "defaultAccountCode": "200",
        # Strict JPY lines that Xero would refuse are refused first (tested above).
        "strictLineItemMapping": draw(st.booleans()) and currency != "JPY",
        "sendZeroQuantityLines": draw(st.booleans()),
        "splitUsageLineItems": draw(st.sampled_from(["NONE", "PRODUCT", "AGGREGATION"])),
    }
    return make_bill(lines, currency), config


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bills())
def test_every_line_multiplies_out_as_xero_checks(case: tuple[Bill, dict[str, Any]]) -> None:
    bill, config = case
    strict = config["strictLineItemMapping"]
    try:
        document = translate_bill(bill, ACCOUNT, config, mappings(ACCOUNT))
    except DestinationValidationError as exc:
        refused = str(exc)
        document = None
    if document is None:
        # Only a bill with no money and no quantity left, or amounts beyond what Xero stores.
        assert "no lines" in refused or "too large" in refused
        return
    items = document.payload["LineItems"]
    assert items
    for item in items:
        assert item["LineAmount"] == line_amount(item["Quantity"], item["UnitAmount"])
        assert item["Quantity"] >= 0
        exponent = item["UnitAmount"].normalize().as_tuple().exponent
        assert isinstance(exponent, int) and exponent >= -4
    needs_four = any(
        (e := i["UnitAmount"].normalize().as_tuple().exponent) is not None
        and isinstance(e, int)
        and e < -2
        for i in items
    )
    assert document.unitdp == (4 if needs_four else 2)
    total = sum((i["LineAmount"] for i in items), D(0))
    sign = -1 if document.kind == "CreditNote" else 1
    if not strict:
        # Exact mode: the document carries the bill's money to the minor unit.
        exact = sum((li.subtotal or D(0) for li in bill.line_items), D(0))
        assert sign * total == round_money(exact, bill.currency)
    assert total >= 0
