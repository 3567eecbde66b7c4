"""Tax shared by the destinations: a code per line type, and the totals a destination will show."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billbridge.domain.lines import InvoicePlan, LineOptions, plan_invoice
from billbridge.domain.models import parse_bill
from billbridge.domain.money import round_money
from billbridge.domain.tax import (
    AmountsAre,
    TaxRounding,
    TaxSettings,
    expected_totals,
    rate_errors,
    tax_settings,
    totals_note,
)
from billbridge.errors import DestinationValidationError
from billbridge.plugin.contract import ResolvedMappings

D = Decimal


def plan(*lines: tuple[str, str], currency: str = "GBP") -> InvoicePlan:
    """A plan of ``(line item type, subtotal)`` lines."""
    bill = parse_bill(
        {
            "id": "bill-1",
            "accountId": "acc-1",
            "currency": currency,
            "lineItems": [
                {
                    "lineItemType": kind,
                    "sequenceNumber": n,
                    "description": f"{kind.lower()} {n}",
                    "quantity": "1",
                    "subtotal": amount,
                }
                for n, (kind, amount) in enumerate(lines, start=1)
            ],
        }
    )
    return plan_invoice(bill, ResolvedMappings(), LineOptions(unit_price_places=4))


UK = TaxSettings(
    default_code="OUTPUT2",
    by_line_type={"USAGE": "RROUTPUT"},
    rates={"OUTPUT2": D("20"), "RROUTPUT": D("5")},
    amounts=AmountsAre.EXCLUSIVE,
)


def test_the_code_of_a_line_is_its_types_else_the_default() -> None:
    assert UK.code_for("USAGE") == "RROUTPUT"
    assert UK.code_for("STANDING_CHARGE") == "OUTPUT2"
    assert TaxSettings().code_for("USAGE") is None


def test_settings_from_a_panel() -> None:
    config: dict[str, Any] = {
        "defaultTaxType": "OUTPUT2",
        "taxTypesByLineType": {"USAGE": "RROUTPUT", "AD_HOC": ""},
        "taxRates": [
            {"taxType": "OUTPUT2", "ratePercent": "20"},
            {"taxType": "RROUTPUT", "ratePercent": "5.0"},
        ],
    }
    made = tax_settings(
        config,
        default_key="defaultTaxType",
        by_type_key="taxTypesByLineType",
        code_field="taxType",
        amounts=AmountsAre.INCLUSIVE,
    )
    assert made == TaxSettings(
        default_code="OUTPUT2",
        by_line_type={"USAGE": "RROUTPUT"},
        rates={"OUTPUT2": D("20"), "RROUTPUT": D("5.0")},
        amounts=AmountsAre.INCLUSIVE,
    )
    with pytest.raises(DestinationValidationError) as caught:
        tax_settings(
            {"taxRates": [{"taxType": "OUTPUT2", "ratePercent": 20.5}]},
            default_key="defaultTaxType",
            by_type_key="taxTypesByLineType",
            code_field="taxType",
            amounts=AmountsAre.EXCLUSIVE,
        )
    assert str(caught.value) == (
        'taxRates[0]: the rate of OUTPUT2 must be a percentage written as text, like "20" or '
        '"8.875"; got 20.5'
    )


@pytest.mark.parametrize(
    ("rounding", "tax"),
    # Three lines of 0.03 at 20 %: 0.006 each rounds to 0.01 per line (0.03 in all), while
    # their sum 0.09 makes 0.018, which rounds to 0.02.
    [(TaxRounding.PER_LINE, "0.03"), (TaxRounding.PER_CODE, "0.02")],
)
def test_exclusive_tax_is_added_with_the_destinations_rounding(
    rounding: TaxRounding, tax: str
) -> None:
    lines = plan(("STANDING_CHARGE", "0.03"), ("STANDING_CHARGE", "0.03"), ("AD_HOC", "0.03"))
    totals = expected_totals(lines, UK, bill_total=D("0.09"), rounding=rounding)
    assert (totals.lines, totals.tax, totals.destination) == (D("0.09"), D(tax), D("0.09") + D(tax))


def test_exclusive_inclusive_and_no_tax() -> None:
    lines = plan(("STANDING_CHARGE", "100.00"), ("USAGE", "40.00"))
    exclusive = expected_totals(lines, UK, bill_total=D("140.00"), rounding=TaxRounding.PER_LINE)
    assert (exclusive.tax, exclusive.destination) == (D("22.00"), D("162.00"))
    inclusive = expected_totals(
        lines,
        TaxSettings(
            default_code="OUTPUT2",
            by_line_type={"USAGE": "RROUTPUT"},
            rates=UK.rates,
            amounts=AmountsAre.INCLUSIVE,
        ),
        bill_total=D("140.00"),
        rounding=TaxRounding.PER_LINE,
    )
    # Tax is inside the amounts: 100 × 20/120 = 16.67 and 40 × 5/105 = 1.90.
    assert (inclusive.tax, inclusive.destination) == (D("18.57"), D("140.00"))
    none = expected_totals(
        lines,
        TaxSettings(amounts=AmountsAre.NO_TAX),
        bill_total=D("140.00"),
        rounding=TaxRounding.PER_LINE,
    )
    assert (none.tax, none.destination, none.unknown) == (D("0.00"), D("140.00"), ())


def test_what_cannot_be_known_offline_is_said_not_guessed() -> None:
    lines = plan(("STANDING_CHARGE", "100.00"), ("USAGE", "40.00"))
    no_rate = TaxSettings(default_code="OUTPUT2", amounts=AmountsAre.EXCLUSIVE)
    totals = expected_totals(lines, no_rate, bill_total=D("140.00"), rounding=TaxRounding.PER_LINE)
    assert (totals.tax, totals.destination) == (None, None)
    assert totals.unknown == ("no rate is given for OUTPUT2 in the panel's tax rates (taxRates)",)
    uncoded = TaxSettings(amounts=AmountsAre.EXCLUSIVE)
    xero = expected_totals(
        lines,
        uncoded,
        bill_total=D("140.00"),
        rounding=TaxRounding.PER_LINE,
        uncoded="the destination applies the item's or account's own tax",
    )
    assert xero.destination is None
    assert xero.unknown == (
        "line 1 ('standing_charge 1') has no tax code: the destination applies the item's or "
        "account's own tax",
        "line 2 ('usage 2') has no tax code: the destination applies the item's or account's "
        "own tax",
    )
    # Where a line without a code carries no tax (QuickBooks), the total is known.
    quickbooks = expected_totals(
        lines, uncoded, bill_total=D("140.00"), rounding=TaxRounding.PER_CODE
    )
    assert (quickbooks.tax, quickbooks.destination) == (D("0.00"), D("140.00"))


def test_totals_as_json_and_the_note_when_the_destination_disagrees() -> None:
    lines = plan(("STANDING_CHARGE", "100.00"))
    totals = expected_totals(lines, UK, bill_total=D("100.00"), rounding=TaxRounding.PER_LINE)
    assert totals.to_json() == {
        "currency": "GBP",
        "bill": "100.00",
        "lines": "100.00",
        "tax": "20.00",
        "destination": "120.00",
        "amounts": "Exclusive",
        "unknown": [],
    }
    assert totals_note(totals, D("120.00"), system="Xero", document="invoice INV-1") is None
    assert totals_note(totals, D("118.00"), system="Xero", document="invoice INV-1") == (
        "Xero totals invoice INV-1 at 118.00 GBP, but billbridge expected 120.00 (tax 20.00 at "
        "the panel's rates added to the lines' 100.00): check the tax rates in the panel "
        "(taxRates) against the rates in Xero"
    )
    unknown = expected_totals(
        lines, TaxSettings(default_code="X"), bill_total=D("100.00"), rounding=TaxRounding.PER_LINE
    )
    assert totals_note(unknown, D("1.00"), system="Xero", document="invoice INV-1") is None


amounts = st.decimals(min_value=D("-10000"), max_value=D("10000"), places=2)


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(amounts, min_size=1, max_size=6),
    rate=st.sampled_from([D("0"), D("5"), D("8.875"), D("20")]),
    kind=st.sampled_from(AmountsAre),
    rounding=st.sampled_from(TaxRounding),
)
def test_totals_properties(
    values: list[Decimal], rate: Decimal, kind: AmountsAre, rounding: TaxRounding
) -> None:
    lines = plan(*(("STANDING_CHARGE", str(v)) for v in values))
    taxed = TaxSettings(default_code="T", rates={"T": rate}, amounts=kind)
    totals = expected_totals(lines, taxed, bill_total=lines.total, rounding=rounding)
    assert totals.tax is not None and totals.destination is not None
    assert totals.lines == lines.total
    if kind is AmountsAre.EXCLUSIVE:
        assert totals.destination == totals.lines + totals.tax
    else:
        # Inclusive or no tax: the destination's total is the bill's, to the cent.
        assert totals.destination == round_money(lines.exact_total, "GBP")
    if kind is AmountsAre.NO_TAX or rate == 0:
        assert totals.tax == 0


def test_a_code_given_two_rates_is_refused_when_saved() -> None:
    config = {
        "taxRates": [
            {"taxCode": "7", "ratePercent": "20"},
            {"taxCode": "8", "ratePercent": "5"},
            {"taxCode": "7", "ratePercent": "17.5"},
        ]
    }
    (error,) = rate_errors(config, "taxCode")
    assert (error.path, error.message) == ("/taxRates/2/taxCode", "7 is already given a rate")
    assert rate_errors({}, "taxCode") == []
