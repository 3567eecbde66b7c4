"""Domain models and the cattrs converter: m3ter JSON in, the same JSON out."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billbridge.domain import models
from billbridge.domain.models import (
    Account,
    Bill,
    BillEntityConfig,
    GlobalConfig,
    LineItemType,
    RunStatus,
    Secret,
    converter,
    dumps,
    loads,
    parse_account,
    parse_bill,
)
from billbridge.errors import ValidationFailed
from support import SAMPLES


def sample_files(prefix: str) -> list[Path]:
    files = sorted(SAMPLES.glob(f"{prefix}-*.json"))
    assert files, f"no {prefix} samples found in {SAMPLES}"
    return files


@pytest.mark.parametrize("path", sample_files("bill"), ids=lambda p: p.name)
def test_every_sample_bill_round_trips_exactly(path: Path) -> None:
    original = loads(path.read_text())
    bill = parse_bill(path.read_text())
    assert isinstance(bill, Bill)
    assert loads(dumps(bill)) == original
    # Key order of the original is not promised, but every key and value is.
    assert set(loads(dumps(bill))) == set(original)


@pytest.mark.parametrize("path", sample_files("account"), ids=lambda p: p.name)
def test_every_sample_account_round_trips_exactly(path: Path) -> None:
    original = loads(path.read_text())
    account = parse_account(original)
    assert isinstance(account, Account)
    assert loads(dumps(account)) == original


def test_money_is_decimal_and_dates_are_dates() -> None:
    bill = parse_bill((SAMPLES / "bill-acme-uk-2025-09.json").read_text())
    assert bill.bill_total == Decimal("1270.0")
    assert isinstance(bill.bill_total, Decimal)
    assert bill.bill_date == date(2025, 10, 1)
    assert bill.invoice_date == date(2025, 10, 1)
    usage = bill.line_items[1]
    assert usage.average_unit_price == Decimal("0.004")
    assert usage.bands is not None
    assert usage.bands[1].unit_price == Decimal("0.002")
    assert usage.service_period_start_date == datetime(2025, 9, 1, tzinfo=UTC)
    assert bill.lines_total() == Decimal("1270.0")
    assert bill.is_approved


def test_credit_lines_keep_their_sign() -> None:
    bill = parse_bill((SAMPLES / "bill-acme-uk-2025-09.json").read_text())
    credit = next(li for li in bill.line_items if li.line_item_type == "CREDIT_MEMO")
    assert credit.subtotal == Decimal("-50.0")
    assert credit.known_type is LineItemType.CREDIT_MEMO


def test_unknown_fields_and_line_item_types_are_kept() -> None:
    data = {
        "id": "b1",
        "accountId": "a1",
        "currency": "USD",
        "billDate": "2026-01-01",
        "someNewField": {"nested": [1, 2]},
        "lineItems": [
            {
                "lineItemType": "FUTURE_CHARGE",
                "subtotal": 1.5,
                "mysteryFlag": True,
                "bandUsage": [{"pricingBandId": "b", "unitPrice": 0.1, "newBandField": "x"}],
            }
        ],
    }
    bill = parse_bill(data)
    line = bill.line_items[0]
    assert line.line_item_type == "FUTURE_CHARGE"
    assert line.known_type is None
    assert line.bands_key == "bandUsage"
    assert line.bands is not None and line.bands[0].extra["newBandField"] == "x"
    out = converter.unstructure(bill)
    assert out["someNewField"] == {"nested": [1, 2]}
    assert out["lineItems"][0]["mysteryFlag"] is True
    assert "bandUsage" in out["lineItems"][0]
    assert "usagePerPricingBand" not in out["lineItems"][0]
    assert out["lineItems"][0]["subtotal"] == Decimal("1.5")


def test_floats_from_the_standard_library_parser_become_the_decimal_they_said() -> None:
    bill = parse_bill(
        json.loads('{"id":"b","accountId":"a","currency":"USD","billTotal":0.1,"lineItems":[]}')
    )
    assert bill.bill_total == Decimal("0.1")


def test_exact_decimals_survive_dumps() -> None:
    text = (
        '{"id":"b","accountId":"a","currency":"USD","lineItems":[],'
        '"billTotal":0.1000000000000000055511151231}'
    )
    bill = parse_bill(text)
    assert bill.bill_total == Decimal("0.1000000000000000055511151231")
    assert '"billTotal": 0.1000000000000000055511151231' in dumps(bill)


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"accountId": "a", "currency": "USD"}, "/id"),
        ({"id": "b", "accountId": "a", "currency": "USD", "billTotal": "ten"}, "/billTotal"),
        ({"id": "b", "accountId": "a", "currency": "USD", "billDate": "yesterday"}, "/billDate"),
        (
            {"id": "b", "accountId": "a", "currency": "USD", "lineItems": [{"quantity": 1}]},
            "/lineItems/0/lineItemType",
        ),
        (
            {
                "id": "b",
                "accountId": "a",
                "currency": "USD",
                "lineItems": [{"lineItemType": "USAGE", "quantity": "abc"}],
            },
            "/lineItems/0/quantity",
        ),
    ],
)
def test_bad_bills_are_refused_with_a_path(document: dict[str, Any], path: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_bill(document)
    assert path in [e.path for e in info.value.errors]


def test_malformed_json_is_a_clear_error() -> None:
    with pytest.raises(ValidationFailed, match=r"not valid JSON.*line 1 column 2"):
        parse_bill("{oops")


def test_secret_never_shows_itself() -> None:
    secret = Secret("tok-abc-123")
    assert "tok-abc-123" not in repr(secret)
    assert "tok-abc-123" not in str(secret)
    assert "tok-abc-123" not in f"{secret}"
    assert secret.reveal() == "tok-abc-123"
    with pytest.raises(TypeError, match="Secret"):
        dumps({"token": secret})


def test_config_classes_use_camel_case() -> None:
    config = converter.structure(
        {"name": "Xero UK", "accountIds": ["a"], "autoDisableThreshold": 5}, GlobalConfig
    )
    assert config == GlobalConfig(name="Xero UK", account_ids=("a",), auto_disable_threshold=5)
    entity = converter.structure({"onlySendOnApproval": True}, BillEntityConfig)
    assert converter.unstructure(entity)["onlySendOnApproval"] is True


def test_run_status_finality() -> None:
    assert RunStatus.COMPLETE.is_final
    assert not RunStatus.AWAITING_RETRY.is_final
    assert not RunStatus.WAITING.is_final


def test_models_are_frozen() -> None:
    bill = parse_bill({"id": "b", "accountId": "a", "currency": "USD", "lineItems": []})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        bill.id = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        bill.extra["x"] = 1  # type: ignore[index]


# --- property-based: any m3ter-shaped bill round-trips ------------------------------------------

money = st.decimals(
    min_value=Decimal("-1e9"), max_value=Decimal("1e9"), places=6, allow_nan=False
).map(lambda d: d.normalize() if d == d.to_integral() else d)
# No NUL: documents with one are refused (see test_documents_the_store_cannot_hold_are_refused).
text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"),
    max_size=20,
)
ids = st.uuids().map(str)
timestamps = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=(d.microsecond // 1000) * 1000))
json_leaf = st.none() | st.booleans() | st.integers(-(10**6), 10**6) | text
json_values = st.recursive(
    json_leaf,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=6,
)
unknown_fields = st.dictionaries(
    st.text(alphabet="xyzXYZ", min_size=3, max_size=8).map(lambda s: "zz" + s),
    json_values,
    max_size=3,
)


def _m3ter_timestamp(value: datetime) -> str:
    spec = "milliseconds" if value.microsecond else "seconds"
    return value.isoformat(timespec=spec).replace("+00:00", "Z")


@st.composite
def bands(draw: st.DrawFn) -> dict[str, Any]:
    band = {
        "pricingBandId": draw(ids),
        "lowerLimit": draw(money),
        "bandQuantity": draw(money),
        "unitPrice": draw(money),
        "bandSubtotal": draw(money),
    }
    band.update(draw(unknown_fields))
    return band


@st.composite
def line_items(draw: st.DrawFn) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": draw(ids),
        "lineItemType": draw(st.sampled_from([*LineItemType, "SOMETHING_NEW"])).__str__(),
        "sequenceNumber": draw(st.integers(0, 500)),
        "description": draw(text),
        "quantity": draw(money),
        "subtotal": draw(money),
        # m3ter writes UTC timestamps with a Z and milliseconds only when there are any.
        "servicePeriodStartDate": _m3ter_timestamp(draw(timestamps)),
    }
    if draw(st.booleans()):
        key = draw(st.sampled_from(["usagePerPricingBand", "bandUsage"]))
        item[key] = draw(st.lists(bands(), max_size=3))
    if draw(st.booleans()):
        item["segment"] = draw(st.dictionaries(text, text, max_size=2))
    item.update(draw(unknown_fields))
    return item


@st.composite
def bills(draw: st.DrawFn) -> dict[str, Any]:
    bill: dict[str, Any] = {
        "id": draw(ids),
        "version": draw(st.integers(1, 1000)),
        "accountId": draw(ids),
        "currency": draw(st.sampled_from(["USD", "GBP", "JPY", "EUR"])),
        "billDate": draw(st.dates()).isoformat(),
        "billTotal": draw(money),
        "status": draw(st.sampled_from(["PENDING", "APPROVED"])),
        "lineItems": draw(st.lists(line_items(), max_size=4)),
    }
    if draw(st.booleans()):
        bill["sequentialInvoiceNumber"] = draw(text)
    bill.update(draw(unknown_fields))
    return bill


@settings(max_examples=150, deadline=None)
@given(bills())
def test_generated_bills_round_trip_losslessly(document: dict[str, Any]) -> None:
    text_in = dumps(document)
    bill = parse_bill(text_in)
    assert loads(dumps(bill)) == loads(text_in)


@settings(max_examples=150, deadline=None)
@given(bills())
def test_generated_bills_read_the_same_through_the_fast_path_and_cattrs(
    document: dict[str, Any],
) -> None:
    text_in = dumps(document)
    fast = parse_bill(text_in)
    models._FAST_PATH = False
    try:
        slow = parse_bill(text_in)
    finally:
        models._FAST_PATH = True
    assert fast == slow  # attrs equality: every field, bands and unknown fields included


VALID = {"id": "b1", "version": 1, "accountId": "a1", "currency": "GBP", "lineItems": []}
USAGE = {"lineItemType": "USAGE", "subtotal": "10"}


@pytest.mark.parametrize(
    ("document", "path", "message"),
    [
        ({**VALID, "id": ""}, "/id", "must not be empty"),
        ({**VALID, "accountId": ""}, "/accountId", "must not be empty"),
        ({**VALID, "currency": ""}, "/currency", "must not be empty"),
        ({**VALID, "version": -1}, "/version", "must be between 0 and 2147483647"),
        ({**VALID, "version": 2**31}, "/version", "must be between 0 and 2147483647"),
        ({**VALID, "lineItems": None}, "/lineItems", "must be an array of line items (null)"),
        ({k: v for k, v in VALID.items() if k != "lineItems"}, "/lineItems", "(missing)"),
        ({**VALID, "id": "x" * 201}, "/id", "is 201 characters long; at most 200"),
        ({**VALID, "id": "b\x001"}, "/id", "contains a NUL character"),
        ({**VALID, "zzNote": {"deep": ["ok", "n\x00l"]}}, "/zzNote/deep/1", "NUL"),
        ({**VALID, "lineItems": [{**USAGE, "subtotal": "NaN"}]}, "/lineItems/0/subtotal",
         "not a finite number"),
        ({**VALID, "lineItems": [{**USAGE, "subtotal": "Infinity"}]}, "/lineItems/0/subtotal",
         "not a finite number"),
        ({**VALID, "lineItems": [{**USAGE, "subtotal": "1e400"}]}, "/lineItems/0/subtotal",
         "too large"),
        ({**VALID, "lineItems": [{**USAGE, "quantity": "-1e16"}]}, "/lineItems/0/quantity",
         "too large"),
        ({**VALID, "lineItems": [{**USAGE, "usagePerPricingBand": [{"unitPrice": "1e-50"}]}]},
         "/lineItems/0/usagePerPricingBand/0/unitPrice", "decimal places"),
        ({**VALID, "billTotal": "2e15"}, "/billTotal", "too large"),
    ],
)  # fmt: skip
def test_documents_the_store_cannot_hold_are_refused(
    document: dict[str, Any], path: str, message: str
) -> None:
    for form in (document, dumps(document), dumps(document).encode()):
        with pytest.raises(ValidationFailed) as refused:
            parse_bill(form)
        errors = refused.value.to_list()
        assert any(e["path"] == path and message in e["message"] for e in errors), errors


def test_text_that_is_not_utf8_or_too_deep_is_refused_with_a_reason() -> None:
    with pytest.raises(ValidationFailed, match="not valid UTF-8 text: byte 8"):
        parse_bill(b'{"id":"b\xff1","version":1,"accountId":"a1","currency":"GBP","lineItems":[]}')
    deep = '{"id":"b1","accountId":"a1","currency":"GBP","lineItems":[],"x":' + "[" * 50_000
    with pytest.raises(ValidationFailed, match="nested too deeply"):
        parse_bill(deep + "]" * 50_000 + "}")
    with pytest.raises(ValidationFailed, match="/id: must not be empty"):
        parse_account({"id": ""})
