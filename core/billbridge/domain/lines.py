"""From a bill to invoice lines: the line logic every destination shares.

QuickBooks and Xero offer the same line options on their panels (split usage line items, credit
and debit memo items, zero-quantity lines, sorting, strict line item mapping), so the rules live
here once, as pure functions. A destination's translator calls :func:`plan_invoice` and turns the
resulting :class:`InvoicePlan` into its own payload; it never re-derives amounts.

The rules, in the order :func:`plan_invoice` applies them:

1. **Input.** The bill is already filtered by the core (excluded line item types, products and
   aggregations are gone). Lines are taken in ``sequenceNumber`` order; lines without one come
   last, and equal numbers keep the bill's order.
2. **Items.** Each line is given an external item by :func:`resolve_item`: the configured
   credit/debit memo item for ``CREDIT_MEMO``/``DEBIT_MEMO`` lines, else the first mapping found
   for the accounting product, the product, the aggregation, the compound aggregation; else,
   only when the integration allows fallback items, the panel's unmatched recurring item
   (:data:`RECURRING_LINE_TYPES`) or unmatched one-time item (every other type). Lines that
   fell back are marked (:attr:`InvoiceLine.fallback`, :meth:`InvoicePlan.fallbacks`).
3. **Splitting** (:class:`SplitMode`). ``NONE``: one invoice line per bill line.
   ``USAGE_BAND``: a line with pricing bands becomes one invoice line per band (when the bands'
   subtotals add up to the line's subtotal; otherwise the line stays whole and a warning says
   why). ``PRODUCT`` / ``AGGREGATION``: usage lines (:data:`USAGE_LINE_TYPES`) of the same type
   and the same product (accounting product first) / the same aggregation (or compound
   aggregation) are merged into one invoice line at the position of the first of them; other
   lines stay one per bill line.
4. **Zero lines.** A line whose quantity and amount are both zero is left off unless
   ``send_zero_quantity``. A zero-quantity line that carries money is always kept.
5. **Amounts.** Exact mode (the default): the bill's subtotals are rounded to the currency
   together with :func:`billbridge.domain.money.allocate`, so the invoice total equals the bill's
   (filtered) total to the minor unit, and quantity/unit price are derived so that they multiply
   out to each amount. Strict mode: quantity and unit price are sent as the bill has them and
   the amount is their product, rounded; every difference from the bill is reported in
   :attr:`InvoicePlan.warnings`. Nothing is rounded silently.
6. **Signs.** Quantities are never negative; the sign of a line is carried by its unit price and
   amount. A plan whose total is negative is a credit (:attr:`InvoicePlan.is_credit`): the
   destination makes a credit note from :meth:`InvoicePlan.negated`.
7. **Sorting** (:class:`SortBy`), after amounts are fixed, so an option never changes an amount.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

import attrs

from billbridge.domain.models import Band, Bill, LineItem
from billbridge.domain.money import (
    MAX_AMOUNT,
    MoneyError,
    allocate,
    check_amount,
    minor_units,
    round_half_up,
    round_money,
    unit_price_for,
)
from billbridge.errors import DestinationValidationError, FieldError
from billbridge.plugin.contract import ResolvedMappings

__all__ = [
    "RECURRING_LINE_TYPES",
    "USAGE_LINE_TYPES",
    "InvoiceLine",
    "InvoicePlan",
    "LineOptions",
    "SortBy",
    "SplitMode",
    "fallback_config_errors",
    "fallback_hint",
    "fallback_option",
    "plan_invoice",
    "resolve_item",
    "service_dates",
]


class SplitMode(StrEnum):
    """How usage lines become invoice lines (the panel's ``splitUsageLineItems``)."""

    #: One invoice line per bill line item.
    NONE = "NONE"
    #: A line item with pricing bands becomes one invoice line per band.
    USAGE_BAND = "USAGE_BAND"
    #: Usage lines of the same product (accounting product first) are merged into one line.
    PRODUCT = "PRODUCT"
    #: Usage lines of the same aggregation (or compound aggregation) are merged into one line.
    AGGREGATION = "AGGREGATION"


class SortBy(StrEnum):
    """Order of the invoice lines (the panel's ``sortLineItemsBy``)."""

    #: As on the bill (``sequenceNumber``).
    NONE = "NONE"
    #: By amount, largest first; equal amounts keep the bill's order.
    SUBTOTAL = "SUBTOTAL"
    #: By aggregation id (compound aggregation id when there is none), lines without one last.
    AGGREGATION_ID = "AGGREGATION_ID"


USAGE_LINE_TYPES: frozenset[str] = frozenset({"USAGE", "OVERAGE_USAGE"})
"""Line item types that ``PRODUCT`` / ``AGGREGATION`` splitting merges.

These are the charges priced from aggregated usage. Counter charges, commitments, minimum spend,
credits and memos are never merged: each of them means something on its own.
"""

RECURRING_LINE_TYPES: frozenset[str] = frozenset(
    {
        "USAGE",
        "OVERAGE_USAGE",
        "OVERAGE_SURCHARGE",
        "COUNTER_RUNNING_TOTAL_CHARGE",
        "COMMITMENT_CONSUMED",
        "BALANCE_CONSUMED",
        "MINIMUM_SPEND",
    }
)
"""Line item types that take the panel's *unmatched recurring item* when nothing maps.

Usage and the charges that recur with it every billing period (counters, consumption of a
commitment or balance, the minimum spend topping usage up). Every other type (standing
charges, fees, one-off charges, adjustments, credits, memos, and types m3ter adds later) takes
the *unmatched one-time item*.
"""

#: The panel key of each fallback item.
FALLBACK_OPTIONS = {True: "unmatchedRecurringItem", False: "unmatchedOneTimeItem"}

_E = TypeVar("_E", SplitMode, SortBy)


def _enum_option(kind: type[_E], value: Any, key: str) -> _E:
    if value is None:
        return kind("NONE")
    if isinstance(value, kind):
        return value
    if isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            pass
    allowed = ", ".join(member.value for member in kind)
    raise ValueError(f"{key} must be one of {allowed}, got {value!r}")


def _split_mode(value: Any) -> SplitMode:
    return _enum_option(SplitMode, value, "split")


def _sort_by(value: Any) -> SortBy:
    return _enum_option(SortBy, value, "sort_by")


def _flag(value: Any, key: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    raise ValueError(f"{key} must be true or false, got {value!r}")


def _item_option(value: Any, key: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    raise ValueError(f"{key} must be an item id (text), got {value!r}")


_places = attrs.validators.and_(attrs.validators.instance_of(int), attrs.validators.ge(0))


@attrs.frozen
class LineOptions:
    """The line options of a destination panel, plus the precision the destination accepts.

    ``unit_price_places`` and ``quantity_places`` are the decimals the destination stores for a
    unit price and a quantity (QuickBooks keeps more unit price decimals than Xero, which needs
    ``unitdp=4`` for four); the destination's translator sets them. ``item_table`` is the
    external table products and aggregations are mapped to.
    """

    split: SplitMode = attrs.field(default=SplitMode.NONE, converter=_split_mode)
    sort_by: SortBy = attrs.field(default=SortBy.NONE, converter=_sort_by)
    send_zero_quantity: bool = False
    #: ``strictLineItemMapping``: send quantity and unit price as they are on the bill.
    strict: bool = False
    unit_price_places: int = attrs.field(default=2, validator=_places)
    quantity_places: int = attrs.field(default=4, validator=_places)
    credit_memo_item: str | None = None
    debit_memo_item: str | None = None
    item_table: str = "Item"
    #: ``allowFallbackItems``: unmatched lines take the fallback items below (off by default,
    #: so that an unmapped product stays a MissingMapping unless someone chose otherwise).
    allow_fallback_items: bool = False
    fallback_one_time_item: str | None = None
    fallback_recurring_item: str | None = None

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any],
        *,
        unit_price_places: int,
        quantity_places: int = 4,
        item_table: str = "Item",
    ) -> LineOptions:
        """Read the panel keys of a destination configuration; absent keys take the defaults.

        Keys: ``splitUsageLineItems``, ``sortLineItemsBy``, ``sendZeroQuantityLines``,
        ``strictLineItemMapping``, ``creditMemoItem``, ``debitMemoItem``,
        ``allowFallbackItems``, ``unmatchedOneTimeItem``, ``unmatchedRecurringItem``. An empty
        item means "not set". A value of the wrong kind raises ``ValueError`` (the panel schema
        should have refused it already).
        """
        return cls(
            split=_enum_option(SplitMode, config.get("splitUsageLineItems"), "splitUsageLineItems"),
            sort_by=_enum_option(SortBy, config.get("sortLineItemsBy"), "sortLineItemsBy"),
            send_zero_quantity=_flag(config.get("sendZeroQuantityLines"), "sendZeroQuantityLines"),
            strict=_flag(config.get("strictLineItemMapping"), "strictLineItemMapping"),
            unit_price_places=unit_price_places,
            quantity_places=quantity_places,
            credit_memo_item=_item_option(config.get("creditMemoItem"), "creditMemoItem"),
            debit_memo_item=_item_option(config.get("debitMemoItem"), "debitMemoItem"),
            item_table=item_table,
            allow_fallback_items=_flag(config.get("allowFallbackItems"), "allowFallbackItems"),
            fallback_one_time_item=_item_option(
                config.get("unmatchedOneTimeItem"), "unmatchedOneTimeItem"
            ),
            fallback_recurring_item=_item_option(
                config.get("unmatchedRecurringItem"), "unmatchedRecurringItem"
            ),
        )


@attrs.frozen
class InvoiceLine:
    """One line of the invoice to make.

    ``round_half_up(quantity × unit_price, minor units) == amount`` holds for every line in exact
    mode and, by construction, in strict mode too (the amount *is* that product there).
    ``quantity`` is never negative; a credit line has a negative ``unit_price`` and ``amount``.

    ``service_end`` is the **inclusive** last day of the service period: m3ter's
    ``servicePeriodEndDate`` is exclusive (a September period ends at ``2025-10-01T00:00Z``),
    accounting systems show the last day served (``2025-09-30``).
    """

    description: str
    quantity: Decimal
    unit_price: Decimal
    #: Exactly the currency's minor units (``Decimal("12.30")``, ``Decimal("500")`` for JPY).
    amount: Decimal
    #: The resolved external item id; ``None`` when nothing maps.
    item_id: str | None
    #: The bill line(s) this invoice line came from (several when merged).
    source: tuple[LineItem, ...]
    #: The pricing band, when split per usage band.
    band: Band | None = None
    service_start: date | None = None
    service_end: date | None = None
    line_item_type: str = ""
    #: ``item_id`` is the panel's unmatched one-time or recurring item: nothing was mapped.
    fallback: bool = False

    @property
    def label(self) -> str:
        """How messages name the line: ``line 3 ('API calls')`` (its first bill line)."""
        first = self.source[0] if self.source else None
        return _label(first, self.description) if first is not None else repr(self.description)

    @property
    def aggregation_id(self) -> str | None:
        """The aggregation (else compound aggregation) id of the first source line, if any."""
        first = self.source[0] if self.source else None
        if first is None:
            return None
        return first.aggregation_id or first.compound_aggregation_id


@attrs.frozen
class InvoicePlan:
    """Every invoice line of one bill, with the totals and what the caller must know.

    ``total`` is the sum of the line amounts. ``exact_total`` is the sum of the bill's line
    subtotals that made it to the plan, unrounded; in exact mode
    ``total == round_money(exact_total, currency)`` always. ``warnings`` lists every place where
    the plan departs from the bill's figures (strict mode rounding, bands that did not add up...)
    for the caller to log or show; the destination need not act on them.
    """

    lines: tuple[InvoiceLine, ...]
    currency: str
    total: Decimal
    exact_total: Decimal
    #: The total is negative: the destination should make a credit note/memo instead.
    is_credit: bool
    warnings: tuple[str, ...] = ()
    #: True on a plan returned by :meth:`negated` (so that it is never negated twice).
    is_negated: bool = False

    def fallbacks(self) -> list[dict[str, str]]:
        """The lines that took a fallback item, as JSON for a run's record.

        One entry per such invoice line: ``line`` (how messages name it), ``lineItemType``,
        ``item`` (the fallback item's id) and ``option`` (the panel key that chose it).
        """
        return [
            {
                "line": line.label,
                "lineItemType": line.line_item_type,
                "item": str(line.item_id),
                "option": fallback_option(line.line_item_type),
            }
            for line in self.lines
            if line.fallback
        ]

    def negated(self) -> InvoicePlan:
        """The same plan with every amount and unit price negated, for a credit note.

        Quantities stay positive. Only a plan built by :func:`plan_invoice` can be negated: a
        negated plan raises ``ValueError``, because flipping the signs twice would turn a
        credit back into a charge without anyone noticing.
        """
        if self.is_negated:
            raise ValueError("this invoice plan is already negated; negating twice is a bug")
        lines = tuple(
            attrs.evolve(line, amount=_negate(line.amount), unit_price=_negate(line.unit_price))
            for line in self.lines
        )
        total = _negate(self.total)
        return attrs.evolve(
            self,
            lines=lines,
            total=total,
            exact_total=_negate(self.exact_total),
            is_credit=total < 0,
            is_negated=True,
        )


# --- helpers -------------------------------------------------------------------------------

# Products and quotients of bill figures are computed without rounding: 60 digits hold any
# quantity times any price a bill can carry.
_CTX = decimal.Context(
    prec=60,
    rounding=decimal.ROUND_HALF_UP,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)
_ZERO = Decimal(0)
_ONE = Decimal(1)


def _negate(value: Decimal) -> Decimal:
    # -Decimal("0.00") is Decimal("-0.00"), which a payload would print as "-0.00".
    return value if value.is_zero() else value.copy_negate()


def _trim(value: Decimal) -> Decimal:
    """Drop trailing zeros without switching to exponent notation (``150000.0000`` → ``150000``)."""
    if value.is_zero():
        return _ZERO
    normal = value.normalize(_CTX)
    exponent = normal.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        normal = normal.quantize(_ONE, context=_CTX)
    return normal


def _number_text(value: Decimal) -> str:
    """A readable number for descriptions: ``100000`` → ``"100,000"``, ``0.5`` → ``"0.5"``."""
    return format(_trim(value), ",f")


def _describe(line: LineItem) -> str:
    return line.description or line.product_name or line.line_item_type


def _quantity(line: LineItem) -> Decimal | None:
    return line.quantity if line.quantity is not None else line.units


def _label(line: LineItem, description: str) -> str:
    """How warnings name a line: its sequence number (or id) and description."""
    if line.sequence_number is not None:
        where = f"line {line.sequence_number}"
    elif line.id is not None:
        where = f"line {line.id}"
    else:
        where = "line"
    return f"{where} ({description!r})"


def fallback_option(line_item_type: str) -> str:
    """The panel key of the fallback item a line of this type takes."""
    return FALLBACK_OPTIONS[line_item_type in RECURRING_LINE_TYPES]


def _fallback_item(line_item_type: str, options: LineOptions) -> str | None:
    if not options.allow_fallback_items:
        return None
    if line_item_type in RECURRING_LINE_TYPES:
        return options.fallback_recurring_item
    return options.fallback_one_time_item


def _resolve(
    line: LineItem, mappings: ResolvedMappings, options: LineOptions
) -> tuple[str | None, bool]:
    """:func:`resolve_item`, and whether the item is a fallback one."""
    if line.line_item_type == "CREDIT_MEMO" and options.credit_memo_item:
        return options.credit_memo_item, False
    if line.line_item_type == "DEBIT_MEMO" and options.debit_memo_item:
        return options.debit_memo_item, False
    candidates = (
        ("Product", line.accounting_product_id),
        ("Product", line.product_id),
        ("Aggregation", line.aggregation_id),
        ("CompoundAggregation", line.compound_aggregation_id),
    )
    for entity, entity_id in candidates:
        found = mappings.get(entity, entity_id, options.item_table)
        if found:
            return found, False
    fallback = _fallback_item(line.line_item_type, options)
    return fallback, fallback is not None


def resolve_item(line: LineItem, mappings: ResolvedMappings, options: LineOptions) -> str | None:
    """The external item for a bill line, or ``None`` when nothing maps.

    Precedence: ``CREDIT_MEMO`` lines take ``options.credit_memo_item`` and ``DEBIT_MEMO`` lines
    ``options.debit_memo_item`` when those are set (memos are usually not about one product);
    then the mapping of the accounting product (it is what the books care about, which is why
    m3ter has it), the product, the aggregation and the compound aggregation, each looked up in
    ``options.item_table``; last, when ``options.allow_fallback_items``, the fallback item for
    the line's type (:data:`RECURRING_LINE_TYPES` take ``fallback_recurring_item``, the others
    ``fallback_one_time_item``).
    """
    return _resolve(line, mappings, options)[0]


def fallback_hint(plan: InvoicePlan, system: str) -> str | None:
    """A sentence to add to a destination's refusal of an item, when the plan used fallbacks.

    The destination names the item it cannot use (or only the field, as QuickBooks' 610 does),
    never the panel option that chose it; this says which lines took which fallback item, so
    the person knows to fix the panel rather than a mapping. ``None`` without fallbacks.
    """
    used: dict[tuple[str, str], list[str]] = {}
    for entry in plan.fallbacks():
        used.setdefault((entry["option"], entry["item"]), []).append(entry["line"])
    if not used:
        return None
    parts = []
    for (option, item), lines in used.items():
        kind = "recurring" if option == FALLBACK_OPTIONS[True] else "one-time"
        verb = "uses" if len(lines) == 1 else "use"
        parts.append(f"{', '.join(lines)} {verb} the unmatched {kind} item {item} ({option})")
    return (
        f"{'; '.join(parts)}: choose items that exist and are active in {system}, then replay "
        "the run"
    )


def fallback_config_errors(config: Mapping[str, Any]) -> list[FieldError]:
    """What ``validate_config`` reports about the fallback options of a panel.

    Allowing fallback items without choosing one would change nothing, which is never what the
    person meant.
    """
    if config.get("allowFallbackItems") is not True:
        return []
    if config.get("unmatchedOneTimeItem") or config.get("unmatchedRecurringItem"):
        return []
    return [
        FieldError(
            "/allowFallbackItems",
            "fallback items are allowed but none is chosen: pick an unmatched one-time item "
            "(unmatchedOneTimeItem) or an unmatched recurring item (unmatchedRecurringItem)",
        )
    ]


def _inclusive_end(start: datetime | None, end: datetime) -> date:
    # The period ends just before ``end``. At midnight the last day served is the day before;
    # an end in the middle of a day still serves part of that day. A period that ends where it
    # starts (or before) is reported as ending on its start date, never before it.
    last = end.date() - timedelta(days=1) if end.time() == time() else end.date()
    if start is not None and last < start.date():
        return start.date()
    return last


def service_dates(line: LineItem) -> tuple[date | None, date | None]:
    """The service period of a line as ``(first day, last day)``, both inclusive.

    m3ter's ``servicePeriodStartDate`` is inclusive and ``servicePeriodEndDate`` exclusive.
    Dates are taken as written in the timestamps (m3ter writes periods as UTC midnights): no
    time zone conversion, which could move a period by a day. The end becomes the last day
    before it (``2025-10-01T00:00Z`` → ``2025-09-30``), never earlier than the start date.
    """
    start = line.service_period_start_date
    end = line.service_period_end_date
    first = start.date() if start is not None else None
    last = _inclusive_end(start, end) if end is not None else None
    return first, last


# --- drafts: invoice lines before amounts are decided ------------------------------------------


@attrs.define
class _Draft:
    """An invoice line before its amount is decided: the bill's figures, unrounded."""

    description: str
    label: str
    exact: Decimal
    #: As on the bill (signed), ``None`` when the bill has none.
    quantity: Decimal | None
    #: As on the bill (signed), ``None`` when there is none to send as it is.
    unit_price: Decimal | None
    item_id: str | None
    source: tuple[LineItem, ...]
    line_item_type: str
    band: Band | None = None
    service_start: date | None = None
    service_end: date | None = None
    fallback: bool = False


def _single_draft(line: LineItem, item: tuple[str | None, bool]) -> _Draft:
    description = _describe(line)
    start, end = service_dates(line)
    return _Draft(
        description=description,
        label=_label(line, description),
        exact=line.subtotal if line.subtotal is not None else _ZERO,
        quantity=_quantity(line),
        unit_price=line.average_unit_price,
        item_id=item[0],
        source=(line,),
        line_item_type=line.line_item_type,
        service_start=start,
        service_end=end,
        fallback=item[1],
    )


def _band_subtotal(band: Band) -> Decimal | None:
    if band.band_subtotal is not None:
        return band.band_subtotal
    if band.unit_subtotal is None and band.fixed_price is None:
        return None
    return (band.unit_subtotal or _ZERO) + (band.fixed_price or _ZERO)


def _band_description(base: str, bands: Sequence[Band], index: int) -> str:
    """``"API Calls (0 – 100,000)"``, ``"API Calls (over 100,000)"`` or ``"API Calls (band 2)"``.

    A band covers the units above its lower limit up to the next band's lower limit; the last
    band has no upper limit. Without a lower limit (or for a lone band starting at zero, which
    is no tier at all) the band's position names it.
    """
    lower = bands[index].lower_limit
    if lower is None:
        return f"{base} (band {index + 1})"
    following = bands[index + 1].lower_limit if index + 1 < len(bands) else None
    if following is not None and following > lower:
        return f"{base} ({_number_text(lower)} – {_number_text(following)})"
    if lower.is_zero():
        return f"{base} (band {index + 1})"
    return f"{base} (over {_number_text(lower)})"


def _band_drafts(
    line: LineItem, item: tuple[str | None, bool], warnings: list[str]
) -> list[_Draft]:
    whole = _single_draft(line, item)
    bands = line.bands or ()
    subtotals = [_band_subtotal(b) for b in bands]
    known = [s for s in subtotals if s is not None]
    if len(known) != len(bands):
        warnings.append(
            f"{whole.label}: a pricing band has no subtotal; sent as a single line, not per band"
        )
        return [whole]
    band_sum = sum(known, _ZERO)
    if band_sum != whole.exact:
        # Money must match the bill: a balancing line would invent a charge nobody can explain.
        warnings.append(
            f"{whole.label}: the pricing bands add up to {band_sum}, not to the line subtotal "
            f"{whole.exact}; sent as a single line, not per band"
        )
        return [whole]
    drafts = []
    for index, (band, subtotal) in enumerate(zip(bands, known, strict=True)):
        description = _band_description(whole.description, bands, index)
        drafts.append(
            _Draft(
                description=description,
                label=_label(line, description),
                exact=subtotal,
                quantity=band.band_quantity if band.band_quantity is not None else band.band_units,
                unit_price=band.unit_price,
                item_id=whole.item_id,
                source=(line,),
                line_item_type=line.line_item_type,
                band=band,
                service_start=whole.service_start,
                service_end=whole.service_end,
                fallback=whole.fallback,
            )
        )
    return drafts


def _merge_key(line: LineItem, split: SplitMode) -> tuple[str, str, str] | None:
    """Which merged line a usage line joins, or ``None`` when it stays on its own.

    The line item type is part of the key so that usage and overage usage of one product stay
    apart: they are different charges on the customer's contract.
    """
    if line.line_item_type not in USAGE_LINE_TYPES:
        return None
    if split is SplitMode.PRODUCT:
        product = line.product_for_accounting
        return (line.line_item_type, "Product", product) if product else None
    if line.aggregation_id:
        return (line.line_item_type, "Aggregation", line.aggregation_id)
    if line.compound_aggregation_id:
        return (line.line_item_type, "CompoundAggregation", line.compound_aggregation_id)
    return None


def _merged_draft(
    members: Sequence[LineItem],
    split: SplitMode,
    mappings: ResolvedMappings,
    options: LineOptions,
    warnings: list[str],
) -> _Draft:
    first = members[0]
    if split is SplitMode.PRODUCT:
        # Named after the product the lines were grouped by: the accounting product if any. The
        # product's name serves only when it is that same product.
        name = first.accounting_product_name
        if not name and first.accounting_product_id in (None, first.product_id):
            name = first.product_name
        description = name or _describe(first)
    else:
        # Bills carry no aggregation names; the first line's description is the closest.
        description = _describe(first)
    label = _label(first, description)
    exact = sum((m.subtotal or _ZERO for m in members), _ZERO)
    quantities = [q for q in (_quantity(m) for m in members) if q is not None]
    quantity = sum(quantities, _ZERO) if quantities else None
    prices = {m.average_unit_price for m in members}
    # One unit price only when every merged line has the same one; otherwise there is no price
    # "as on the bill" and strict mode derives it (with a warning).
    unit_price = next(iter(prices)) if len(prices) == 1 else None
    resolved = [_resolve(m, mappings, options) for m in members]
    items = [item for item, _ in resolved]
    # A member's own mapping says more about the merged line than a fallback item does.
    item_id, fallback = next(
        ((i, False) for i, fell_back in resolved if i is not None and not fell_back),
        next(((i, True) for i, fell_back in resolved if fell_back), (None, False)),
    )
    if len(set(items)) > 1:
        shown = ", ".join(sorted({str(i) for i in items}))
        warnings.append(
            f"{label}: the merged lines map to different items ({shown}); "
            f"the invoice line uses {item_id}"
        )
    periods = [service_dates(m) for m in members]
    starts = [s for s, _ in periods if s is not None]
    ends = [e for _, e in periods if e is not None]
    return _Draft(
        description=description,
        label=label,
        exact=exact,
        quantity=quantity,
        unit_price=unit_price,
        item_id=item_id,
        source=tuple(members),
        line_item_type=first.line_item_type,
        service_start=min(starts) if starts else None,
        service_end=max(ends) if ends else None,
        fallback=fallback,
    )


def _drafts(
    lines: Sequence[LineItem],
    mappings: ResolvedMappings,
    options: LineOptions,
    warnings: list[str],
) -> list[_Draft]:
    if options.split is SplitMode.NONE:
        return [_single_draft(li, _resolve(li, mappings, options)) for li in lines]
    if options.split is SplitMode.USAGE_BAND:
        drafts: list[_Draft] = []
        for li in lines:
            item = _resolve(li, mappings, options)
            if li.bands:
                drafts.extend(_band_drafts(li, item, warnings))
            else:
                drafts.append(_single_draft(li, item))
        return drafts
    # PRODUCT / AGGREGATION: collect members per key, keeping the first member's position.
    # Each slot is (merged?, members); a group's list keeps growing after its slot is placed.
    slots: list[tuple[bool, list[LineItem]]] = []
    groups: dict[tuple[str, str, str], list[LineItem]] = {}
    for li in lines:
        key = _merge_key(li, options.split)
        if key is None:
            slots.append((False, [li]))
        elif key in groups:
            groups[key].append(li)
        else:
            groups[key] = [li]
            slots.append((True, groups[key]))
    return [
        _merged_draft(members, options.split, mappings, options, warnings)
        if is_group
        else _single_draft(members[0], _resolve(members[0], mappings, options))
        for is_group, members in slots
    ]


# --- amounts --------------------------------------------------------------------------------


def _derive(
    amount: Decimal,
    quantity: Decimal | None,
    price: Decimal | None,
    options: LineOptions,
    minor: int,
) -> tuple[Decimal, Decimal]:
    """Quantity and unit price that multiply out to ``amount`` (exact mode).

    The bill's quantity is kept when a unit price with at most ``unit_price_places`` decimals
    makes ``round_half_up(quantity × price)`` equal the amount: the bill's own unit price when
    it does (:func:`billbridge.domain.money.unit_price_for`), else one derived from the amount.
    Otherwise the line is sent as ``1 × amount``, which always works (``unit_price_places >=
    minor units`` is checked first). A line with no quantity and no money keeps quantity 0 and
    shows the bill's unit price.
    """
    q = (
        round_half_up(quantity.copy_abs(), options.quantity_places)
        if quantity is not None
        else _ZERO
    )
    if q.is_zero():
        if amount.is_zero():
            shown = _ZERO
            if price is not None:
                shown = round_half_up(price, options.unit_price_places)
                if shown.copy_abs() > MAX_AMOUNT:
                    shown = _ZERO
            return _ZERO, _trim(shown)
        return _ONE, _trim(amount)
    # Quantities are sent positive: a negative quantity moves its sign to the price.
    signed = (
        price.copy_negate()
        if price is not None and quantity is not None and quantity < 0
        else price
    )
    p = unit_price_for(amount, q, signed, places=options.unit_price_places, minor=minor)
    if p is not None and p.copy_abs() <= MAX_AMOUNT:
        return _trim(q), _trim(p)
    return _ONE, _trim(amount)


def _strict(
    draft: _Draft, options: LineOptions, minor: int, currency: str, warnings: list[str]
) -> tuple[Decimal, Decimal, Decimal]:
    """Quantity, unit price and amount as on the bill (strict mode), reporting every change."""
    exact_amount = round_money(draft.exact, currency)
    raw_q, raw_p = draft.quantity, draft.unit_price
    if raw_q is None or raw_p is None or (raw_q.is_zero() and not draft.exact.is_zero()):
        # Nothing to send "as it is" (or a zero quantity that would drop the line's money):
        # derive the figures from the subtotal as exact mode does, and say so.
        q, p = _derive(exact_amount, raw_q, raw_p, options, minor)
        if raw_q is None:
            reason = "has no quantity"
        elif raw_p is None and len(draft.source) > 1:
            reason = "merges lines with different unit prices"
        elif raw_p is None:
            reason = "has no unit price"
        else:
            reason = "has quantity 0"
        warnings.append(
            f"{draft.label} {reason}; sent as {q} × {p} = {exact_amount}, derived from its "
            f"subtotal {draft.exact}"
        )
        return q, p, exact_amount
    q = round_half_up(raw_q.copy_abs(), options.quantity_places)
    if q != raw_q.copy_abs():
        warnings.append(
            f"{draft.label}: quantity {raw_q.copy_abs()} rounded to {_trim(q)} "
            f"({options.quantity_places} decimal places)"
        )
    # Quantities are sent positive: the sign moves to the unit price so the product keeps it.
    signed_p = raw_p.copy_negate() if raw_q < 0 else raw_p
    p = round_half_up(signed_p, options.unit_price_places)
    if p != signed_p:
        warnings.append(
            f"{draft.label}: unit price {signed_p} rounded to {_trim(p)} "
            f"({options.unit_price_places} decimal places)"
        )
    amount = round_half_up(_CTX.multiply(q, p), minor)
    if amount != exact_amount:
        warnings.append(
            f"{draft.label}: {_trim(q)} × {_trim(p)} = {amount}, but the bill's subtotal is "
            f"{draft.exact}"
        )
    return _trim(q), _trim(p), amount


def _checked(amount: Decimal, what: str) -> Decimal:
    try:
        return check_amount(amount, what=what)
    except MoneyError as exc:
        # A person must fix the bill: the destination would refuse or truncate the number.
        raise DestinationValidationError(str(exc)) from exc


def _sorted(lines: list[InvoiceLine], sort_by: SortBy) -> list[InvoiceLine]:
    # sorted() is stable: equal keys keep the bill's order.
    if sort_by is SortBy.SUBTOTAL:
        return sorted(lines, key=lambda line: -line.amount)
    if sort_by is SortBy.AGGREGATION_ID:
        return sorted(
            lines, key=lambda line: (line.aggregation_id is None, line.aggregation_id or "")
        )
    return lines


def plan_invoice(bill: Bill, mappings: ResolvedMappings, options: LineOptions) -> InvoicePlan:
    """Turn an (already filtered) bill into invoice lines, following the module's rules.

    * Lines are taken in ``sequenceNumber`` order (lines without one last, ties in bill order),
      given items by :func:`resolve_item` and split or merged per ``options.split``.
    * Lines with zero quantity (or none) and zero subtotal are dropped unless
      ``options.send_zero_quantity``; a zero-quantity line with money is kept.
    * Exact mode: amounts are the subtotals allocated together to the currency's minor units
      (:func:`billbridge.domain.money.allocate`): ``total == round_money(exact_total)``. Each line
      keeps
      the bill's quantity when a unit price with ``unit_price_places`` decimals multiplies out to
      its amount, else becomes ``1 × amount``; a zero-quantity line with money becomes
      ``1 × amount`` too.
    * Strict mode: quantity and unit price as on the bill (band unit price when split per band),
      rounded to the allowed places, amount = their product rounded half-up; every rounding of a
      figure, every line that no longer matches its subtotal and a total that differs from the
      bill's is reported in ``warnings``. A line without a quantity or unit price, a zero-quantity
      line with money, and a merged line whose members have different unit prices are sent with
      derived figures instead, with a warning.
    * Service dates come from the line's service period, the end made inclusive
      (:func:`service_dates`); a merged line spans its members' periods.
    * Lines are then sorted per ``options.sort_by``.

    Raises ``DestinationValidationError`` when no line is left, when an amount is beyond
    :data:`billbridge.domain.money.MAX_AMOUNT`, or when ``unit_price_places`` is smaller than the
    currency's minor units (a ``1 × amount`` line could not be written).
    """
    currency = bill.currency.strip().upper()
    minor = minor_units(currency)
    if options.unit_price_places < minor:
        raise DestinationValidationError(
            f"unit prices limited to {options.unit_price_places} decimal places cannot carry "
            f"{currency} amounts ({minor} decimal places)"
        )
    warnings: list[str] = []
    # sorted() is stable, so lines with equal (or no) sequence numbers keep the bill's order.
    ordered = sorted(
        bill.line_items,
        key=lambda li: (li.sequence_number is None, li.sequence_number or 0),
    )
    drafts = _drafts(ordered, mappings, options, warnings)
    if not options.send_zero_quantity:
        drafts = [
            d
            for d in drafts
            if not (d.exact.is_zero() and (d.quantity is None or d.quantity.is_zero()))
        ]
    if not drafts:
        raise DestinationValidationError(
            f"the bill {bill.id} has no lines left to send after filtering (excluded line item "
            "types, products and aggregations, and zero-quantity lines)"
        )
    exact_total = sum((d.exact for d in drafts), _ZERO)
    # Allocated in bill order, before sorting, so the sort option never moves a cent.
    allocated = allocate([d.exact for d in drafts], currency)
    lines: list[InvoiceLine] = []
    for draft, amount in zip(drafts, allocated, strict=True):
        if options.strict:
            quantity, unit_price, amount = _strict(draft, options, minor, currency, warnings)
        else:
            quantity, unit_price = _derive(amount, draft.quantity, draft.unit_price, options, minor)
        lines.append(
            InvoiceLine(
                description=draft.description,
                quantity=quantity,
                unit_price=unit_price,
                amount=_checked(amount, f"the amount of {draft.label}"),
                item_id=draft.item_id,
                source=draft.source,
                band=draft.band,
                service_start=draft.service_start,
                service_end=draft.service_end,
                line_item_type=draft.line_item_type,
                fallback=draft.fallback,
            )
        )
    total = _checked(
        sum((line.amount for line in lines), _ZERO), f"the invoice total of bill {bill.id}"
    )
    expected = round_money(exact_total, currency)
    if options.strict and total != expected:
        warnings.append(
            f"strict line item mapping: the invoice lines add up to {total}, the bill's lines to "
            f"{expected} (exactly {exact_total}); difference {total - expected}"
        )
    return InvoicePlan(
        lines=tuple(_sorted(lines, options.sort_by)),
        currency=currency,
        total=total,
        exact_total=exact_total,
        is_credit=total < 0,
        warnings=tuple(warnings),
    )
