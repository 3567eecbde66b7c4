"""Tax on invoices, the same for every destination: a code per line, and the expected totals.

A destination panel names a tax code (QuickBooks ``TaxCodeRef``) or tax type (Xero
``TaxType``) for each line item type, with a default for the others, and says how the bill's
amounts relate to tax (:class:`AmountsAre`: QuickBooks ``GlobalTaxCalculation``, Xero
``LineAmountTypes``). The destination computes the tax itself, from rates it keeps; billbridge
never sends tax amounts. What it can do, and does here, is say in advance what the destination's
document will total, so that a person sees it in a preview and a delivery can check the
destination's answer against it.

That needs each code's rate, which only the destination knows: the panel's ``taxRates`` lists
them (as the destination lists them: QuickBooks ``TaxRate.RateValue``, Xero
``TaxRates.EffectiveRate``). A code without a rate, or a line whose tax the destination picks
itself, makes the expected tax unknown, and :attr:`ExpectedTotals.unknown` says why: nothing
is guessed.

Rounding follows the destination (:class:`TaxRounding`): Xero rounds each line's tax, QuickBooks
the tax of each code over the lines that use it. Amounts are ``Decimal``, rounded half-up to the
currency's minor units.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping, Sequence
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import attrs

from billbridge.domain.lines import InvoiceLine, InvoicePlan
from billbridge.domain.money import round_money
from billbridge.errors import DestinationValidationError, FieldError

__all__ = [
    "AmountsAre",
    "ExpectedTotals",
    "TaxRounding",
    "TaxSettings",
    "expected_totals",
    "rate_errors",
    "tax_settings",
    "totals_note",
]

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)
_CTX = decimal.Context(prec=60, rounding=decimal.ROUND_HALF_UP)


class AmountsAre(StrEnum):
    """How the bill's amounts relate to tax (values as Xero's ``LineAmountTypes`` spells them)."""

    #: Without tax: the destination adds each line's tax (the document totals more).
    EXCLUSIVE = "Exclusive"
    #: With tax in them: the destination takes the tax out of each amount (same total).
    INCLUSIVE = "Inclusive"
    #: No tax at all.
    NO_TAX = "NoTax"


class TaxRounding(StrEnum):
    """Where the destination rounds tax to the currency's minor unit."""

    #: Each line's tax (Xero).
    PER_LINE = "PER_LINE"
    #: The tax of each code, over the sum of its lines (QuickBooks' tax lines per rate).
    PER_CODE = "PER_CODE"


def _frozen(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


@attrs.frozen
class TaxSettings:
    """The tax options of one integration."""

    #: The code for lines whose type has none of its own (``None``: no code is sent).
    default_code: str | None = None
    #: ``lineItemType`` → code.
    by_line_type: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen)
    #: code → percentage, as the panel's ``taxRates`` gives it.
    rates: Mapping[str, Decimal] = attrs.field(factory=dict, converter=_frozen)
    amounts: AmountsAre = AmountsAre.EXCLUSIVE

    def code_for(self, line_item_type: str) -> str | None:
        """The tax code of a line of this type."""
        return self.by_line_type.get(line_item_type) or self.default_code


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _rates(config: Mapping[str, Any], code_field: str) -> dict[str, Decimal]:
    rates: dict[str, Decimal] = {}
    for index, entry in enumerate(config.get("taxRates") or ()):
        code = _text(entry.get(code_field)) if isinstance(entry, Mapping) else None
        raw = entry.get("ratePercent") if isinstance(entry, Mapping) else None
        try:
            # Text only: a float has already lost the rate the person typed.
            rate = Decimal(raw) if isinstance(raw, str) else None
        except decimal.InvalidOperation:
            rate = None
        if code is None or rate is None or not rate.is_finite() or rate < 0:
            raise DestinationValidationError(
                f"taxRates[{index}]: the rate of {code or 'a tax code'} must be a percentage "
                f'written as text, like "20" or "8.875"; got {raw!r}'
            )
        rates[code] = rate
    return rates


def rate_errors(config: Mapping[str, Any], code_field: str) -> list[FieldError]:
    """What ``validate_config`` reports about ``taxRates``: a code listed twice (which rate
    would be meant?)."""
    errors: list[FieldError] = []
    seen: set[str] = set()
    for index, entry in enumerate(config.get("taxRates") or ()):
        code = _text(entry.get(code_field)) if isinstance(entry, Mapping) else None
        if code is None:
            continue
        if code in seen:
            errors.append(
                FieldError(f"/taxRates/{index}/{code_field}", f"{code} is already given a rate")
            )
        seen.add(code)
    return errors


def tax_settings(
    config: Mapping[str, Any],
    *,
    default_key: str,
    by_type_key: str,
    code_field: str,
    amounts: AmountsAre,
) -> TaxSettings:
    """The :class:`TaxSettings` of a destination panel.

    :param default_key: the default code's option (``defaultTaxCode``, ``defaultTaxType``).
    :param by_type_key: the option mapping line item types to codes; empty values are unset.
    :param code_field: the code's key in each ``taxRates`` entry (``taxCode``, ``taxType``).
    :param amounts: what the panel's document-level choice means (the plugin reads it: each
        destination names it its own way).
    :raises DestinationValidationError: a rate that is not a non-negative number in text.
    """
    by_type = config.get(by_type_key) or {}
    return TaxSettings(
        default_code=_text(config.get(default_key)),
        by_line_type={
            kind: code for kind, value in by_type.items() if (code := _text(value)) is not None
        },
        rates=_rates(config, code_field),
        amounts=amounts,
    )


