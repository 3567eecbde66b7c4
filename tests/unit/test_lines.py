"""Invoice lines from bills: splitting, items, zero lines, exact and strict amounts, sorting."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billbridge.domain.lines import (
    RECURRING_LINE_TYPES,
    USAGE_LINE_TYPES,
    InvoicePlan,
    LineOptions,
    SortBy,
    SplitMode,
    fallback_config_errors,
    plan_invoice,
    resolve_item,
    service_dates,
)
from billbridge.domain.models import Bill, LineItem, parse_bill
from billbridge.domain.money import MAX_AMOUNT, MoneyError, minor_units, round_half_up, round_money
from billbridge.errors import DestinationValidationError
from billbridge.plugin.contract import ResolvedMappings
from support import SAMPLES

D = Decimal
NO_MAPPINGS = ResolvedMappings()
ACME_MAPPINGS = ResolvedMappings(
    {
        ("Product", "p-platform", "Item"): "3",
        ("Product", "p-api", "Item"): "7",
        ("CompoundAggregation", "cagg-storage-gb", "Item"): "9",
    }
)


def sample(name: str) -> Bill:
    return parse_bill((SAMPLES / name).read_text(encoding="utf-8"))


@pytest.fixture
def acme() -> Bill:
    return sample("bill-acme-uk-2025-09.json")


@pytest.fixture
def globex() -> Bill:
    return sample("bill-globex-us-2026-09.json")


def make_bill(*lines: dict[str, Any], currency: str = "USD") -> Bill:
    return parse_bill(
        {"id": "bill-1", "accountId": "acc-1", "currency": currency, "lineItems": list(lines)}
    )


def item(
    subtotal: str | None, quantity: str | None = "1", price: str | None = None, **fields: Any
) -> dict[str, Any]:
    """A bill line (camelCase, as m3ter sends it); the unit price defaults to subtotal/quantity."""
    data: dict[str, Any] = {"lineItemType": "STANDING_CHARGE", "description": "Line", **fields}
    if subtotal is not None:
        data["subtotal"] = subtotal
    if quantity is not None:
        data["quantity"] = quantity
    if price is None and subtotal is not None and quantity not in (None, "0"):
        price = str(D(subtotal) / D(quantity))
    if price is not None:
        data["averageUnitPrice"] = price
    return data


def opts(**kwargs: Any) -> LineOptions:
    kwargs.setdefault("unit_price_places", 2)
    return LineOptions(**kwargs)


def places_of(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return max(-exponent, 0)


def figures(plan: InvoicePlan) -> list[tuple[str, str, str, str]]:
    return [
        (ln.description, str(ln.quantity), str(ln.unit_price), str(ln.amount)) for ln in plan.lines
    ]


def assert_multiplies_out(plan: InvoicePlan, options: LineOptions) -> None:
    minor = minor_units(plan.currency)
    for ln in plan.lines:
        assert round_half_up(ln.quantity * ln.unit_price, minor) == ln.amount, ln
        assert places_of(ln.unit_price) <= options.unit_price_places
        assert places_of(ln.quantity) <= options.quantity_places
        assert places_of(ln.amount) == minor
        assert ln.quantity >= 0


# --- options ----------------------------------------------------------------------------------


def test_line_options_defaults() -> None:
    options = LineOptions()
    assert options.split is SplitMode.NONE
    assert options.sort_by is SortBy.NONE
    assert not options.send_zero_quantity
    assert not options.strict
    assert (options.unit_price_places, options.quantity_places) == (2, 4)
    assert options.credit_memo_item is None
    assert options.debit_memo_item is None
    assert options.item_table == "Item"


def test_line_options_from_empty_config() -> None:
    options = LineOptions.from_config({}, unit_price_places=7)
    assert options == LineOptions(unit_price_places=7)


def test_line_options_from_config() -> None:
    options = LineOptions.from_config(
        {
            "splitUsageLineItems": "USAGE_BAND",
            "sortLineItemsBy": "AGGREGATION_ID",
            "sendZeroQuantityLines": True,
            "strictLineItemMapping": True,
            "creditMemoItem": "41",
            "debitMemoItem": "",
            "bccInvoiceEmail": "ignored@example.com",
        },
        unit_price_places=4,
        quantity_places=2,
        item_table="Items",
    )
    assert options == LineOptions(
        split=SplitMode.USAGE_BAND,
        sort_by=SortBy.AGGREGATION_ID,
        send_zero_quantity=True,
        strict=True,
        unit_price_places=4,
        quantity_places=2,
        credit_memo_item="41",
        debit_memo_item=None,
        item_table="Items",
    )


@pytest.mark.parametrize(
    "config",
    [
        {"splitUsageLineItems": "BY_PRODUCT"},
        {"splitUsageLineItems": 1},
        {"sortLineItemsBy": "subtotal"},
        {"sendZeroQuantityLines": "yes"},
        {"strictLineItemMapping": 1},
        {"creditMemoItem": 41},
    ],
)
def test_line_options_from_config_refuses_bad_values(config: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(config))):
        LineOptions.from_config(config, unit_price_places=2)


def test_line_options_converts_and_validates() -> None:
    assert LineOptions(split="PRODUCT", sort_by="SUBTOTAL").split is SplitMode.PRODUCT
    with pytest.raises(ValueError, match="split"):
        LineOptions(split="SIDEWAYS")
    with pytest.raises(ValueError, match="unit_price_places"):
        LineOptions(unit_price_places=-1)
    with pytest.raises(TypeError):
        LineOptions(quantity_places="4")  # type: ignore[arg-type]


def test_enum_values() -> None:
    assert [m.value for m in SplitMode] == ["NONE", "USAGE_BAND", "PRODUCT", "AGGREGATION"]
    assert [m.value for m in SortBy] == ["NONE", "SUBTOTAL", "AGGREGATION_ID"]
    assert {"USAGE", "OVERAGE_USAGE"} == USAGE_LINE_TYPES


# --- the samples -------------------------------------------------------------------------------


def test_acme_no_split(acme: Bill) -> None:
    plan = plan_invoice(acme, ACME_MAPPINGS, opts())
    assert plan.currency == "GBP"
    assert figures(plan) == [
        ("Standing Charge", "1", "500", "500.00"),
        # 150000 × a 2-place price cannot make 600.00 exactly: 1 × 600.00 instead.
        ("API Calls", "1", "600", "600.00"),
        ("Platform Minimum Spend Adjustment", "1", "300", "300.00"),
        ("Goodwill credit - outage 2025-09-12", "1", "-50", "-50.00"),
        ("Late onboarding fee", "1", "20", "20.00"),
        ("Commitment Consumed (account-wide)", "1", "-100", "-100.00"),
    ]
    assert [ln.item_id for ln in plan.lines] == ["3", "7", "3", "7", "3", None]
    assert [ln.line_item_type for ln in plan.lines][:2] == ["STANDING_CHARGE", "USAGE"]
    assert [ln.source[0].id for ln in plan.lines] == [
        "li-001",
        "li-002",
        "li-004",
        "li-005",
        "li-006",
        "li-007",
    ]
    assert plan.total == D("1270.00") == acme.bill_total
    assert plan.exact_total == D("1270")
    assert not plan.is_credit
    assert plan.warnings == ()
    assert all(ln.band is None for ln in plan.lines)
    assert_multiplies_out(plan, opts())


def test_acme_keeps_the_bill_quantity_when_the_price_has_room(acme: Bill) -> None:
    options = opts(unit_price_places=7)
    plan = plan_invoice(acme, ACME_MAPPINGS, options)
    assert figures(plan)[1] == ("API Calls", "150000", "0.004", "600.00")
    assert_multiplies_out(plan, options)


def test_acme_service_dates(acme: Bill) -> None:
    plan = plan_invoice(acme, ACME_MAPPINGS, opts())
    standing, usage, minimum = plan.lines[:3]
    # Standing charges are billed in advance: October, with the exclusive end made inclusive.
    assert (standing.service_start, standing.service_end) == (date(2025, 10, 1), date(2025, 10, 31))
    assert (usage.service_start, usage.service_end) == (date(2025, 9, 1), date(2025, 9, 30))
    assert (minimum.service_start, minimum.service_end) == (None, None)


def test_acme_credit_and_debit_memo_items(acme: Bill) -> None:
    plan = plan_invoice(acme, ACME_MAPPINGS, opts(credit_memo_item="CR", debit_memo_item="DR"))
    by_type = {ln.line_item_type: ln.item_id for ln in plan.lines}
    assert by_type["CREDIT_MEMO"] == "CR"
    assert by_type["DEBIT_MEMO"] == "DR"
    assert by_type["USAGE"] == "7"
    assert by_type["STANDING_CHARGE"] == "3"


def test_acme_split_per_usage_band(acme: Bill) -> None:
    options = opts(split=SplitMode.USAGE_BAND, unit_price_places=4)
    plan = plan_invoice(acme, ACME_MAPPINGS, options)
    assert figures(plan)[1:3] == [
        ("API Calls (0 – 100,000)", "100000", "0.005", "500.00"),
        ("API Calls (over 100,000)", "50000", "0.002", "100.00"),
    ]
    first, second = plan.lines[1:3]
    assert first.band is not None and first.band.pricing_band_id == "band-1"
    assert second.band is not None and second.band.pricing_band_id == "band-2"
    assert first.source == second.source == (acme.line_items[1],)
    assert first.item_id == second.item_id == "7"
    assert first.service_end == date(2025, 9, 30)
    assert len(plan.lines) == 7
    assert plan.total == D("1270.00")
    assert plan.warnings == ()
    assert_multiplies_out(plan, options)


def test_acme_zero_line_is_dropped_unless_asked(acme: Bill) -> None:
    dropped = plan_invoice(acme, ACME_MAPPINGS, opts())
    assert "li-003" not in [ln.source[0].id for ln in dropped.lines]
    kept = plan_invoice(acme, ACME_MAPPINGS, opts(send_zero_quantity=True))
    storage = kept.lines[2]
    assert storage.source[0].id == "li-003"
    assert (storage.quantity, storage.unit_price, str(storage.amount)) == (D(0), D(0), "0.00")
    assert storage.item_id == "9"  # through its compound aggregation
    assert kept.total == dropped.total


def test_acme_strict_rounds_visibly(acme: Bill) -> None:
    options = opts(split=SplitMode.USAGE_BAND, strict=True)
    plan = plan_invoice(acme, ACME_MAPPINGS, options)
    assert figures(plan)[1:3] == [
        ("API Calls (0 – 100,000)", "100000", "0.01", "1000.00"),
        ("API Calls (over 100,000)", "50000", "0", "0.00"),
    ]
    assert plan.total == D("1670.00")
    text = "\n".join(plan.warnings)
    assert "unit price 0.005 rounded to 0.01 (2 decimal places)" in text
    assert "unit price 0.002 rounded to 0" in text
    assert "100000 × 0.01 = 1000.00, but the bill's subtotal is 500" in text
    assert "add up to 1670.00, the bill's lines to 1270.00" in text
    assert "difference 400.00" in text
    assert_multiplies_out(plan, options)


def test_acme_strict_with_enough_places_is_quiet(acme: Bill) -> None:
    options = opts(split=SplitMode.USAGE_BAND, strict=True, unit_price_places=4)
    plan = plan_invoice(acme, ACME_MAPPINGS, options)
    assert plan.warnings == ()
    assert plan.total == D("1270.00")
    assert figures(plan)[1] == ("API Calls (0 – 100,000)", "100000", "0.005", "500.00")


def test_globex_split_modes(globex: Bill) -> None:
    none = plan_invoice(globex, NO_MAPPINGS, opts(unit_price_places=4))
    assert [ln.description for ln in none.lines] == ["Standing Charge", "Events ingested", "Seats"]
    assert figures(none)[1] == ("Events ingested", "1250000", "0.0004", "500.00")
    bands = plan_invoice(globex, NO_MAPPINGS, opts(split=SplitMode.USAGE_BAND, unit_price_places=4))
    assert [ln.description for ln in bands.lines] == [
        "Standing Charge",
        "Events ingested (0 – 1,000,000)",
        "Events ingested (over 1,000,000)",
        "Seats",
    ]
    for plan in (none, bands):
        assert plan.total == D("930.00") == globex.bill_total
        assert plan.warnings == ()
    merged = plan_invoice(
        globex, NO_MAPPINGS, opts(split=SplitMode.AGGREGATION, unit_price_places=4)
    )
    assert figures(merged) == figures(none)  # one line per aggregation already


def test_globex_zero_quantity_line_shows_its_price(globex: Bill) -> None:
    plan = plan_invoice(globex, NO_MAPPINGS, opts(send_zero_quantity=True))
    overage = plan.lines[-1]
    assert overage.description == "Overage (zero this month)"
    # Nothing to charge, quantity 0: the bill's unit price is shown, the amount stays zero.
    assert (str(overage.quantity), str(overage.unit_price), str(overage.amount)) == (
        "0",
        "0.5",
        "0.00",
    )
    assert_multiplies_out(plan, opts())


def test_globex_sorted(globex: Bill) -> None:
    by_subtotal = plan_invoice(globex, NO_MAPPINGS, opts(sort_by=SortBy.SUBTOTAL))
    assert [ln.description for ln in by_subtotal.lines] == [
        "Events ingested",
        "Standing Charge",
        "Seats",
    ]
    by_aggregation = plan_invoice(globex, NO_MAPPINGS, opts(sort_by=SortBy.AGGREGATION_ID))
    assert [ln.aggregation_id for ln in by_aggregation.lines] == ["agg-events", "agg-seats", None]


# --- item resolution ----------------------------------------------------------------------------


def line_item(**fields: Any) -> LineItem:
    return make_bill(item("1", **fields)).line_items[0]


FULL_MAPPINGS = ResolvedMappings(
    {
        ("Product", "p-acct", "Item"): "acct",
        ("Product", "p-prod", "Item"): "prod",
        ("Aggregation", "agg", "Item"): "agg",
        ("CompoundAggregation", "cagg", "Item"): "cagg",
        ("Product", "p-prod", "Account"): "wrong-table",
    }
)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {
                "accountingProductId": "p-acct",
                "productId": "p-prod",
                "aggregationId": "agg",
                "compoundAggregationId": "cagg",
            },
            "acct",
        ),
        (
            {
                "accountingProductId": "p-unmapped",
                "productId": "p-prod",
                "aggregationId": "agg",
            },
            "prod",
        ),
        (
            {"productId": "p-unmapped", "aggregationId": "agg", "compoundAggregationId": "cagg"},
            "agg",
        ),
        ({"productId": "p-unmapped", "compoundAggregationId": "cagg"}, "cagg"),
        ({"productId": "p-unmapped", "aggregationId": "a-unmapped"}, None),
        ({}, None),
    ],
)
def test_item_resolution_precedence(fields: dict[str, Any], expected: str | None) -> None:
    assert resolve_item(line_item(**fields), FULL_MAPPINGS, opts()) == expected


def test_item_resolution_uses_the_item_table() -> None:
    li = line_item(productId="p-prod")
    assert resolve_item(li, FULL_MAPPINGS, opts(item_table="Account")) == "wrong-table"
    assert resolve_item(li, FULL_MAPPINGS, opts(item_table="Other")) is None


@pytest.mark.parametrize(
    ("kind", "option"), [("CREDIT_MEMO", "credit_memo_item"), ("DEBIT_MEMO", "debit_memo_item")]
)
def test_memo_items(kind: str, option: str) -> None:
    memo = line_item(lineItemType=kind, accountingProductId="p-acct")
    assert resolve_item(memo, FULL_MAPPINGS, opts(**{option: "memo"})) == "memo"
    # Without the option, memos resolve like any other line.
    assert resolve_item(memo, FULL_MAPPINGS, opts()) == "acct"
    # The option applies to its own type only.
    other = line_item(lineItemType="MANUAL_ADJUSTMENT", accountingProductId="p-acct")
    assert resolve_item(other, FULL_MAPPINGS, opts(**{option: "memo"})) == "acct"


def test_credit_memo_item_is_not_used_for_debit_memos() -> None:
    debit = line_item(lineItemType="DEBIT_MEMO", productId="p-prod")
    assert resolve_item(debit, FULL_MAPPINGS, opts(credit_memo_item="CR")) == "prod"


# --- fallback items -------------------------------------------------------------------------------

FALLBACKS = {
    "allow_fallback_items": True,
    "fallback_one_time_item": "ONE-OFF",
    "fallback_recurring_item": "RECURRING",
}


def test_fallback_items_are_off_by_default() -> None:
    unmapped = line_item(lineItemType="STANDING_CHARGE", productId="p-unmapped")
    assert resolve_item(unmapped, FULL_MAPPINGS, opts()) is None
    # Configured but not allowed: still nothing, so today's MissingMapping stays the default.
    configured = opts(**{**FALLBACKS, "allow_fallback_items": False})
    assert resolve_item(unmapped, FULL_MAPPINGS, configured) is None


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("USAGE", "RECURRING"),
        ("OVERAGE_USAGE", "RECURRING"),
        ("COUNTER_RUNNING_TOTAL_CHARGE", "RECURRING"),
        ("MINIMUM_SPEND", "RECURRING"),
        ("STANDING_CHARGE", "ONE-OFF"),
        ("AD_HOC", "ONE-OFF"),
        ("CREDIT_MEMO", "ONE-OFF"),
        ("USAGE_CREDIT", "ONE-OFF"),
        ("A_TYPE_M3TER_ADDS_NEXT_YEAR", "ONE-OFF"),
    ],
)
def test_unmatched_lines_fall_back_by_line_type(kind: str, expected: str) -> None:
    unmapped = line_item(lineItemType=kind, productId="p-unmapped")
    assert resolve_item(unmapped, FULL_MAPPINGS, opts(**FALLBACKS)) == expected
    assert (kind in RECURRING_LINE_TYPES) == (expected == "RECURRING")


def test_mappings_and_memo_items_win_over_fallbacks() -> None:
    mapped = line_item(lineItemType="USAGE", productId="p-prod")
    assert resolve_item(mapped, FULL_MAPPINGS, opts(**FALLBACKS)) == "prod"
    memo = line_item(lineItemType="CREDIT_MEMO", productId="p-unmapped")
    assert resolve_item(memo, FULL_MAPPINGS, opts(**FALLBACKS, credit_memo_item="CR")) == "CR"
    # Only one of the two configured: the other kind of line finds nothing.
    recurring_only = opts(allow_fallback_items=True, fallback_recurring_item="RECURRING")
    standing = line_item(lineItemType="STANDING_CHARGE", productId="p-unmapped")
    assert resolve_item(standing, FULL_MAPPINGS, recurring_only) is None


def test_the_plan_says_which_lines_fell_back() -> None:
    bill = make_bill(
        item("10", "1", productId="p-api", sequenceNumber=1, description="API"),
        item("20", "1", productId="p-new", sequenceNumber=2, description="New product"),
        item("5", "2", lineItemType="USAGE", sequenceNumber=3, description="Unknown usage"),
    )
    plan = plan_invoice(bill, ACME_MAPPINGS, opts(**FALLBACKS))
    assert [(ln.item_id, ln.fallback) for ln in plan.lines] == [
        ("7", False),
        ("ONE-OFF", True),
        ("RECURRING", True),
    ]
    assert plan.fallbacks() == [
        {
            "line": "line 2 ('New product')",
            "lineItemType": "STANDING_CHARGE",
            "item": "ONE-OFF",
            "option": "unmatchedOneTimeItem",
        },
        {
            "line": "line 3 ('Unknown usage')",
            "lineItemType": "USAGE",
            "item": "RECURRING",
            "option": "unmatchedRecurringItem",
        },
    ]
    # A credit note keeps the record of what fell back.
    assert plan.negated().fallbacks() == plan.fallbacks()


def test_merged_lines_prefer_a_mapped_member_to_a_fallback() -> None:
    usage = {"lineItemType": "USAGE", "aggregationId": "agg-1"}
    bill = make_bill(
        item("1", "1", productId="p-new", sequenceNumber=1, **usage),
        item("2", "1", productId="p-api", sequenceNumber=2, **usage),
    )
    plan = plan_invoice(bill, ACME_MAPPINGS, opts(**FALLBACKS, split=SplitMode.AGGREGATION))
    (merged,) = plan.lines
    assert (merged.item_id, merged.fallback) == ("7", False)


def test_fallback_options_are_read_and_checked() -> None:
    options = LineOptions.from_config(
        {
            "allowFallbackItems": True,
            "unmatchedOneTimeItem": "11",
            "unmatchedRecurringItem": "",
        },
        unit_price_places=2,
    )
    assert (options.allow_fallback_items, options.fallback_one_time_item) == (True, "11")
    assert options.fallback_recurring_item is None
    assert fallback_config_errors({"allowFallbackItems": True, "unmatchedOneTimeItem": "11"}) == []
    assert fallback_config_errors({"unmatchedOneTimeItem": "11"}) == []
    (error,) = fallback_config_errors({"allowFallbackItems": True})
    assert (error.path, error.message) == (
        "/allowFallbackItems",
        "fallback items are allowed but none is chosen: pick an unmatched one-time item "
        "(unmatchedOneTimeItem) or an unmatched recurring item (unmatchedRecurringItem)",
    )


# --- order --------------------------------------------------------------------------------------


def test_lines_follow_sequence_numbers_none_last_stable() -> None:
    bill = make_bill(
        item("1", description="no number A"),
        item("2", description="third", sequenceNumber=3),
        item("3", description="first", sequenceNumber=1),
        item("4", description="no number B"),
        item("5", description="second", sequenceNumber=2),
        item("6", description="second too", sequenceNumber=2),
    )
    plan = plan_invoice(bill, NO_MAPPINGS, opts())
    assert [ln.description for ln in plan.lines] == [
        "first",
        "second",
        "second too",
        "third",
        "no number A",
        "no number B",
    ]


def test_description_falls_back_to_product_name_then_type() -> None:
    bill = make_bill(
        item("1", description=None, productName="Platform"),
        item("2", description="", lineItemType="AD_HOC"),
    )
    plan = plan_invoice(bill, NO_MAPPINGS, opts())
    assert [ln.description for ln in plan.lines] == ["Platform", "AD_HOC"]


# --- splitting: usage bands ---------------------------------------------------------------------


def banded(
    subtotal: str, bands: list[dict[str, Any]], key: str = "usagePerPricingBand", **fields: Any
) -> dict[str, Any]:
    fields.setdefault("lineItemType", "USAGE")
    fields.setdefault("description", "API Calls")
    return item(subtotal, "100", **fields) | {key: bands}


def test_bands_that_do_not_add_up_fall_back_to_one_line() -> None:
    bill = make_bill(
        banded(
            "600",
            [
                {"lowerLimit": 0, "bandQuantity": 50, "unitPrice": 5, "bandSubtotal": 250},
                {"lowerLimit": 50, "bandQuantity": 50, "unitPrice": 6, "bandSubtotal": 300},
            ],
            sequenceNumber=4,
        )
    )
    plan = plan_invoice(bill, NO_MAPPINGS, opts(split=SplitMode.USAGE_BAND))
    assert figures(plan) == [("API Calls", "100", "6", "600.00")]
    assert plan.lines[0].band is None
    assert plan.warnings == (
        "line 4 ('API Calls'): the pricing bands add up to 550, not to the line subtotal 600; "
        "sent as a single line, not per band",
    )


def test_band_without_any_subtotal_falls_back() -> None:
    bill = make_bill(banded("100", [{"lowerLimit": 0, "bandQuantity": 100, "unitPrice": 1}]))
    plan = plan_invoice(bill, NO_MAPPINGS, opts(split=SplitMode.USAGE_BAND))
    assert len(plan.lines) == 1
    assert "has no subtotal" in plan.warnings[0]


def test_band_subtotal_from_unit_subtotal_and_fixed_price() -> None:
    bill = make_bill(
        banded(
            "130",
            [
                {
                    "lowerLimit": 0,
                    "bandUnits": 40,
                    "unitPrice": 1,
                    "unitSubtotal": 40,
                    "fixedPrice": 10,
                },
                {"lowerLimit": 40, "bandQuantity": 60, "unitPrice": "1.25", "unitSubtotal": 75},
                {"lowerLimit": 100, "bandQuantity": 0, "fixedPrice": 5},
            ],
            key="bandUsage",
        )
    )
    options = opts(split=SplitMode.USAGE_BAND)
    plan = plan_invoice(bill, NO_MAPPINGS, options)
    assert figures(plan) == [
        # bandUnits stands in for a missing bandQuantity; 40 × 1.25 = 50 works.
        ("API Calls (0 – 40)", "40", "1.25", "50.00"),
        ("API Calls (40 – 100)", "60", "1.25", "75.00"),
        # A band with only a fixed price carries money: kept even with zero quantity.
        ("API Calls (over 100)", "1", "5", "5.00"),
    ]
    assert plan.warnings == ()
    assert_multiplies_out(plan, options)


def test_band_descriptions() -> None:
    bill = make_bill(
        banded(
            "3",
            [
                {"bandQuantity": 1, "bandSubtotal": 1},
                {"lowerLimit": "1000.5", "bandQuantity": 1, "bandSubtotal": 1},
                {"lowerLimit": "1E+6", "bandQuantity": 1, "bandSubtotal": 1},
            ],
        ),
        banded("2", [{"lowerLimit": 0, "bandQuantity": 100, "bandSubtotal": 2}]),
        banded(
            "2",
            [
                {"lowerLimit": 500, "bandQuantity": 1, "bandSubtotal": 1},
                {"lowerLimit": 100, "bandQuantity": 1, "bandSubtotal": 1},
            ],
        ),
    )
    plan = plan_invoice(bill, NO_MAPPINGS, opts(split=SplitMode.USAGE_BAND))
    assert [ln.description for ln in plan.lines] == [
        "API Calls (band 1)",
        "API Calls (1,000.5 – 1,000,000)",
        "API Calls (over 1,000,000)",
        # A lone band from zero is no tier: named by its position.
        "API Calls (band 1)",
        # Bands out of order: no range can be claimed.
        "API Calls (over 500)",
        "API Calls (over 100)",
    ]


def test_zero_bands_are_dropped_like_zero_lines() -> None:
    bill = make_bill(
        banded(
            "5",
            [
                {"lowerLimit": 0, "bandQuantity": 100, "unitPrice": "0.05", "bandSubtotal": 5},
                {"lowerLimit": 100, "bandQuantity": 0, "unitPrice": "0.01", "bandSubtotal": 0},
            ],
        )
    )
    assert len(plan_invoice(bill, NO_MAPPINGS, opts(split=SplitMode.USAGE_BAND)).lines) == 1
    kept = plan_invoice(
        bill, NO_MAPPINGS, opts(split=SplitMode.USAGE_BAND, send_zero_quantity=True)
    )
    assert len(kept.lines) == 2


def test_band_split_leaves_lines_without_bands_alone() -> None:
    bill = make_bill(item("10"), banded("4", []))
    plan = plan_invoice(bill, NO_MAPPINGS, opts(split=SplitMode.USAGE_BAND))
    assert [ln.description for ln in plan.lines] == ["Line", "API Calls"]


# --- splitting: product and aggregation ---------------------------------------------------------


def usage(subtotal: str, quantity: str, **fields: Any) -> dict[str, Any]:
    fields.setdefault("lineItemType", "USAGE")
    return item(subtotal, quantity, **fields)


def segmented_bill() -> Bill:
    return make_bill(
        item(
            "100",
            productId="p-api",
            productName="API",
            description="Platform fee",
            sequenceNumber=1,
        ),
        usage(
            "10",
            "1000",
            productId="p-api",
            productName="API",
            aggregationId="agg-calls",
            description="API calls (eu)",
            sequenceNumber=2,
            servicePeriodStartDate="2025-09-01T00:00:00Z",
            servicePeriodEndDate="2025-09-16T00:00:00Z",
        ),
        usage(
            "5",
            "500",
            productId="p-other",
            productName="Other",
            aggregationId="agg-other",
            description="Other usage",
            sequenceNumber=3,
        ),
        usage(
            "20",
            "2000",
            productId="p-api",
            productName="API",
            aggregationId="agg-calls",
            description="API calls (us)",
            sequenceNumber=4,
            servicePeriodStartDate="2025-09-16T00:00:00Z",
            servicePeriodEndDate="2025-10-01T00:00:00Z",
        ),
        usage(
            "7",
            "70",
            productId="p-api",
            productName="API",
            aggregationId="agg-storage",
            description="Storage",
            sequenceNumber=5,
        ),
        usage(
            "3",
            "30",
            lineItemType="OVERAGE_USAGE",
            productId="p-api",
            productName="API",
            aggregationId="agg-calls",
            description="API overage",
            sequenceNumber=6,
        ),
        usage("1", "1", description="No product, no aggregation", sequenceNumber=7),
        usage(
            "2",
            "4",
            productId="p-api",
            compoundAggregationId="agg-calls",
            description="Compound",
            sequenceNumber=8,
        ),
    )


SEGMENT_MAPPINGS = ResolvedMappings(
    {("Product", "p-api", "Item"): "api", ("Aggregation", "agg-other", "Item"): "other"}
)


def test_split_per_product_merges_usage_of_one_product() -> None:
    options = opts(split=SplitMode.PRODUCT, unit_price_places=7)
    plan = plan_invoice(segmented_bill(), SEGMENT_MAPPINGS, options)
    assert figures(plan) == [
        ("Platform fee", "1", "100", "100.00"),  # not usage: never merged
        # Lines 2, 4, 5 and 8 (all USAGE of p-api): 10 + 20 + 7 + 2, 1000 + 2000 + 70 + 4.
        ("API", "3074", "0.0126871", "39.00"),
        ("Other", "500", "0.01", "5.00"),
        ("API", "30", "0.1", "3.00"),  # overage usage is a group of its own
        ("No product, no aggregation", "1", "1", "1.00"),
    ]
    merged = plan.lines[1]
    assert [li.sequence_number for li in merged.source] == [2, 4, 5, 8]
    assert merged.item_id == "api"
    assert (merged.service_start, merged.service_end) == (date(2025, 9, 1), date(2025, 9, 30))
    assert merged.band is None
    assert plan.lines[3].line_item_type == "OVERAGE_USAGE"
    assert plan.total == D("148.00")
    assert plan.warnings == ()
    assert_multiplies_out(plan, options)


def test_split_per_product_uses_the_accounting_product() -> None:
    bill = make_bill(
        usage(
            "1",
            "1",
            productId="p-a",
            productName="A",
            accountingProductId="p-acct",
            accountingProductName="Accounting",
        ),
        usage("2", "1", productId="p-b", productName="B", accountingProductId="p-acct"),
        usage("4", "1", productId="p-a", productName="A"),
        usage("8", "1", productId="p-c", productName="C", accountingProductId="p-other"),
    )
    plan = plan_invoice(bill, NO_MAPPINGS, opts(split=SplitMode.PRODUCT))
    assert [(ln.description, str(ln.amount)) for ln in plan.lines] == [
        ("Accounting", "3.00"),
        ("A", "4.00"),
        # Grouped by an accounting product with no name: the product's name would be wrong.
        ("Line", "8.00"),
    ]


def test_split_per_aggregation_merges_usage_of_one_aggregation() -> None:
    options = opts(split=SplitMode.AGGREGATION)
    plan = plan_invoice(segmented_bill(), SEGMENT_MAPPINGS, options)
    assert [(ln.description, str(ln.quantity), str(ln.amount)) for ln in plan.lines] == [
        ("Platform fee", "1", "100.00"),
        ("API calls (eu)", "3000", "30.00"),
        ("Other usage", "500", "5.00"),
        ("Storage", "70", "7.00"),
        ("API overage", "30", "3.00"),
        ("No product, no aggregation", "1", "1.00"),
        # A compound aggregation is not the aggregation of the same id.
        ("Compound", "4", "2.00"),
    ]
    assert [li.description for li in plan.lines[1].source] == ["API calls (eu)", "API calls (us)"]
    assert plan.lines[2].item_id == "other"
    assert plan.total == D("148.00")
    assert_multiplies_out(plan, options)


def test_merged_lines_mapping_to_different_items_are_reported() -> None:
    bill = make_bill(
        usage("1", "1", productId="p-a", aggregationId="agg", sequenceNumber=1),
        usage("2", "1", productId="p-b", aggregationId="agg", sequenceNumber=2),
    )
    mappings = ResolvedMappings({("Product", "p-b", "Item"): "B"})
    plan = plan_invoice(bill, mappings, opts(split=SplitMode.AGGREGATION))
    assert len(plan.lines) == 1
    assert plan.lines[0].item_id == "B"
    assert plan.warnings == (
        "line 1 ('Line'): the merged lines map to different items (B, None); the invoice line uses B",
    )


def test_merged_zero_lines_follow_the_zero_rule() -> None:
    bill = make_bill(
        usage("0", "0", productId="p", aggregationId="agg"),
        usage("0", "0", productId="p", aggregationId="agg"),
        item("1"),
    )
    assert len(plan_invoice(bill, NO_MAPPINGS, opts(split=SplitMode.PRODUCT)).lines) == 1
    kept = plan_invoice(bill, NO_MAPPINGS, opts(split=SplitMode.PRODUCT, send_zero_quantity=True))
    assert len(kept.lines) == 2
    assert len(kept.lines[0].source) == 2


# --- zero lines ---------------------------------------------------------------------------------


def test_zero_quantity_line_with_money_is_kept_as_one_unit() -> None:
    bill = make_bill(item("12.34", "0", price="0"), item("0", None), item("0", "5", price="0"))
    plan = plan_invoice(bill, NO_MAPPINGS, opts())
    # The money line is kept (1 × amount); the no-quantity, no-money line is dropped; a line
    # with quantity but no money is kept (it is not a zero-quantity line).
    assert figures(plan) == [("Line", "1", "12.34", "12.34"), ("Line", "5", "0", "0.00")]


def test_zero_quantity_line_with_money_in_strict_mode_keeps_its_money() -> None:
    bill = make_bill(item("12.34", "0", price="3", sequenceNumber=1))
    plan = plan_invoice(bill, NO_MAPPINGS, opts(strict=True))
    assert figures(plan) == [("Line", "1", "12.34", "12.34")]
    assert plan.warnings == (
        "line 1 ('Line') has quantity 0; sent as 1 × 12.34 = 12.34, derived from its subtotal 12.34",
    )


def test_everything_zero_is_an_error_unless_zero_lines_are_sent() -> None:
    bill = make_bill(item("0", "0"), item("0.00", "0"))
    with pytest.raises(DestinationValidationError, match="no lines left"):
        plan_invoice(bill, NO_MAPPINGS, opts())
    plan = plan_invoice(bill, NO_MAPPINGS, opts(send_zero_quantity=True))
    assert len(plan.lines) == 2
    assert plan.total == 0
    assert not plan.is_credit


def test_a_bill_without_lines_is_an_error() -> None:
    with pytest.raises(
        DestinationValidationError, match="bill bill-1 has no lines left to send after filtering"
    ):
        plan_invoice(make_bill(), NO_MAPPINGS, opts())


# --- exact mode ----------------------------------------------------------------------------------


def test_exact_amounts_are_allocated_over_all_lines() -> None:
    bill = make_bill(*(item("0.333333", "1") for _ in range(3)))
    plan = plan_invoice(bill, NO_MAPPINGS, opts())
    assert [str(ln.amount) for ln in plan.lines] == ["0.34", "0.33", "0.33"]
    assert plan.total == D("1.00")
    assert plan.exact_total == D("0.999999")


def test_exact_mode_derives_quantity_and_price() -> None:
    bill = make_bill(
        item("10", "3"),  # 3 × 3.33 = 9.99: no good → 1 × 10
        item("10", "4"),  # 4 × 2.50 = 10.00
        item("0.01", "1000"),  # 1000 × 0.00 = 0 → 1 × 0.01
        item("7.5", "2.123456"),  # quantity rounded to 4 places: 2.1235 × 3.53 = 7.495955 → 7.50
    )
    options = opts()
    plan = plan_invoice(bill, NO_MAPPINGS, options)
    assert figures(plan) == [
        ("Line", "1", "10", "10.00"),
        ("Line", "4", "2.5", "10.00"),
        ("Line", "1", "0.01", "0.01"),
        ("Line", "2.1235", "3.53", "7.50"),
    ]
    assert_multiplies_out(plan, options)
    more = opts(unit_price_places=7)
    plan = plan_invoice(bill, NO_MAPPINGS, more)
    assert figures(plan)[:3] == [
        ("Line", "3", "3.3333333", "10.00"),
        ("Line", "4", "2.5", "10.00"),
        ("Line", "1000", "0.00001", "0.01"),
    ]
    assert_multiplies_out(plan, more)


def test_exact_mode_keeps_the_bills_unit_price_when_it_multiplies_out() -> None:
    bill = make_bill(
        item("185.90", "12.8205", price="14.50"),  # 12.8205 × 14.50 = 185.89725 → 185.90
        item("0.003", "3", price="0.001"),  # a sub-cent price on a line worth nothing
        item("-29.00", "-2", price="14.50"),  # a credit: the sign moves to the price
    )
    more = opts(unit_price_places=7)
    assert figures(plan_invoice(bill, NO_MAPPINGS, more)) == [
        ("Line", "12.8205", "14.5", "185.90"),
        ("Line", "3", "0.001", "0.00"),
        ("Line", "2", "-14.5", "-29.00"),
    ]
    # With two places the sub-cent price cannot be sent as it is: derived, and it shows 0.
    assert figures(plan_invoice(bill, NO_MAPPINGS, opts()))[1] == ("Line", "3", "0", "0.00")


def test_exact_mode_negative_quantity_is_sent_positive() -> None:
    bill = make_bill(item("-20", "-10", price="2"), item("50", "1"))
    plan = plan_invoice(bill, NO_MAPPINGS, opts())
    assert figures(plan)[0] == ("Line", "10", "-2", "-20.00")


def test_exact_mode_ignores_the_bills_unit_price() -> None:
    # The bill's figures do not multiply out; exact mode trusts the subtotal.
    bill = make_bill(item("100", "3", price="40"))
    plan = plan_invoice(bill, NO_MAPPINGS, opts())
    assert figures(plan) == [("Line", "1", "100", "100.00")]
    assert plan.warnings == ()


# --- strict mode -----------------------------------------------------------------------------------


def test_strict_sends_the_bills_figures() -> None:
    bill = make_bill(item("10", "4", price="2.5"), item("-20", "-10", price="2"))
    plan = plan_invoice(bill, NO_MAPPINGS, opts(strict=True))
    assert figures(plan) == [("Line", "4", "2.5", "10.00"), ("Line", "10", "-2", "-20.00")]
    assert plan.warnings == ()
    assert plan.total == D("-10.00")


def test_strict_reports_every_rounding() -> None:
    bill = make_bill(
        item("10", "3", price="3.333333", sequenceNumber=1),
        item("1.234567", "1.23456", price="1", sequenceNumber=2),
    )
    plan = plan_invoice(bill, NO_MAPPINGS, opts(strict=True))
    assert figures(plan) == [("Line", "3", "3.33", "9.99"), ("Line", "1.2346", "1", "1.23")]
    assert plan.warnings == (
        "line 1 ('Line'): unit price 3.333333 rounded to 3.33 (2 decimal places)",
        "line 1 ('Line'): 3 × 3.33 = 9.99, but the bill's subtotal is 10",
        "line 2 ('Line'): quantity 1.23456 rounded to 1.2346 (4 decimal places)",
        "strict line item mapping: the invoice lines add up to 11.22, the bill's lines to "
        "11.23 (exactly 11.234567); difference -0.01",
    )


def test_strict_without_figures_derives_them_and_says_so() -> None:
    bill = make_bill(
        item("10", None, price="2", sequenceNumber=1),
        item("10", "5", sequenceNumber=2) | {"averageUnitPrice": None},
    )
    plan = plan_invoice(bill, NO_MAPPINGS, opts(strict=True))
    assert figures(plan) == [("Line", "1", "10", "10.00"), ("Line", "5", "2", "10.00")]
    assert plan.warnings == (
        "line 1 ('Line') has no quantity; sent as 1 × 10 = 10.00, derived from its subtotal 10",
        "line 2 ('Line') has no unit price; sent as 5 × 2 = 10.00, derived from its subtotal 10",
    )


def test_strict_merged_lines_with_one_price_keep_it() -> None:
    bill = make_bill(
        usage("1", "100", price="0.01", productId="p", sequenceNumber=1),
        usage("2", "200", price="0.01", productId="p", sequenceNumber=2),
        usage("3", "100", price="0.03", productId="q", sequenceNumber=3),
        usage("4", "100", price="0.04", productId="q", sequenceNumber=4),
    )
    plan = plan_invoice(bill, NO_MAPPINGS, opts(strict=True, split=SplitMode.PRODUCT))
    # 0.03 and 0.04 merged: no single price to send, so the figures are derived (200 × 0.035
    # needs three places, hence 1 × 7) and the warning says so.
    assert figures(plan) == [("Line", "300", "0.01", "3.00"), ("Line", "1", "7", "7.00")]
    assert plan.warnings == (
        "line 3 ('Line') merges lines with different unit prices; sent as 1 × 7 = 7.00, "
        "derived from its subtotal 7",
    )


def test_strict_mode_uses_the_band_unit_price() -> None:
    bill = make_bill(
        banded(
            "7",
            [
                {"lowerLimit": 0, "bandQuantity": 50, "unitPrice": "0.1", "bandSubtotal": 5},
                {"lowerLimit": 50, "bandQuantity": 50, "unitPrice": "0.04", "bandSubtotal": 2},
            ],
        )
    )
    plan = plan_invoice(bill, NO_MAPPINGS, opts(strict=True, split=SplitMode.USAGE_BAND))
    assert figures(plan) == [
        ("API Calls (0 – 50)", "50", "0.1", "5.00"),
        ("API Calls (over 50)", "50", "0.04", "2.00"),
    ]
    assert plan.warnings == ()


# --- sorting -------------------------------------------------------------------------------------


def sortable_bill() -> Bill:
    return make_bill(
        item("5", description="a", aggregationId="agg-b"),
        item("20", description="b"),
        item("5", description="c", compoundAggregationId="agg-a"),
        item("-30", description="d", aggregationId="agg-c"),
        item("20", description="e", aggregationId="agg-b"),
        item("1", description="f"),
    )


def test_sort_none_keeps_the_bill_order() -> None:
    plan = plan_invoice(sortable_bill(), NO_MAPPINGS, opts(sort_by=SortBy.NONE))
    assert [ln.description for ln in plan.lines] == list("abcdef")


def test_sort_by_subtotal_is_descending_and_stable() -> None:
    plan = plan_invoice(sortable_bill(), NO_MAPPINGS, opts(sort_by=SortBy.SUBTOTAL))
    assert [ln.description for ln in plan.lines] == list("beacfd")


def test_sort_by_aggregation_id_puts_lines_without_one_last() -> None:
    plan = plan_invoice(sortable_bill(), NO_MAPPINGS, opts(sort_by=SortBy.AGGREGATION_ID))
    assert [ln.description for ln in plan.lines] == list("caedbf")


def test_sorting_never_changes_amounts() -> None:
    bill = make_bill(*(item(str(D("0.333333") * n), "1", description=str(n)) for n in range(1, 6)))
    plans = [plan_invoice(bill, NO_MAPPINGS, opts(sort_by=s)) for s in SortBy]
    amounts = [{ln.description: ln.amount for ln in plan.lines} for plan in plans]
    assert amounts[0] == amounts[1] == amounts[2]


# --- signs and credits -------------------------------------------------------------------------


def credit_bill() -> Bill:
    return make_bill(
        item("-100", "1", lineItemType="CREDIT_MEMO", description="Refund"),
        item("30", "3"),
        item("0", "2", price="0", description="Free"),
    )


def test_negative_total_is_a_credit() -> None:
    plan = plan_invoice(credit_bill(), NO_MAPPINGS, opts())
    assert plan.is_credit
    assert plan.total == D("-70.00")
    assert figures(plan) == [
        ("Refund", "1", "-100", "-100.00"),
        ("Line", "3", "10", "30.00"),
        ("Free", "2", "0", "0.00"),
    ]


def test_negated_flips_amounts_and_prices_once() -> None:
    plan = plan_invoice(credit_bill(), NO_MAPPINGS, opts())
    credit = plan.negated()
    assert not credit.is_credit
    assert credit.is_negated and not plan.is_negated
    assert credit.total == D("70.00")
    assert credit.exact_total == D("70")
    assert figures(credit) == [
        ("Refund", "1", "100", "100.00"),
        ("Line", "3", "-10", "-30.00"),
        ("Free", "2", "0", "0.00"),
    ]
    # No negative zeros appear.
    assert not any(ln.amount.is_signed() or ln.unit_price.is_signed() for ln in credit.lines[2:])
    assert [ln.source for ln in credit.lines] == [ln.source for ln in plan.lines]
    with pytest.raises(ValueError, match="already negated"):
        credit.negated()


# --- currencies --------------------------------------------------------------------------------------


def test_jpy_amounts_have_no_decimals_but_prices_may() -> None:
    bill = make_bill(item("1000", "3"), item("0.5", "1"), item("0.4", "1"), currency="jpy")
    options = opts()
    plan = plan_invoice(bill, NO_MAPPINGS, options)
    assert plan.currency == "JPY"
    # 1 × 0.5 rounds to 1 yen and 1 × 0.4 to none: the bill's prices multiply out, so they stay.
    assert figures(plan) == [
        ("Line", "3", "333.33", "1000"),
        ("Line", "1", "0.5", "1"),
        ("Line", "1", "0.4", "0"),
    ]
    assert plan.total == D("1001")
    assert_multiplies_out(plan, options)


def test_three_decimal_currency_needs_three_price_places() -> None:
    bill = make_bill(item("1.2345", "1"), currency="KWD")
    with pytest.raises(DestinationValidationError, match="cannot carry KWD amounts"):
        plan_invoice(bill, NO_MAPPINGS, opts(unit_price_places=2))
    plan = plan_invoice(bill, NO_MAPPINGS, opts(unit_price_places=4))
    # 1 × 1.2345 rounds to 1.235 dinars: the bill's price multiplies out and is kept.
    assert figures(plan) == [("Line", "1", "1.2345", "1.235")]


def test_amounts_beyond_the_limit_are_refused() -> None:
    bill = make_bill(item(str(MAX_AMOUNT + 1), "1", sequenceNumber=3))
    with pytest.raises(DestinationValidationError, match=r"line 3 \('Line'\).*too large") as caught:
        plan_invoice(bill, NO_MAPPINGS, opts())
    assert isinstance(caught.value.__cause__, MoneyError)
    total = make_bill(item(str(MAX_AMOUNT), "1"), item(str(MAX_AMOUNT), "1"))
    with pytest.raises(DestinationValidationError, match="invoice total of bill bill-1"):
        plan_invoice(total, NO_MAPPINGS, opts())


# --- service dates ------------------------------------------------------------------------------


def dated(start: str | None, end: str | None) -> LineItem:
    fields = {}
    if start:
        fields["servicePeriodStartDate"] = start
    if end:
        fields["servicePeriodEndDate"] = end
    return line_item(**fields)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("2025-09-01T00:00:00Z", "2025-10-01T00:00:00Z", (date(2025, 9, 1), date(2025, 9, 30))),
        ("2025-09-01T00:00:00Z", "2025-09-15T12:00:00Z", (date(2025, 9, 1), date(2025, 9, 15))),
        ("2025-09-01T00:00:00Z", "2025-09-01T00:00:00Z", (date(2025, 9, 1), date(2025, 9, 1))),
        ("2025-09-01T00:00:00Z", "2025-09-02T00:00:00Z", (date(2025, 9, 1), date(2025, 9, 1))),
        (None, "2025-10-01T00:00:00Z", (None, date(2025, 9, 30))),
        ("2025-09-01T00:00:00Z", None, (date(2025, 9, 1), None)),
        (None, None, (None, None)),
        # Dates as written: a midnight in another offset is still that calendar day.
        (
            "2025-09-01T00:00:00-07:00",
            "2025-10-01T00:00:00-07:00",
            (date(2025, 9, 1), date(2025, 9, 30)),
        ),
    ],
)
def test_service_dates(
    start: str | None, end: str | None, expected: tuple[date | None, date | None]
) -> None:
    assert service_dates(dated(start, end)) == expected


def test_service_dates_accept_datetimes() -> None:
    li = attrs.evolve(
        line_item(),
        service_period_start_date=datetime(2025, 9, 1, tzinfo=UTC),
        service_period_end_date=datetime(2025, 10, 1, tzinfo=UTC),
    )
    assert service_dates(li) == (date(2025, 9, 1), date(2025, 9, 30))


# --- properties ----------------------------------------------------------------------------------

PROPS = settings(max_examples=150, deadline=None)
money6 = st.decimals(
    min_value=D("-100000"), max_value=D("100000"), places=6, allow_nan=False, allow_infinity=False
)
quantities = st.one_of(
    st.none(),
    st.just(D(0)),
    st.decimals(
        min_value=D("-1000"),
        max_value=D("1000000"),
        places=6,
        allow_nan=False,
        allow_infinity=False,
    ),
)
prices = st.one_of(
    st.none(),
    st.decimals(
        min_value=D("-1000"), max_value=D("1000"), places=6, allow_nan=False, allow_infinity=False
    ),
)


@st.composite
def bill_lines(draw: st.DrawFn) -> dict[str, Any]:
    data: dict[str, Any] = {
        "lineItemType": draw(
            st.sampled_from(
                [
                    "USAGE",
                    "USAGE",
                    "OVERAGE_USAGE",
                    "STANDING_CHARGE",
                    "CREDIT_MEMO",
                    "MINIMUM_SPEND",
                ]
            )
        ),
        "description": "x",
        "subtotal": draw(money6),
        "sequenceNumber": draw(st.one_of(st.none(), st.integers(0, 5))),
        "productId": draw(st.sampled_from([None, "p1", "p2"])),
        "accountingProductId": draw(st.sampled_from([None, "p1", "p3"])),
        "aggregationId": draw(st.sampled_from([None, "a1", "a2"])),
        "compoundAggregationId": draw(st.sampled_from([None, "c1"])),
    }
    quantity, price = draw(quantities), draw(prices)
    if quantity is not None:
        data["quantity"] = quantity
    if price is not None:
        data["averageUnitPrice"] = price
    if draw(st.booleans()):
        bands = draw(st.lists(st.tuples(money6, quantities, prices), min_size=1, max_size=3))
        data["usagePerPricingBand"] = [
            {"lowerLimit": i * 100, "bandSubtotal": s, "bandQuantity": q, "unitPrice": p}
            for i, (s, q, p) in enumerate(bands)
        ]
        if draw(st.booleans()):  # most bands add up; some do not
            data["subtotal"] = sum((s for s, _, _ in bands), D(0))
    return {k: v for k, v in data.items() if v is not None}


bills = st.builds(
    lambda lines, currency: make_bill(*lines, currency=currency),
    st.lists(bill_lines(), min_size=1, max_size=8),
    st.sampled_from(["USD", "GBP", "JPY", "KWD"]),
)
line_options = st.builds(
    LineOptions,
    split=st.sampled_from(SplitMode),
    sort_by=st.sampled_from(SortBy),
    send_zero_quantity=st.booleans(),
    strict=st.booleans(),
    unit_price_places=st.sampled_from([3, 4, 7]),
    quantity_places=st.sampled_from([0, 2, 4]),
    credit_memo_item=st.sampled_from([None, "CR"]),
)
PROPERTY_MAPPINGS = ResolvedMappings(
    {("Product", "p1", "Item"): "1", ("Aggregation", "a1", "Item"): "2"}
)


def plan_or_none(bill: Bill, options: LineOptions) -> InvoicePlan | None:
    try:
        return plan_invoice(bill, PROPERTY_MAPPINGS, options)
    except DestinationValidationError:
        # Only when nothing is left: every (merged) line had no money and no quantity.
        assert not options.send_zero_quantity
        assert sum((li.subtotal or D(0) for li in bill.line_items), D(0)) == 0
        return None


@PROPS
@given(bill=bills, options=line_options)
def test_plan_properties(bill: Bill, options: LineOptions) -> None:
    plan = plan_or_none(bill, options)
    if plan is None:
        return
    minor = minor_units(bill.currency)
    subtotal_sum = sum((li.subtotal or D(0) for li in bill.line_items), D(0))
    assert plan.exact_total == subtotal_sum
    assert plan.total == sum((ln.amount for ln in plan.lines), D(0))
    assert plan.is_credit == (plan.total < 0)
    # Every line multiplies out, in both modes, within the allowed places; quantities >= 0.
    assert_multiplies_out(plan, options)
    if not options.strict:
        # Exact mode: the total is the bill's to the minor unit; warnings only explain splits.
        assert plan.total == round_money(subtotal_sum, bill.currency)
        assert all("pricing band" in w or "merged lines" in w for w in plan.warnings)
    elif plan.total != round_money(subtotal_sum, bill.currency):
        assert any("strict line item mapping" in w for w in plan.warnings)
    for ln in plan.lines:
        assert places_of(ln.amount) == minor
        assert not (ln.amount.is_zero() and ln.amount.is_signed())


@st.composite
def priced_lines(draw: st.DrawFn) -> dict[str, Any]:
    """A line whose subtotal is its quantity times its unit price, as m3ter computes it
    (sometimes rounded to the cent)."""
    quantity = draw(
        st.decimals(min_value=D("-50"), max_value=D("100000"), places=draw(st.integers(0, 5)))
    )
    price = draw(
        st.decimals(min_value=D("-500"), max_value=D("500"), places=draw(st.integers(0, 7)))
    )
    subtotal = quantity * price
    if draw(st.booleans()):
        subtotal = round_half_up(subtotal, 2)
    return item(str(subtotal), str(quantity), price=str(price))


priced_bills = st.builds(
    lambda lines, currency: make_bill(*lines, currency=currency),
    st.lists(priced_lines(), min_size=1, max_size=6),
    st.sampled_from(["USD", "GBP", "JPY", "KWD"]),
)


@PROPS
@given(bill=priced_bills, options=line_options)
def test_exact_mode_keeps_every_bill_price_that_multiplies_out(
    bill: Bill, options: LineOptions
) -> None:
    options = attrs.evolve(options, split=SplitMode.NONE, strict=False)
    plan = plan_or_none(bill, options)
    if plan is None:
        return
    minor = minor_units(bill.currency)
    for ln in plan.lines:
        (source,) = ln.source
        quantity, price = source.quantity, source.average_unit_price
        if quantity is None or price is None:
            continue
        sent_quantity = round_half_up(abs(quantity), options.quantity_places)
        signed = -price if quantity < 0 else price
        if sent_quantity.is_zero() or places_of(signed.normalize()) > options.unit_price_places:
            continue
        if round_half_up(sent_quantity * signed, minor) == ln.amount:
            assert (ln.quantity, ln.unit_price) == (sent_quantity, signed), ln


@PROPS
@given(bill=bills, options=line_options)
def test_negated_plan_properties(bill: Bill, options: LineOptions) -> None:
    plan = plan_or_none(bill, options)
    if plan is None:
        return
    credit = plan.negated()
    assert credit.total == -plan.total
    for before, after in zip(plan.lines, credit.lines, strict=True):
        assert after.amount == -before.amount
        assert after.unit_price == -before.unit_price
        assert after.quantity == before.quantity
    assert_multiplies_out(credit, options)


@PROPS
@given(bill=bills, options=line_options)
def test_sorting_only_reorders(bill: Bill, options: LineOptions) -> None:
    plan = plan_or_none(bill, options)
    if plan is None:
        return
    unsorted = plan_invoice(bill, PROPERTY_MAPPINGS, attrs.evolve(options, sort_by=SortBy.NONE))
    assert sorted(plan.lines, key=repr) == sorted(unsorted.lines, key=repr)
    assert plan.warnings == unsorted.warnings
