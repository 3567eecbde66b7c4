"""Rules a bill or account must meet to be admitted, beyond its shape.

The converter reads the shape (types, required fields); these are the rules the published
schema (``schemas/bill.schema.json``, ``account.schema.json``) adds and what the store and the
destinations can hold: identifiers present and no longer than their columns, versions that fit
a database integer, a currency, amounts that are finite and of a sane size, no NUL character
(PostgreSQL cannot store one). Every problem is reported with its JSON path.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from billbridge.errors import FieldError

if TYPE_CHECKING:
    # The models call these checks when they read a document: types only, no import cycle.
    from billbridge.domain.models import Account, Band, Bill, LineItem

__all__ = [
    "MAX_ID_LENGTH",
    "MAX_MAGNITUDE",
    "MAX_VERSION",
    "account_problems",
    "bill_problems",
    "nul_paths",
]

#: The longest bill or account id the store keeps (its columns' length).
MAX_ID_LENGTH = 200
#: The largest bill version: what a 32-bit database integer holds.
MAX_VERSION = 2_147_483_647
#: Amounts, quantities and prices must be smaller than this (in absolute value): a quadrillion
#: is far beyond any real bill, and well inside what every destination's numbers hold.
MAX_MAGNITUDE = Decimal("1e15")
#: And no finer than this many decimal places (a sub-atomic fraction is a broken document).
MAX_PLACES = 40

_LINE_NUMBERS = (
    "quantity",
    "units",
    "average_unit_price",
    "subtotal",
    "converted_subtotal",
    "conversion_rate",
)
_BAND_NUMBERS = (
    "lower_limit",
    "band_quantity",
    "band_units",
    "unit_price",
    "unit_subtotal",
    "fixed_price",
    "band_subtotal",
    "converted_band_subtotal",
)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _number_problem(value: Decimal) -> str | None:
    if abs(value) >= MAX_MAGNITUDE:
        return f"{value} is too large (at most {MAX_MAGNITUDE:,.0f} in absolute value)"
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_PLACES:
        return f"{value} has more than {MAX_PLACES} decimal places"
    return None


def _numbers(item: LineItem | Band, names: Sequence[str], base: str) -> Iterator[FieldError]:
    for name in names:
        value = getattr(item, name, None)
        if isinstance(value, Decimal):
            problem = _number_problem(value)
            if problem is not None:
                yield FieldError(f"{base}/{_camel(name)}", problem)


def _identifier(value: str | None, path: str, *, required: bool = True) -> Iterator[FieldError]:
    if value is None or value == "":
        if required:
            yield FieldError(path, "must not be empty")
        return
    if len(value) > MAX_ID_LENGTH:
        yield FieldError(path, f"is {len(value)} characters long; at most {MAX_ID_LENGTH}")


def bill_problems(bill: Bill) -> list[FieldError]:
    """Everything wrong with a structurally valid bill (empty when it can be accepted)."""
    problems = [*_identifier(bill.id, "/id"), *_identifier(bill.account_id, "/accountId")]
    if not bill.currency:
        problems.append(FieldError("/currency", "must not be empty"))
    if not 0 <= bill.version <= MAX_VERSION:
        problems.append(FieldError("/version", f"must be between 0 and {MAX_VERSION}"))
    if bill.bill_total is not None and (problem := _number_problem(bill.bill_total)):
        problems.append(FieldError("/billTotal", problem))
    for index, line in enumerate(bill.line_items):
        base = f"/lineItems/{index}"
        problems += _numbers(line, _LINE_NUMBERS, base)
        for band_index, band in enumerate(line.bands or ()):
            problems += _numbers(band, _BAND_NUMBERS, f"{base}/{line.bands_key}/{band_index}")
    return problems


def account_problems(account: Account) -> list[FieldError]:
    """Everything wrong with a structurally valid account."""
    return list(_identifier(account.id, "/id"))


def nul_paths(value: Any, path: str = "", limit: int = 5) -> list[str]:
    """JSON paths of strings (keys included) holding a NUL character, at most ``limit``."""
    found: list[str] = []
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack and len(found) < limit:
        current, at = stack.pop()
        if isinstance(current, str):
            if "\x00" in current:
                found.append(at or "/")
        elif isinstance(current, Mapping):
            for key, child in current.items():
                where = f"{at}/{key}"
                if isinstance(key, str) and "\x00" in key:
                    found.append(where)
                stack.append((child, where))
        elif isinstance(current, list | tuple):
            stack.extend((child, f"{at}/{i}") for i, child in enumerate(current))
    return sorted(found)
