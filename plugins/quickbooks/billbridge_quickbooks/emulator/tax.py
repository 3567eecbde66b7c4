"""QuickBooks' sales tax on a document: from the company's TaxCode and TaxRate lists.

What the emulator computes (REFERENCE.md, "Tax"; where Intuit's pages are silent the choice is
the emulator's and is said here):

* A line's ``TaxCodeRef`` names a ``TaxCode``; its ``SalesTaxRateList.TaxRateDetail`` names the
  ``TaxRate`` entries (``RateValue``, a percentage) that apply. Codes without sales rates (the
  US ``TAX``/``NON``, whose rate would come from the transaction's ``TxnTaxCodeRef`` and
  Automated Sales Tax, neither emulated) add no tax.
* ``GlobalTaxCalculation``: ``TaxExcluded`` (also when it is absent: the emulator's choice) adds
  the tax to the lines; ``TaxInclusive`` takes it out of them (the line amounts include tax and
  the total is their sum: the emulator's reading); ``NotApplicable`` has no tax. Any other value
  is refused (2010).
* Tax is rounded half-up to the currency's minor unit once per rate, over the lines using it
  (``TxnTaxDetail.TaxLine`` has one line per rate), not line by line.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from billbridge.domain.money import minor_units, round_half_up
from billbridge_quickbooks.emulator.company import JSON, Company
from billbridge_quickbooks.emulator.errors import unsupported

__all__ = ["CALCULATIONS", "apply_tax"]

CALCULATIONS = ("TaxExcluded", "TaxInclusive", "NotApplicable")
_HUNDRED = Decimal(100)


def _rates(company: Company, code_id: str) -> list[JSON]:
    code = company.table("TaxCode").get(code_id) or {}
    listed = (code.get("SalesTaxRateList") or {}).get("TaxRateDetail") or []
    rates = []
    for detail in listed:
        rate = company.table("TaxRate").get(str(detail["TaxRateRef"]["value"]))
        if rate is not None:
            rates.append(rate)
    return rates


def _taxable(company: Company, lines: Sequence[JSON]) -> dict[str, tuple[JSON, Decimal]]:
    """Per TaxRate Id: the rate and the sum of the amounts of the lines it applies to."""
    found: dict[str, tuple[JSON, Decimal]] = {}
    for line in lines:
        detail = line.get("SalesItemLineDetail")
        if not isinstance(detail, dict) or not detail.get("ItemRef"):
            continue
        code = (detail.get("TaxCodeRef") or {}).get("value")
        for rate in _rates(company, str(code)) if code is not None else []:
            _, amount = found.get(rate["Id"], (rate, Decimal(0)))
            found[rate["Id"]] = (rate, amount + line["Amount"])
    return found


def apply_tax(
    company: Company, lines: Sequence[JSON], net: Decimal, calculation: Any, currency: str
) -> tuple[Decimal, JSON]:
    """The document's ``TotalAmt`` and ``TxnTaxDetail`` for lines totalling ``net``."""
    if calculation is not None and calculation not in CALCULATIONS:
        raise unsupported(f"GlobalTaxCalculation {calculation}")
    places = minor_units(currency)
    tax_lines: list[JSON] = []
    total_tax = Decimal(0)
    if calculation != "NotApplicable":
        for rate, amount in _taxable(company, lines).values():
            percent = Decimal(str(rate["RateValue"]))
            if calculation == "TaxInclusive":
                tax = round_half_up(amount * percent / (_HUNDRED + percent), places)
                taxable = amount - tax
            else:
                tax = round_half_up(amount * percent / _HUNDRED, places)
                taxable = amount
            if not tax:
                continue
            total_tax += tax
            tax_lines.append(
                {
                    "Amount": tax,
                    "DetailType": "TaxLineDetail",
                    "TaxLineDetail": {
                        "TaxRateRef": {"value": rate["Id"], "name": rate["Name"]},
                        "PercentBased": True,
                        "TaxPercent": percent,
                        "NetAmountTaxable": taxable,
                    },
                }
            )
    total = net if calculation == "TaxInclusive" else net + total_tax
    return total, {"TotalTax": total_tax, "TaxLine": tax_lines}
