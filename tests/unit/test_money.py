"""Money arithmetic: minor units, half-up rounding, exact allocation; never floats."""

from __future__ import annotations

import decimal
import random
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from billbridge.domain.money import (
    MAX_AMOUNT,
    MINOR_UNITS,
    MoneyError,
    allocate,
    check_amount,
    minor_units,
    quantum,
    round_half_up,
    round_money,
    unit_price_for,
)
from billbridge.errors import BillbridgeError

D = Decimal
PROPS = settings(max_examples=150, deadline=None)

# Decimals with up to 6 places, mixed signs, bill-sized.
amounts = st.decimals(
    min_value=D("-1000000"), max_value=D("1000000"), places=6, allow_nan=False, allow_infinity=False
)
currencies = st.sampled_from(["USD", "GBP", "JPY", "KWD", "eur", "clf"])


def places_of(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return max(-exponent, 0)


# --- minor units ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "expected"),
    [
        ("USD", 2),
        ("GBP", 2),
        ("EUR", 2),
        ("XYZ", 2),
        ("JPY", 0),
        ("jpy", 0),
        (" KRW ", 0),
        ("VND", 0),
        ("CLP", 0),
        ("ISK", 0),
        ("XAF", 0),
        ("BHD", 3),
        ("KWD", 3),
        ("TND", 3),
        ("kwd", 3),
        ("CLF", 4),
    ],
)
def test_minor_units(currency: str, expected: int) -> None:
    assert minor_units(currency) == expected


def test_minor_units_table_is_read_only_and_upper_case() -> None:
    assert all(code == code.upper() and len(code) == 3 for code in MINOR_UNITS)
    with pytest.raises(TypeError):
        MINOR_UNITS["USD"] = 2  # type: ignore[index]


def test_minor_units_refuses_non_text() -> None:
    with pytest.raises(TypeError):
        minor_units(840)  # type: ignore[arg-type]


def test_quantum() -> None:
    assert quantum("USD") == D("0.01")
    assert str(quantum("USD")) == "0.01"
    assert str(quantum("JPY")) == "1"
    assert str(quantum("KWD")) == "0.001"


# --- round_half_up / round_money -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "places", "expected"),
    [
        ("1.005", 2, "1.01"),
        ("1.004999", 2, "1.00"),
        ("-1.005", 2, "-1.01"),
        ("-1.004", 2, "-1.00"),
        ("2.5", 0, "3"),
        ("-2.5", 0, "-3"),
        ("0.5", 0, "1"),
        ("1", 2, "1.00"),
        ("0.00049", 3, "0.000"),
        ("123456789012345678901234567890.5", 0, "123456789012345678901234567891"),
        ("1E+3", 2, "1000.00"),
    ],
)
def test_round_half_up_examples(value: str, places: int, expected: str) -> None:
    result = round_half_up(D(value), places)
    assert str(result) == expected


def test_round_half_up_never_returns_negative_zero() -> None:
    assert str(round_half_up(D("-0.001"), 2)) == "0.00"
    assert str(round_money(D("-0.4"), "JPY")) == "0"
    assert not round_half_up(D("-0.001"), 2).is_signed()


def test_round_half_up_ignores_the_callers_context() -> None:
    with decimal.localcontext() as ctx:
        ctx.prec = 3
        ctx.rounding = decimal.ROUND_DOWN
        assert round_half_up(D("12345.675"), 2) == D("12345.68")


def test_round_half_up_refuses_bad_places() -> None:
    with pytest.raises(ValueError, match="negative"):
        round_half_up(D("1"), -1)
    with pytest.raises(TypeError):
        round_half_up(D("1"), 2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        round_half_up(D("1"), True)


def test_round_money_examples() -> None:
    assert str(round_money(D("10.125"), "USD")) == "10.13"
    assert str(round_money(D("-10.125"), "usd")) == "-10.13"
    assert str(round_money(D("1234.5"), "JPY")) == "1235"
    assert str(round_money(D("1.0005"), "KWD")) == "1.001"


@pytest.mark.parametrize("value", [1.5, 1, "1.5", None, True])
def test_no_floats_or_other_types(value: object) -> None:
    with pytest.raises(TypeError):
        round_money(value, "USD")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        allocate([value], "USD")  # type: ignore[list-item]


@pytest.mark.parametrize("value", ["NaN", "sNaN", "Infinity", "-Infinity"])
def test_non_finite_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="finite"):
        round_money(D(value), "USD")
    with pytest.raises(ValueError, match="finite"):
        allocate([D("1"), D(value)], "USD")
    with pytest.raises(ValueError, match="finite"):
        check_amount(D(value))