@attrs.frozen
class ExpectedTotals:
    """What a destination's document should total, worked out before sending.

    ``bill`` is the bill's total as the bill has it (negative for a credit); ``lines`` the
    document's lines (positive on a credit note, whose amounts are negated); ``tax`` and
    ``destination`` what the destination will show, or ``None`` when ``unknown`` says why they
    cannot be known here.
    """

    currency: str
    bill: Decimal
    lines: Decimal
    tax: Decimal | None
    destination: Decimal | None
    amounts: AmountsAre
    unknown: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Plain JSON, amounts as decimal strings (for previews and the ledger's state)."""
        return {
            "currency": self.currency,
            "bill": str(self.bill),
            "lines": str(self.lines),
            "tax": None if self.tax is None else str(self.tax),
            "destination": None if self.destination is None else str(self.destination),
            "amounts": self.amounts.value,
            "unknown": list(self.unknown),
        }


def _line_tax(amount: Decimal, rate: Decimal, amounts: AmountsAre, currency: str) -> Decimal:
    if amounts is AmountsAre.INCLUSIVE:
        # The tax inside a tax-inclusive amount: amount × rate / (100 + rate).
        return round_money(_CTX.divide(_CTX.multiply(amount, rate), _HUNDRED + rate), currency)
    return round_money(_CTX.divide(_CTX.multiply(amount, rate), _HUNDRED), currency)


def _tax(
    lines: Sequence[InvoiceLine],
    settings: TaxSettings,
    currency: str,
    rounding: TaxRounding,
    uncoded: str | None,
) -> tuple[Decimal | None, tuple[str, ...]]:
    unknown: list[str] = []
    by_code: dict[str, list[Decimal]] = {}
    for line in lines:
        code = settings.code_for(line.line_item_type)
        if code is None:
            if uncoded is not None:
                unknown.append(f"{line.label} has no tax code: {uncoded}")
            continue
        by_code.setdefault(code, []).append(line.amount)
    missing = [code for code in by_code if code not in settings.rates]
    unknown.extend(
        f"no rate is given for {code} in the panel's tax rates (taxRates)" for code in missing
    )
    if unknown:
        return None, tuple(unknown)
    tax = _ZERO
    for code, amounts in by_code.items():
        rate = settings.rates[code]
        if rounding is TaxRounding.PER_CODE:
            tax += _line_tax(sum(amounts, _ZERO), rate, settings.amounts, currency)
        else:
            tax += sum((_line_tax(a, rate, settings.amounts, currency) for a in amounts), _ZERO)
    return round_money(tax, currency), ()


def expected_totals(
    plan: InvoicePlan,
    settings: TaxSettings,
    *,
    bill_total: Decimal,
    rounding: TaxRounding,
    uncoded: str | None = None,
) -> ExpectedTotals:
    """The totals the destination's document should show for ``plan`` (the document's plan).

    :param bill_total: the bill's own total (signed as on the bill).
    :param rounding: where the destination rounds tax.
    :param uncoded: what the destination does with a line that carries no code, when that
        makes its tax unknown (Xero applies the item's or account's own tax type); ``None``
        when such a line carries no tax (QuickBooks without ``TaxCodeRef``).
    """
    lines_total = plan.total
    if settings.amounts is AmountsAre.NO_TAX:
        tax: Decimal | None = round_money(_ZERO, plan.currency)
        unknown: tuple[str, ...] = ()
    else:
        tax, unknown = _tax(plan.lines, settings, plan.currency, rounding, uncoded)
    if tax is None:
        destination = None
    elif settings.amounts is AmountsAre.EXCLUSIVE:
        destination = lines_total + tax
    else:
        destination = lines_total
    return ExpectedTotals(
        currency=plan.currency,
        bill=bill_total,
        lines=lines_total,
        tax=tax,
        destination=destination,
        amounts=settings.amounts,
        unknown=unknown,
    )


def totals_note(
    expected: ExpectedTotals, actual: Decimal, *, system: str, document: str
) -> str | None:
    """A note when the destination's total is not the expected one, else ``None``.

    Informational (the document exists, the run succeeded): the usual cause is a rate in the
    panel that differs from the destination's, which only a person can settle.
    """
    if expected.destination is None or expected.tax is None or actual == expected.destination:
        return None
    how = {
        AmountsAre.EXCLUSIVE: "added to",
        AmountsAre.INCLUSIVE: "included in",
        AmountsAre.NO_TAX: "and no tax on",
    }[expected.amounts]
    return (
        f"{system} totals {document} at {actual} {expected.currency}, but billbridge expected "
        f"{expected.destination} (tax {expected.tax} at the panel's rates {how} the lines' "
        f"{expected.lines}): check the tax rates in the panel (taxRates) against the rates in "
        f"{system}"
    )
