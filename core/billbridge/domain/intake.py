"""Reading what a billing service hands in: a bill and its account, checked to belong together.

Bills and accounts arrive as m3ter JSON (text, bytes or parsed) or as domain objects; the
documents are kept exactly as received so that the store holds what m3ter sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import simplejson

from billbridge.domain.models import Account, Bill, dumps, parse_account, parse_bill
from billbridge.errors import FieldError, ValidationFailed

__all__ = [
    "AccountInput",
    "BillInput",
    "Received",
    "read_pair",
    "read_pair_at",
    "receive",
    "receive_at",
]

BillInput = Bill | Mapping[str, Any] | str | bytes
AccountInput = Account | Mapping[str, Any] | str | bytes


@attrs.frozen
class Received:
    """A bill and its account as read, with the documents to store exactly as received."""

    bill: Bill
    account: Account
    bill_document: str
    account_document: str


def _document_text(value: Any, parsed: Any) -> str:
    # Stored exactly as m3ter sent it: the text itself, or the parsed JSON written back (the
    # fast C encoder, exact Decimals); domain objects are written through the converter.
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, Mapping):
        return simplejson.dumps(value, use_decimal=True, ensure_ascii=False, default=str)
    return dumps(parsed)


def receive(bill: BillInput, account: AccountInput) -> Received:
    """Read a bill and its account, check they belong together, keep their documents."""
    parsed_bill, parsed_account = read_pair(bill, account)
    return Received(
        parsed_bill,
        parsed_account,
        _document_text(bill, parsed_bill),
        _document_text(account, parsed_account),
    )


def read_pair(bill: BillInput, account: AccountInput) -> tuple[Bill, Account]:
    """Parse a bill and its account (m3ter JSON or domain objects) and check they belong."""
    parsed_bill = bill if isinstance(bill, Bill) else parse_bill(bill)
    parsed_account = account if isinstance(account, Account) else parse_account(account)
    if parsed_bill.account_id != parsed_account.id:
        raise ValidationFailed(
            [
                FieldError(
                    "/account/id",
                    f"the bill is for account {parsed_bill.account_id}, "
                    f"but the account given is {parsed_account.id}",
                )
            ],
            summary="the account does not match the bill",
        )
    return parsed_bill, parsed_account


def receive_at(bill: BillInput, account: AccountInput, base_path: str) -> Received:
    """:func:`receive`, with refused input reported under ``{base_path}/bill`` and
    ``{base_path}/account`` (for callers that hand in both documents in one request)."""
    try:
        return receive(bill, account)
    except ValidationFailed as exc:
        raise _placed(exc, bill, base_path) from None


def read_pair_at(bill: BillInput, account: AccountInput, base_path: str) -> tuple[Bill, Account]:
    """:func:`read_pair`, with refused input placed as :func:`receive_at` places it."""
    try:
        return read_pair(bill, account)
    except ValidationFailed as exc:
        raise _placed(exc, bill, base_path) from None


def _placed(exc: ValidationFailed, bill: BillInput, base_path: str) -> ValidationFailed:
    # Parsing is cheap to repeat on this (rare) path: which document was refused decides where
    # its errors go. The mismatch of the two is already reported at /account/id.
    if any(e.path == "/account/id" for e in exc.errors) and len(exc.errors) == 1:
        where = ""
    else:
        try:
            bill if isinstance(bill, Bill) else parse_bill(bill)
        except ValidationFailed:
            where = "/bill"
        else:
            where = "/account"
    summary = str(exc).split(":", 1)[0]
    return ValidationFailed(
        [FieldError(f"{base_path}{where}{e.path}", e.message) for e in exc.errors], summary
    )