@PROPS
@given(value=amounts, places=st.integers(min_value=0, max_value=6))
def test_round_half_up_properties(value: Decimal, places: int) -> None:
    result = round_half_up(value, places)
    unit = D(1).scaleb(-places)
    assert places_of(result) == places
    assert abs(result - value) <= unit / 2
    # Symmetric: halves go away from zero on both sides.
    assert round_half_up(-value, places) == -result
    # Idempotent.
    assert round_half_up(result, places) == result


# --- check_amount ------------------------------------------------------------------------------


def test_check_amount() -> None:
    assert check_amount(MAX_AMOUNT) == MAX_AMOUNT
    assert check_amount(-MAX_AMOUNT) == -MAX_AMOUNT
    with pytest.raises(MoneyError, match="too large"):
        check_amount(MAX_AMOUNT + D("0.01"))
    with pytest.raises(MoneyError):
        check_amount(D("1E+16"), what="the total")
    with pytest.raises(MoneyError):
        check_amount(D("101"), limit=D("100"))
    assert issubclass(MoneyError, BillbridgeError)
    with pytest.raises(TypeError):
        check_amount(1.0)  # type: ignore[arg-type]


# --- allocate ----------------------------------------------------------------------------------


def test_allocate_examples() -> None:
    assert allocate([], "USD") == []
    assert allocate([D("0.004")] * 3, "USD") == [D("0.01"), D("0.00"), D("0.00")]
    # Both round up on their own (0.02); one must come back down: the first, by position.
    assert allocate([D("0.005"), D("0.005")], "USD") == [D("0.00"), D("0.01")]
    # Already exact amounts are untouched.
    assert allocate([D("10"), D("-2.5")], "USD") == [D("10.00"), D("-2.50")]
    # The largest rounding error gets the cent.
    assert allocate([D("1.001"), D("1.004"), D("1.002")], "USD") == [
        D("1.00"),
        D("1.01"),
        D("1.00"),
    ]
    # Mixed signs: each half rounds away from zero and the sum (0) already matches.
    assert allocate([D("-0.005"), D("0.005")], "USD") == [D("-0.01"), D("0.01")]
    # A cent too many: taken from the item rounded up the most (0.016 → 0.02 by 0.004).
    assert allocate([D("-0.003"), D("-0.003"), D("0.016")], "USD") == [
        D("0.00"),
        D("0.00"),
        D("0.01"),
    ]
    # A cent short: given to the item rounded down the most, the first among equals.
    assert allocate([D("0.003"), D("0.003"), D("0.003"), D("0.006")], "USD") == [
        D("0.01"),
        D("0.00"),
        D("0.00"),
        D("0.01"),
    ]
    assert allocate([D("-1.236"), D("-1.236"), D("5")], "USD") == [
        D("-1.23"),
        D("-1.24"),
        D("5.00"),
    ]
    assert sum(allocate([D("33.333333")] * 3, "USD")) == D("100.00")


def test_allocate_zero_and_three_decimal_currencies() -> None:
    assert allocate([D("0.4")] * 3, "JPY") == [D("1"), D("0"), D("0")]
    # Each half rounds away from zero and the sum (100) already matches: nothing to move.
    assert [str(x) for x in allocate([D("100.5"), D("-0.5")], "JPY")] == ["101", "-1"]
    assert allocate([D("0.0004")] * 5, "KWD") == [D("0.001"), D("0.001"), D("0"), D("0"), D("0")]
    assert all(places_of(x) == 3 for x in allocate([D("1"), D("0.0004")], "KWD"))


def test_allocate_results_carry_exactly_the_minor_units() -> None:
    assert [str(x) for x in allocate([D("1"), D("2.5"), D("0.125")], "USD")] == [
        "1.00",
        "2.50",
        "0.13",
    ]


def test_allocate_never_returns_negative_zero() -> None:
    result = allocate([D("-0.004"), D("-0.004"), D("0.004")], "USD")
    assert sum(result) == D("0.00")
    assert not any(x.is_zero() and x.is_signed() for x in result)


amount_lists = st.lists(amounts, max_size=25)


@PROPS
@given(values=amount_lists, currency=currencies)
def test_allocate_sum_is_exact_and_each_within_one_unit(
    values: list[Decimal], currency: str
) -> None:
    result = allocate(values, currency)
    unit = quantum(currency)
    assert len(result) == len(values)
    assert sum(result, D(0)) == round_money(sum(values, D(0)), currency)
    for exact, allocated in zip(values, result, strict=True):
        assert abs(allocated - exact) < unit
        assert places_of(allocated) == minor_units(currency)
        assert not (allocated.is_zero() and allocated.is_signed())


@PROPS
@given(values=amount_lists, currency=currencies)
def test_allocate_is_symmetric_under_negation(values: list[Decimal], currency: str) -> None:
    assert allocate([-v for v in values], currency) == [-x for x in allocate(values, currency)]


