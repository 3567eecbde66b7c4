"""Every body the Xero plugin sends validates against Xero's own OpenAPI spec.

The spec (MIT, XeroAPI/Xero-OpenAPI, ``xero_accounting.yaml``) is read at test time from the
file named by ``BILLBRIDGE_XERO_OPENAPI`` (``.ci/run`` sets it); it is never copied into the
project. Without the variable these checks are skipped with a reason that says where to get it. Bodies are checked against
``components.schemas`` (``Invoices``, ``CreditNotes``) with a Draft 4 validator whose
``#/components/schemas/...`` references resolve through a ``referencing`` registry. The spec
does not forbid unknown properties, so a second check insists that every key the plugin writes
is a property the spec declares (a misspelt field would otherwise pass silently).

The bodies captured by the emulator during the plugin's end-to-end tests are checked with
:func:`assert_valid_body` too (see ``test_xero_plugin.py``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from billbridge_xero.translate import translate_bill
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from billbridge.domain.models import Account, Bill, dumps, parse_account, parse_bill
from billbridge.plugin.contract import ResolvedMappings
from support import SAMPLES

SPEC_ENV = "BILLBRIDGE_XERO_OPENAPI"
_configured = os.environ.get(SPEC_ENV, "").strip()
#: Xero's accounting spec, when configured.
SPEC_PATH = Path(_configured) if _configured else None
WITHOUT_SPEC = (
    f"{SPEC_ENV} is not set: point it at xero_accounting.yaml from "
    "https://github.com/XeroAPI/Xero-OpenAPI (MIT) to check every body sent to Xero against it"
)
pytestmark = pytest.mark.skipif(SPEC_PATH is None, reason=WITHOUT_SPEC)
SPEC_URI = "urn:xero:accounting"


@cache
def spec() -> dict[str, Any]:
    """Xero's accounting spec, loaded once (dates in examples stay as YAML made them)."""
    # libyaml's safe loader when present: the spec is nearly a megabyte of YAML.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    assert SPEC_PATH is not None, WITHOUT_SPEC
    loaded: dict[str, Any] = yaml.load(SPEC_PATH.read_text(encoding="utf-8"), Loader=loader)
    return loaded


@cache
def registry() -> Registry[Any]:
    resource: Resource[Any] = Resource.from_contents(spec(), default_specification=DRAFT4)
    found: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
    return found


@cache
def validator(schema_name: str) -> Draft4Validator:
    return Draft4Validator(
        {"$ref": f"{SPEC_URI}#/components/schemas/{schema_name}"}, registry=registry()
    )


def _resolve(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        schema = spec()["components"]["schemas"][name]
    return schema


def unknown_properties(instance: Any, schema: Mapping[str, Any], path: str = "") -> list[str]:
    """Paths of keys the spec does not declare, walking objects and arrays."""
    schema = _resolve(schema)
    found: list[str] = []
    if isinstance(instance, Mapping):
        properties = schema.get("properties", {})
        for key, value in instance.items():
            if key not in properties:
                found.append(f"{path}/{key}")
            else:
                found += unknown_properties(value, properties[key], f"{path}/{key}")
    elif isinstance(instance, list) and "items" in schema:
        for index, value in enumerate(instance):
            found += unknown_properties(value, schema["items"], f"{path}/{index}")
    return found


def assert_valid_body(body: Any) -> None:
    """Assert a write body (``{"Invoices": [...]}`` or ``{"CreditNotes": [...]}``) is valid.

    Checks nothing when the spec is not configured (the plugin's own tests still run).
    """
    if SPEC_PATH is None:
        return
    assert isinstance(body, Mapping) and len(body) == 1, body
    (key,) = body
    assert key in ("Invoices", "CreditNotes"), key
    # What goes over the wire: JSON text, read back with plain floats as any server would.
    plain = json.loads(dumps(body))
    errors = sorted(validator(key).iter_errors(plain), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    assert unknown_properties(plain, spec()["components"]["schemas"][key]) == []


# --- the validator is real -----------------------------------------------------------------------


def test_the_configured_spec_is_read() -> None:
    assert SPEC_PATH is not None and SPEC_PATH.is_file(), f"{SPEC_ENV}={SPEC_PATH}: no such file"
    schemas = spec()["components"]["schemas"]
    assert {"Invoices", "Invoice", "CreditNotes", "CreditNote", "LineItem"} <= set(schemas)


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"Invoices": [{"Type": "SALE"}]}, "is not one of"),
        ({"Invoices": [{"LineItems": "many"}]}, "is not of type 'array'"),
        ({"Invoices": [{"LineItems": [{"Quantity": "two"}]}]}, "is not of type 'number'"),
        ({"CreditNotes": [{"Type": "ACCREC"}]}, "is not one of"),
        ({"Invoices": [{"InvoiceNumber": "N" * 256}]}, "is too long"),
    ],
)
def test_the_validator_catches_bad_bodies(body: dict[str, Any], complaint: str) -> None:
    (key,) = body
    messages = [e.message for e in validator(key).iter_errors(body)]
    assert any(complaint in m for m in messages), messages


