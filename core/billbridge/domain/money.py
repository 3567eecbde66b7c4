"""Money arithmetic for invoices: minor units, half-up rounding and exact allocation.

Everything here works on :class:`~decimal.Decimal` only. Floats are refused with ``TypeError``
(a float has already lost the number the bill said) and non-finite decimals (``NaN``,
``Infinity``) with ``ValueError``.

Rounding is ``ROUND_HALF_UP`` as :mod:`decimal` defines it: halves go *away from zero*, so
``-1.005`` becomes ``-1.01``. That is what QuickBooks and Xero apply when they check
``quantity × unit price`` against a line amount, and it is symmetric: rounding ``-x`` gives
exactly ``-(rounding x)``.

Results never carry a negative zero (``Decimal("-0.00")``): it compares equal to zero but prints
as ``-0.00`` in a payload, which reads like a credit.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType
from typing import Any

from billbridge.errors import BillbridgeError

__all__ = [
    "DEFAULT_MINOR_UNITS",
    "MAX_AMOUNT",
    "MINOR_UNITS",
    "MoneyError",
    "allocate",
    "check_amount",
    "check_decimal",
    "minor_units",
    "quantum",
    "round_half_up",
    "round_money",
    "unit_price_for",
]

DEFAULT_MINOR_UNITS = 2
"""Decimal places of a currency that :data:`MINOR_UNITS` does not list (most currencies)."""

MINOR_UNITS: Mapping[str, int] = MappingProxyType(
    {
        # ISO 4217 currencies with no minor unit.
        "BIF": 0,
        "CLP": 0,
        "DJF": 0,
        "GNF": 0,
        "ISK": 0,
        "JPY": 0,
        "KMF": 0,
        "KRW": 0,
        "PYG": 0,
        "RWF": 0,
        "UGX": 0,
        "VND": 0,
        "VUV": 0,
        "XAF": 0,
        "XOF": 0,
        "XPF": 0,
        # ISO 4217 currencies with three decimal places.
        "BHD": 3,
        "IQD": 3,
        "JOD": 3,
        "KWD": 3,
        "LYD": 3,
        "OMR": 3,
        "TND": 3,
        # Unidad de Fomento (Chile) and Uruguay's wage index unit: four decimal places.
        "CLF": 4,
        "UYW": 4,
    }
)
"""ISO 4217 exponents of the currencies whose minor unit is not 1/100; others have two."""

MAX_AMOUNT = Decimal("9999999999999.99")
"""The largest amount (in absolute value) accepted for a line or an invoice total.

