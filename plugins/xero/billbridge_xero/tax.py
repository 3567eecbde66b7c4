"""Tax at Xero: a ``TaxType`` per line, ``LineAmountTypes``, and the totals to expect.

The panel's ``taxTypesByLineType`` names a tax type per line item type, ``defaultTaxType`` the
type of the other lines, and ``lineAmountTypes`` how the bill's amounts relate to tax
(``Exclusive``: Xero adds each line's tax; ``Inclusive``: the amounts include it; ``NoTax``).
The rules, the expected totals and what is unknown offline are :mod:`billbridge.domain.tax`'s;
Xero rounds each line's tax, and gives a line sent without a tax type the tax type of its item
or account, which billbridge cannot know without asking: such a total is left unknown.
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

__all__ = ["expected", "settings"]


def settings(config: Mapping[str, Any], amount_types: str) -> TaxSettings:
    """The integration's tax settings; ``amount_types`` is the checked ``lineAmountTypes``."""
    return tax_settings(
        config,
        default_key="defaultTaxType",
        by_type_key="taxTypesByLineType",
        code_field="taxType",
        amounts=AmountsAre(amount_types),
    )


def expected(plan: InvoicePlan, taxes: TaxSettings, bill_total: Decimal) -> ExpectedTotals:
    """The totals Xero's document should show for ``plan`` (the document's own plan)."""
    return expected_totals(
        plan,
        taxes,
        bill_total=bill_total,
        rounding=TaxRounding.PER_LINE,
        uncoded="Xero applies the item's or account's own tax type",
    )
