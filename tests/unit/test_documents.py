"""Document-level rules shared by the destinations: due dates, invoice numbers and prefixes."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from billbridge.domain.documents import (
    NumberRule,
    NumberSource,
    WhenTooLong,
    document_number,
    number_rule,
)
from billbridge.domain.models import Bill, parse_bill
from billbridge.errors import DestinationValidationError


def bill(**fields: Any) -> Bill:
    data: dict[str, Any] = {
        "id": "bill-1",
        "version": 3,
        "accountId": "acc-1",
        "currency": "USD",
        "sequentialInvoiceNumber": "INV-000123",
        "externalInvoiceReference": "EXT-77",
        "lineItems": [],
        **fields,
    }
    return parse_bill(data)


def rule(**changes: Any) -> NumberRule:
    made = NumberRule(
        source=NumberSource.SEQUENTIAL_INVOICE_NUMBER,
        limit=21,
        system="QuickBooks",
    )
    return attrs.evolve(made, **changes)


def test_the_number_comes_from_the_chosen_source_with_the_prefix() -> None:
    warnings: list[str] = []
    assert document_number(bill(), rule(), warnings) == "INV-000123"
    assert document_number(bill(), rule(prefix="US-"), warnings) == "US-INV-000123"
    external = rule(source=NumberSource.EXTERNAL_INVOICE_REFERENCE, prefix="X")
    assert document_number(bill(), external, warnings) == "XEXT-77"
    # Spaces around the bill's number are not part of it.
    assert document_number(bill(sequentialInvoiceNumber=" 42 "), rule(), warnings) == "42"
    assert warnings == []


def test_the_destination_numbers_the_document_when_asked_or_when_the_bill_has_none() -> None:
    warnings: list[str] = []
    assert document_number(bill(), rule(source=NumberSource.DESTINATION, prefix="US-"), []) is None
    assert document_number(bill(sequentialInvoiceNumber=None), rule(prefix="US-"), warnings) is None
    assert warnings == [
        "the bill has no sequentialInvoiceNumber; QuickBooks numbers the document itself (a "
        "retried create cannot then be recognised by its number)"
    ]


def test_a_number_too_long_is_refused_when_the_panel_says_so() -> None:
    with pytest.raises(DestinationValidationError) as caught:
        document_number(bill(), rule(prefix="ACME-UNITED-"), [])
    assert str(caught.value) == (
        "the invoice number 'ACME-UNITED-INV-000123' (prefix 'ACME-UNITED-' and the bill's "
        "sequentialInvoiceNumber 'INV-000123') has 22 characters; QuickBooks takes at most 21: "
        "shorten the invoice number prefix (invoiceNumberPrefix), or let QuickBooks number such "
        "bills (invoiceNumberTooLong), then replay the run"
    )
    # Exactly at the limit is fine.
    assert document_number(bill(), rule(prefix="ACME-UNITED"), []) == "ACME-UNITEDINV-000123"


def test_a_number_too_long_is_left_to_the_destination_when_the_panel_says_so() -> None:
    warnings: list[str] = []
    leave = rule(prefix="ACME-UNITED-", when_too_long=WhenTooLong.DESTINATION)
    assert document_number(bill(), leave, warnings) is None
    assert warnings == [
        "the invoice number 'ACME-UNITED-INV-000123' is longer than QuickBooks allows (21 "
        "characters); QuickBooks numbers the document itself"
    ]


def test_a_number_is_never_cut() -> None:
    long_number = "N" * 30
    for when in WhenTooLong:
        try:
            got = document_number(
                bill(sequentialInvoiceNumber=long_number), rule(when_too_long=when), []
            )
        except DestinationValidationError:
            continue
        assert got is None


def test_the_rule_from_a_panel() -> None:
    config = {
        "invoiceNumberSource": "EXTERNAL_INVOICE_REFERENCE",
        "invoiceNumberPrefix": "UK-",
        "invoiceNumberTooLong": "REFUSE",
    }
    made = number_rule(
        config,
        limit=255,
        system="Xero",
        destination_numbers="XERO",
        default_when_too_long=WhenTooLong.DESTINATION,
    )
    assert made == NumberRule(
        source=NumberSource.EXTERNAL_INVOICE_REFERENCE,
        prefix="UK-",
        when_too_long=WhenTooLong.REFUSE,
        limit=255,
        system="Xero",
    )
    defaults = number_rule(
        {"invoiceNumberSource": "XERO"},
        limit=255,
        system="Xero",
        destination_numbers="XERO",
        default_when_too_long=WhenTooLong.DESTINATION,
    )
    assert defaults.source is NumberSource.DESTINATION
    assert (defaults.prefix, defaults.when_too_long) == ("", WhenTooLong.DESTINATION)
    with pytest.raises(DestinationValidationError, match="invoiceNumberTooLong must be one of"):
        number_rule(
            {"invoiceNumberTooLong": "TRUNCATE"},
            limit=21,
            system="QuickBooks",
            destination_numbers="QUICKBOOKS",
            default_when_too_long=WhenTooLong.DESTINATION,
        )
