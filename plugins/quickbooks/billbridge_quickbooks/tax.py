"""Tax at QuickBooks: a ``TaxCodeRef`` per line, ``GlobalTaxCalculation``, the totals to expect.

The panel's ``taxCodesByLineType`` names a tax code per line item type, ``defaultTaxCode`` the
code of the other lines, and ``taxCalculation`` how the bill's amounts relate to tax:
``TaxExcluded`` (QuickBooks adds the tax), ``TaxInclusive`` (the amounts include it) or
``NotApplicable``; when it is not set, ``GlobalTaxCalculation`` is not sent (US companies do
not use it) and QuickBooks adds the tax of codes that carry a rate. The rules, the expected
totals and what is unknown offline are :mod:`billbridge.domain.tax`'s; QuickBooks rounds the
tax of each rate over its lines (``TxnTaxDetail.TaxLine``), and a line without a code carries no
tax.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from billbridge.domain.lines import InvoicePlan
from billbridge.domain.tax import (
    AmountsAre,
    ExpectedTotals,
    TaxRounding,
    TaxSettings,
    expected_totals,
    tax_settings,
)
from billbridge.errors import DestinationValidationError

__all__ = ["CALCULATIONS", "expected", "global_tax_calculation", "settings"]

#: ``taxCalculation`` (QuickBooks' ``GlobalTaxCalculation``) → how the amounts relate to tax.
CALCULATIONS: Mapping[str, AmountsAre] = {
    "TaxExcluded": AmountsAre.EXCLUSIVE,
    "TaxInclusive": AmountsAre.INCLUSIVE,
    "NotApplicable": AmountsAre.NO_TAX,
}


def global_tax_calculation(config: Mapping[str, Any]) -> str | None:
    """The ``GlobalTaxCalculation`` to send, or ``None`` to leave it out."""
    value = config.get("taxCalculation")
    if value is None or value == "":
        return None
    if value not in CALCULATIONS:
        raise DestinationValidationError(
            f"taxCalculation must be one of {', '.join(CALCULATIONS)}; got {value!r}: fix the "
            "integration's QuickBooks configuration"
        )
    return str(value)


def settings(config: Mapping[str, Any]) -> TaxSettings:
    """The integration's tax settings (codes per line type, rates, calculation)."""
    calculation = global_tax_calculation(config)
    amounts = CALCULATIONS[calculation] if calculation else AmountsAre.EXCLUSIVE
    return tax_settings(
        config,
        default_key="defaultTaxCode",
        by_type_key="taxCodesByLineType",
        code_field="taxCode",
        amounts=amounts,
    )


def expected(plan: InvoicePlan, taxes: TaxSettings, bill_total: Decimal) -> ExpectedTotals:
    """The totals QuickBooks' document should show for ``plan`` (the document's own plan)."""
    return expected_totals(plan, taxes, bill_total=bill_total, rounding=TaxRounding.PER_CODE)