@PROPS
@given(values=amount_lists, currency=currencies, seed=st.integers(0, 2**32))
def test_allocate_is_order_independent_up_to_ties(
    values: list[Decimal], currency: str, seed: int
) -> None:
    places = minor_units(currency)
    errors = [v - round_half_up(v, places) for v in values]
    # With equal rounding errors the position decides, so order matters only then.
    assume(len(set(errors)) == len(errors))
    order = list(range(len(values)))
    random.Random(seed).shuffle(order)
    shuffled = allocate([values[i] for i in order], currency)
    original = allocate(values, currency)
    assert shuffled == [original[i] for i in order]


@PROPS
@given(values=st.lists(st.decimals(places=2, min_value=-(10**9), max_value=10**9), max_size=10))
def test_allocate_leaves_exact_amounts_alone(values: list[Decimal]) -> None:
    assert allocate(values, "USD") == [round_money(v, "USD") for v in values]
    assert allocate(values, "USD") == values


@PROPS
@given(values=amount_lists)
def test_allocate_ties_are_deterministic(values: list[Decimal]) -> None:
    assert allocate(values, "GBP") == allocate(list(values), "GBP")


# --- unit_price_for ----------------------------------------------------------------------------

quantities = st.decimals(
    min_value=D("0.0001"), max_value=D("100000"), places=4, allow_nan=False, allow_infinity=False
)
bill_prices = st.decimals(
    min_value=D("-10000"), max_value=D("10000"), places=7, allow_nan=False, allow_infinity=False
)


def test_unit_price_for_keeps_the_bills_price() -> None:
    # 12.8205 × 14.50 = 185.89725 → 185.90: the bill's price multiplies out, so it is sent,
    # not the 14.5002145 that 185.90 / 12.8205 would give.
    assert unit_price_for(D("185.90"), D("12.8205"), D("14.50"), places=7, minor=2) == D("14.50")
    # A sub-cent price on a line that rounds to nothing is still the bill's price, not 0.
    assert unit_price_for(D("0.00"), D("3"), D("0.001"), places=4, minor=2) == D("0.001")


def test_unit_price_for_derives_only_when_it_must() -> None:
    # 3 × 40 = 120, not 100: the bill's price does not multiply out; 100 / 3 does not either
    # at 2 places (3 × 33.33 = 99.99), so no price works with this quantity.
    assert unit_price_for(D("100.00"), D("3"), D("40"), places=2, minor=2) is None
    assert unit_price_for(D("100.00"), D("3"), D("40"), places=7, minor=2) == D("33.3333333")
    # More decimals than the destination keeps: derived, never rounded silently.
    assert unit_price_for(D("0.05"), D("10"), D("0.00499"), places=4, minor=2) == D("0.0050")
    assert unit_price_for(D("10.00"), D("4"), None, places=2, minor=2) == D("2.50")


def test_unit_price_for_needs_a_positive_quantity() -> None:
    with pytest.raises(ValueError, match="positive"):
        unit_price_for(D("1.00"), D("0"), D("1"), places=2, minor=2)
    with pytest.raises(TypeError):
        unit_price_for(D("1.00"), D("1"), 1.0, places=2, minor=2)  # type: ignore[arg-type]


@PROPS
@given(quantity=quantities, price=bill_prices, places=st.integers(2, 7), currency=currencies)
def test_unit_price_for_keeps_every_price_that_multiplies_out(
    quantity: Decimal, price: Decimal, places: int, currency: str
) -> None:
    minor = minor_units(currency)
    assume(places >= minor)
    # The amount the bill's own figures give, in the destination's rules.
    amount = round_half_up(quantity * price, minor)
    assume(places_of(price.normalize()) <= places)
    assert unit_price_for(amount, quantity, price, places=places, minor=minor) == price


@PROPS
@given(
    amount=amounts,
    quantity=quantities,
    price=st.one_of(st.none(), bill_prices),
    places=st.integers(2, 7),
    currency=currencies,
)
def test_unit_price_for_always_multiplies_out(
    amount: Decimal, quantity: Decimal, price: Decimal | None, places: int, currency: str
) -> None:
    minor = minor_units(currency)
    amount = round_half_up(amount, minor)
    chosen = unit_price_for(amount, quantity, price, places=places, minor=minor)
    if chosen is None:
        return
    assert round_half_up(quantity * chosen, minor) == amount
    assert places_of(chosen.normalize()) <= places
    if price is not None and chosen != price:
        # The bill's price was passed over only because it could not be sent as it is.
        fits = places_of(price.normalize()) <= places
        assert not fits or round_half_up(quantity * price, minor) != amount