def test_the_strict_check_catches_misspelt_fields() -> None:
    body = {"Invoices": [{"Type": "ACCREC", "LineItems": [{"UnitPrice": 1, "Quantity": 1}]}]}
    assert unknown_properties(body, spec()["components"]["schemas"]["Invoices"]) == [
        "/Invoices/0/LineItems/0/UnitPrice"
    ]
    with pytest.raises(AssertionError):
        assert_valid_body(body)


# --- every translation the plugin can make ------------------------------------------------------

CONTACT = "3f2d9b1e-4c55-4bb5-9a6a-1c1f2e3d4a5b"
CONFIGS: list[dict[str, Any]] = [
    {},
    {"splitUsageLineItems": "USAGE_BAND", "sortLineItemsBy": "SUBTOTAL"},
    {"splitUsageLineItems": "PRODUCT", "sendZeroQuantityLines": True},
    {"splitUsageLineItems": "AGGREGATION", "sortLineItemsBy": "AGGREGATION_ID"},
    {"strictLineItemMapping": True, "invoiceStatus": "AUTHORISED"},
    {
        "invoiceStatus": "SUBMITTED",
        "lineAmountTypes": "Inclusive",
        "defaultTaxType": "OUTPUT2",
        "brandingThemeId": "5d4e3f2a-1b0c-4d9e-8f7a-6b5c4d3e2f1a",
        "trackingCategories": [
            {"name": "Region", "option": "UK"},
            {"name": "Department", "option": "Sales"},
        ],
    },
    {"lineAmountTypes": "NoTax", "invoiceNumberSource": "XERO", "referenceSource": "NONE"},
    {
        "invoiceNumberSource": "EXTERNAL_INVOICE_REFERENCE",
        "referenceSource": "BILL_REFERENCE",
        "creditMemoItem": "CREDIT",
        "debitMemoItem": "FEES",
        "accountManagerEmailCustomField": "accountManagerEmail",
    },
]


def _bills() -> Iterator[tuple[str, Bill, Account]]:
    for bill_file, account_file in (
        ("bill-acme-uk-2025-09.json", "account-acme-uk.json"),
        ("bill-globex-us-2026-09.json", "account-globex-us.json"),
    ):
        bill = parse_bill((SAMPLES / bill_file).read_text())
        account = parse_account((SAMPLES / account_file).read_text())
        yield bill_file, bill, account
    credit = parse_bill(
        {
            "id": "credit-bill",
            "accountId": "acct-credit",
            "currency": "EUR",
            "billDate": "2026-02-01",
            "sequentialInvoiceNumber": "CN-7",
            "lineItems": [
                {
                    "lineItemType": "CREDIT_MEMO",
                    "quantity": 1,
                    "averageUnitPrice": -250,
                    "subtotal": -250,
                    "productId": "p-api",
                },
                {
                    "lineItemType": "USAGE",
                    "quantity": 12345,
                    "averageUnitPrice": 0.0041,
                    "subtotal": 50.61,
                    "productId": "p-api",
                    "aggregationId": "agg-api",
                },
            ],
        }
    )
    yield "credit", credit, Account(id="acct-credit", name="Credit Co")
    jpy = parse_bill(
        {
            "id": "jpy-bill",
            "accountId": "acct-jpy",
            "currency": "JPY",
            "billDate": "2026-02-01",
            "lineItems": [
                {
                    "lineItemType": "USAGE",
                    "quantity": 3,
                    "averageUnitPrice": 333.3333,
                    "subtotal": 1000,
                    "productId": "p-platform",
                }
            ],
        }
    )
    yield "jpy", jpy, Account(id="acct-jpy", name="Tokyo KK")


BILLS = list(_bills())


@pytest.mark.parametrize("config", CONFIGS, ids=[str(i) for i in range(len(CONFIGS))])
@pytest.mark.parametrize(("name", "bill", "account"), BILLS, ids=[b[0] for b in BILLS])
def test_translations_validate_against_the_spec(
    name: str, bill: Bill, account: Account, config: dict[str, Any]
) -> None:
    mappings = ResolvedMappings(
        {
            ("Account", account.id, "Contact"): CONTACT,
            ("Product", "p-platform", "Item"): "PLATFORM",
            ("Product", "p-api", "Item"): "API-CALLS",
        }
    )
    document = translate_bill(bill, account, {"defaultAccountCode": "200", **config}, mappings)
    assert_valid_body({document.endpoint: [document.for_create()]})
    assert_valid_body(
        {document.endpoint: [document.for_update("0b8e3a4c-2d1f-4e5a-9b6c-7d8e9f0a1b2c")]}
    )