QuickBooks and Xero store amounts with 15 significant digits at most; anything larger is
refused (or silently truncated) by them, so it is refused here first with a clear message.
"""


class MoneyError(BillbridgeError):
    """An amount cannot be represented in the destination (too large, not a usable number)."""


# Enough digits for any amount a bill can carry multiplied by any quantity, so that products
# and quotients computed here are exact (or rounded only where this module says so).
_PRECISION = 60


def _context(digits: int = _PRECISION) -> decimal.Context:
    # A private context: the caller's thread-local context (which may have a lower precision or
    # different traps) must never change the result of money arithmetic.
    return decimal.Context(
        prec=max(digits, _PRECISION),
        rounding=ROUND_HALF_UP,
        traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
    )


def check_decimal(value: Any, what: str = "amount") -> Decimal:
    """Return ``value`` when it is a finite ``Decimal``.

    Raises ``TypeError`` for anything else (floats included: they are never money) and
    ``ValueError`` for ``NaN`` and infinities.
    """
    if not isinstance(value, Decimal):
        raise TypeError(f"{what} must be a Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"{what} must be a finite number, got {value}")
    return value


def _no_negative_zero(value: Decimal) -> Decimal:
    return value.copy_abs() if value.is_zero() else value


def minor_units(currency: str) -> int:
    """Decimal places of ``currency`` (ISO 4217 code, any case): 2 unless listed otherwise."""
    if not isinstance(currency, str):
        raise TypeError(f"currency must be a string, got {type(currency).__name__}")
    return MINOR_UNITS.get(currency.strip().upper(), DEFAULT_MINOR_UNITS)


def quantum(currency: str) -> Decimal:
    """The smallest amount of ``currency``: ``Decimal("0.01")``, ``Decimal("1")``, ..."""
    return Decimal(1).scaleb(-minor_units(currency))


def round_half_up(value: Decimal, places: int) -> Decimal:
    """``value`` rounded half away from zero to ``places`` decimal places (``places >= 0``).

    The result always has exactly ``places`` decimals (``Decimal("2.50")`` for 2), whatever the
    caller's decimal context says.
    """
    check_decimal(value, "value")
    if isinstance(places, bool) or not isinstance(places, int):
        raise TypeError(f"places must be an int, got {type(places).__name__}")
    if places < 0:
        raise ValueError(f"places must not be negative, got {places}")
    # quantize fails when the result needs more digits than the context allows: size it.
    digits = max(value.adjusted(), 0) + places + 2
    result = value.quantize(Decimal(1).scaleb(-places), context=_context(digits))
    return _no_negative_zero(result)


def round_money(amount: Decimal, currency: str) -> Decimal:
    """``amount`` rounded half-up to the minor units of ``currency``."""
    return round_half_up(amount, minor_units(currency))


def _fits(value: Decimal, places: int) -> bool:
    """True when ``value`` has at most ``places`` decimals (trailing zeros do not count)."""
    exponent = value.normalize(_context()).as_tuple().exponent
    return not isinstance(exponent, int) or exponent >= -places


def unit_price_for(
    amount: Decimal,
    quantity: Decimal,
    price: Decimal | None,
    *,
    places: int,
    minor: int,
) -> Decimal | None:
    """The unit price to send with ``quantity`` for a line of ``amount``, or ``None``.

    The destination checks ``round_half_up(quantity × unit price, minor) == amount`` and keeps
    ``places`` decimals of a unit price. The rule:

    1. the bill's own ``price`` (signed like the amount) when it has at most ``places``
       decimals and multiplies out to ``amount``: it is what the customer was quoted, and a
       derived ``amount / quantity`` would print ``14.500039`` where the bill says ``14.50``,
       or ``0`` for a sub-cent price on a line that rounds to nothing;
    2. else ``amount / quantity`` rounded half-up to ``places``, when that multiplies out;
    3. else ``None``: no price of ``places`` decimals works with this quantity (the caller
       sends ``1 × amount``).

    A price is never rounded to fit: a bill price with too many decimals is not "kept", it is
    replaced by a derived one that is checked like any other.

    :raises ValueError: ``quantity`` is not positive (a zero quantity has no unit price).
    """
    check_decimal(amount, "amount")
    check_decimal(quantity, "quantity")
    if quantity <= 0:
        raise ValueError(f"quantity must be positive, got {quantity}")
    if price is not None:
        check_decimal(price, "price")
    ctx = _context()
    if (
        price is not None
        and _fits(price, places)
        and round_half_up(ctx.multiply(quantity, price), minor) == amount
    ):
        return price
    derived = round_half_up(ctx.divide(amount, quantity), places)
    if round_half_up(ctx.multiply(quantity, derived), minor) == amount:
        return derived
    return None


def check_amount(amount: Decimal, *, limit: Decimal = MAX_AMOUNT, what: str = "amount") -> Decimal:
    """Return ``amount`` when its absolute value is at most ``limit``, else raise MoneyError."""
    check_decimal(amount, what)
    if amount.copy_abs() > limit:
        raise MoneyError(
            f"{what} {amount} is too large: the destination accepts at most {limit} "
            "(15 significant digits)"
        )
    return amount


def allocate(amounts: Sequence[Decimal], currency: str) -> list[Decimal]:
    """Round every amount to the currency's minor units so that the rounded sum stays exact.

    Returns one amount per input, in the same order, such that:

    * ``sum(result) == round_money(sum(amounts), currency)`` exactly, and
    * every result differs from its input by *less than* one minor unit.

    Method (largest remainder, made symmetric for mixed signs): every amount is first rounded
    half-up on its own; the residual ``target − Σ rounded`` is a whole number of minor units.
    When it is positive, one unit is added to each of the items that were rounded *down* the most
    (largest ``exact − rounded``); when negative, one unit is taken from the items that were
    rounded *up* the most. Ties go to the earlier position, so the result is deterministic.
    Because half-up rounding is symmetric, ``allocate(-x) == -allocate(x)``.

    Amounts already at the currency's precision are returned unchanged when the others allow it
    (their rounding error is zero, so they are never the ones adjusted).
    """
    places = minor_units(currency)
    exact = [check_decimal(a, f"amounts[{i}]") for i, a in enumerate(amounts)]
    if not exact:
        return []
    ctx = _context()
    total = sum(exact, Decimal(0))
    target = round_half_up(total, places)
    rounded = [round_half_up(a, places) for a in exact]
    unit = Decimal(1).scaleb(-places)
    residual = ctx.subtract(target, sum(rounded, Decimal(0)))
    steps = int(ctx.divide(residual, unit))
    if steps == 0:
        return rounded
    errors = [ctx.subtract(a, r) for a, r in zip(exact, rounded, strict=True)]
    direction = 1 if steps > 0 else -1
    # Items whose error points the way we must move, largest first; position breaks ties.
    # Each item is adjusted at most once: |steps| never exceeds the number of items whose error
    # is strictly in that direction (each error is at most half a unit, see the tests), so no
    # result moves a full unit away from its exact amount.
    order = sorted(range(len(exact)), key=lambda i: (-direction * errors[i], i))
    result = list(rounded)
    for i in order[: abs(steps)]:
        result[i] = _no_negative_zero(ctx.add(result[i], direction * unit))
    return result
