"""Checking an account filter expression before it is saved (``engine.check_filter``).

For filter editors: the syntax error at its line and column, as saving an integration would
report it, and, given an account, whether the account matches.
"""

from __future__ import annotations

import attrs

from billbridge.domain import filter_expr
from billbridge.domain.intake import AccountInput
from billbridge.domain.models import Account, parse_account
from billbridge.domain.routing import account_document
from billbridge.errors import FieldError, ValidationFailed

__all__ = ["FilterCheck", "check_filter"]


@attrs.frozen
class FilterCheck:
    """``errors`` is empty for a valid expression; ``matches`` is set when an account was given."""

    errors: tuple[FieldError, ...] = ()
    matches: bool | None = None

    @property
    def valid(self) -> bool:
        """True when the expression parses."""
        return not self.errors


def check_filter(expression: str, account: AccountInput | None = None) -> FilterCheck:
    """Parse ``expression`` and, when it is valid and ``account`` given, evaluate it.

    :raises ValidationFailed: the account is refused (paths under ``/account``).
    """
    parsed_account: Account | None = None
    if account is not None:
        try:
            parsed_account = account if isinstance(account, Account) else parse_account(account)
        except ValidationFailed as exc:
            raise ValidationFailed(
                [FieldError(f"/account{e.path}", e.message) for e in exc.errors],
                summary="account is not valid",
            ) from None
    try:
        filter_expr.parse(expression)
    except filter_expr.FilterSyntaxError as exc:
        hint = f" ({exc.hint})" if exc.hint else ""
        message = f"{exc.message} at line {exc.line}, column {exc.column}{hint}"
        return FilterCheck(errors=(FieldError("/expression", message),))
    if parsed_account is None:
        return FilterCheck()
    return FilterCheck(matches=filter_expr.matches(expression, account_document(parsed_account)))
