"""Contract tests for the JSON Schema files billbridge ships.

Covers the core's language-neutral contracts in ``schemas/`` and the configuration panel
schema of every bundled destination plugin: that each is a valid draft-07 schema, that the
panels satisfy the destination panel meta-schema (and that the meta-schema rejects what it
must), that m3ter's sample bills and accounts validate, and that each configuration schema
accepts and rejects what it should.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from support import ROOT

SCHEMAS = ROOT / "schemas"
SAMPLES = ROOT / "core" / "billbridge" / "demo_samples"

DRAFT7 = "http://json-schema.org/draft-07/schema#"
ID_BASE = "https://billbridge.dev/schemas/"

CORE_SCHEMAS = {
    "bill": SCHEMAS / "bill.schema.json",
    "account": SCHEMAS / "account.schema.json",
    "global-config": SCHEMAS / "global-config.schema.json",
    "bill-entity-config": SCHEMAS / "bill-entity-config.schema.json",
    "external-mapping": SCHEMAS / "external-mapping.schema.json",
    "credential": SCHEMAS / "credential.schema.json",
    "destination-panel.meta": SCHEMAS / "destination-panel.meta.schema.json",
}
PANEL_SCHEMAS = {
    "quickbooks": ROOT / "plugins" / "quickbooks" / "billbridge_quickbooks" / "schema.json",
    "xero": ROOT / "plugins" / "xero" / "billbridge_xero" / "schema.json",
}
ALL_SCHEMAS = {**CORE_SCHEMAS, **{f"panel:{k}": v for k, v in PANEL_SCHEMAS.items()}}
EXPECTED_IDS = {
    **{name: f"{ID_BASE}{path.name}" for name, path in CORE_SCHEMAS.items()},
    **{f"panel:{key}": f"{ID_BASE}destinations/{key}.schema.json" for key in PANEL_SCHEMAS},
}
# The core's own configuration panels are rendered like a destination's, so they obey the
# same meta-schema.
PANEL_LIKE = {
    "panel:quickbooks": PANEL_SCHEMAS["quickbooks"],
    "panel:xero": PANEL_SCHEMAS["xero"],
    "global-config": CORE_SCHEMAS["global-config"],
    "bill-entity-config": CORE_SCHEMAS["bill-entity-config"],
}

LINE_ITEM_TYPES = [
    "STANDING_CHARGE",
    "USAGE",
    "COUNTER_RUNNING_TOTAL_CHARGE",
    "COUNTER_ADJUSTMENT_DEBIT",
    "COUNTER_ADJUSTMENT_CREDIT",
    "USAGE_CREDIT",
    "MINIMUM_SPEND",
    "MINIMUM_SPEND_REFUND",
    "CREDIT_DEDUCTION",
    "MANUAL_ADJUSTMENT",
    "CREDIT_MEMO",
    "DEBIT_MEMO",
    "COMMITMENT_CONSUMED",
    "COMMITMENT_FEE",
    "OVERAGE_SURCHARGE",
    "OVERAGE_USAGE",
    "BALANCE_CONSUMED",
    "BALANCE_FEE",
    "AD_HOC",
]


@cache
def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def schema(name: str) -> dict[str, Any]:
    """A fresh copy of a schema by its short name (see ALL_SCHEMAS)."""
    return copy.deepcopy(_load(ALL_SCHEMAS[name]))


def validator(schema_: dict[str, Any]) -> Draft7Validator:
    return Draft7Validator(schema_, format_checker=Draft7Validator.FORMAT_CHECKER)


def errors(name: str, instance: Any) -> list[str]:
    """Error messages (with their JSON paths) from validating `instance` against `name`."""
    return [f"{e.json_path}: {e.message}" for e in validator(schema(name)).iter_errors(instance)]


def assert_valid(name: str, instance: Any) -> None:
    found = errors(name, instance)
    assert not found, f"expected {name} to accept the instance, got: {found}"


def assert_invalid(name: str, instance: Any) -> None:
    assert errors(name, instance), f"expected {name} to reject {instance!r}"


def samples(prefix: str) -> list[Path]:
    return sorted(SAMPLES.glob(f"{prefix}*.json")) if SAMPLES.is_dir() else []


# --------------------------------------------------------------------------- every file


@pytest.mark.parametrize("name", sorted(ALL_SCHEMAS))
def test_schema_is_valid_draft7(name: str) -> None:
    s = schema(name)
    Draft7Validator.check_schema(s)
    assert s["$schema"] == DRAFT7
    assert s["$id"] == EXPECTED_IDS[name]
    assert s["title"].strip()
    assert s["description"].strip()
    assert s["type"] == "object"


@pytest.mark.parametrize("name", sorted(ALL_SCHEMAS))
def test_schema_file_is_two_space_indented_json(name: str) -> None:
    text = ALL_SCHEMAS[name].read_text(encoding="utf-8")
    canonical = json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n"
    assert text == canonical, f"{ALL_SCHEMAS[name]} is not formatted with json.dumps(indent=2)"


def test_ids_are_unique() -> None:
    ids = [schema(name)["$id"] for name in ALL_SCHEMAS]
    assert len(ids) == len(set(ids))


# --------------------------------------------------------------------------- meta-schema


@pytest.mark.parametrize("name", sorted(PANEL_LIKE))
def test_panel_satisfies_meta_schema(name: str) -> None:
    assert_valid("destination-panel.meta", schema(name))


def _minimal_panel() -> dict[str, Any]:
    return {
        "$schema": DRAFT7,
        "$id": "https://example.com/schemas/destinations/acme.schema.json",
        "title": "Acme Ledger",
        "description": "How bills become Acme Ledger invoices.",
        "type": "object",
        "properties": {
            "mode": {
                "title": "Mode",
                "description": "Invoice mode.",
                "type": "string",
                "oneOf": [{"const": "A", "title": "Alpha"}, {"const": "B", "title": "Beta"}],
                "default": "A",
            },
            "apiKey": {
                "title": "API key",
                "description": "Secret key; never shown again.",
                "type": "string",
                "writeOnly": True,
            },
            "ledgers": {
                "title": "Ledgers",
                "description": "Ledgers to post to.",
                "type": "array",
                "maxItems": 3,
                "uniqueItems": True,
                "items": {
                    "type": "object",
                    "properties": {
                        "ledger": {
                            "title": "Ledger",
                            "type": "string",
                            "x-external-table": "Ledger",
                        },
                        "share": {"title": "Share", "type": "number", "minimum": 0},
                    },
                    "required": ["ledger"],
                    "additionalProperties": False,
                },
            },
            "flags": {
                "title": "Flags",
                "description": "Multi-select of labelled choices.",
                "type": "array",
                "items": {"type": "string", "oneOf": [{"const": "X", "title": "Ex"}]},
            },
            "contact": {
                "title": "Contact email",
                "description": "Where to send a copy.",
                "type": "string",
                "format": "email",
                "maxLength": 200,
                "pattern": "@",
                "examples": ["ap@example.com"],
            },
        },
        "required": ["mode"],
        "if": {"properties": {"mode": {"const": "B"}}},
        "then": {"required": ["apiKey"]},
        "additionalProperties": False,
    }


def test_meta_schema_accepts_minimal_panel() -> None:
    assert_valid("destination-panel.meta", _minimal_panel())


Mutation = Callable[[dict[str, Any]], None]


def _parent(panel: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    *parents, last = path.split("/")
    target = panel
    for key in parents:
        target = target[key]
    return target, last


def _set(path: str, value: Any) -> Mutation:
    def mutate(panel: dict[str, Any]) -> None:
        target, last = _parent(panel, path)
        target[last] = value

    return mutate


def _delete(path: str) -> Mutation:
    def mutate(panel: dict[str, Any]) -> None:
        target, last = _parent(panel, path)
        del target[last]

    return mutate


LEDGER = "properties/ledgers/items/properties/ledger"

# case -> (mutation of the minimal panel, JSON path the error must be reported at)
META_REJECTS: dict[str, tuple[Mutation, str]] = {
    "property without title": (_delete("properties/mode/title"), "$.properties.mode"),
    "property without description": (
        _delete("properties/mode/description"),
        "$.properties.mode",
    ),
    "property with empty description": (
        _set("properties/mode/description", ""),
        "$.properties.mode.description",
    ),
    "bare enum choice": (
        _set("properties/plain", {"title": "P", "description": "d", "enum": ["A"]}),
        "$.properties.plain.enum",
    ),
    "bare enum in array items": (
        _set("properties/flags/items", {"type": "string", "enum": ["X"]}),
        "$.properties.flags.items.enum",
    ),
    "bare enum in a oneOf alternative": (
        _set("properties/mode/oneOf", [{"title": "Any", "enum": ["A", "B"]}]),
        "$.properties.mode.oneOf[0].enum",
    ),
    "choice without title": (
        _set("properties/mode/oneOf", [{"const": "A"}, {"const": "B", "title": "Beta"}]),
        "$.properties.mode.oneOf[0]",
    ),
    "non-boolean writeOnly": (
        _set("properties/apiKey/writeOnly", "yes"),
        "$.properties.apiKey.writeOnly",
    ),
    "missing top-level additionalProperties": (_delete("additionalProperties"), "$"),
    "top-level additionalProperties true": (
        _set("additionalProperties", True),
        "$.additionalProperties",
    ),
    "top-level additionalProperties schema": (
        _set("additionalProperties", {"type": "string"}),
        "$.additionalProperties",
    ),
    "wrong $schema": (_set("$schema", "http://json-schema.org/draft-04/schema#"), "$['$schema']"),
    "missing $schema": (_delete("$schema"), "$"),
    "missing title": (_delete("title"), "$"),
    "missing description": (_delete("description"), "$"),
    "type not object": (_set("type", "array"), "$.type"),
    "missing properties": (_delete("properties"), "$"),
    "nested property without title": (
        _delete("properties/ledgers/items/properties/share/title"),
        "$.properties.ledgers.items.properties.share",
    ),
    "empty x-external-table": (
        _set(f"{LEDGER}/x-external-table", ""),
        "$.properties.ledgers.items.properties.ledger['x-external-table']",
    ),
    "non-string x-external-table": (
        _set(f"{LEDGER}/x-external-table", ["Ledger"]),
        "$.properties.ledgers.items.properties.ledger['x-external-table']",
    ),
    "non-string format": (_set("properties/contact/format", 5), "$.properties.contact.format"),
    "required not strings": (_set("required", [1]), "$.required[0]"),
    "invalid JSON Schema keyword value": (
        _set("properties/contact/maxLength", -1),
        "$.properties.contact.maxLength",
    ),
}


@pytest.mark.parametrize("case", sorted(META_REJECTS))
def test_meta_schema_rejects(case: str) -> None:
    mutate, path = META_REJECTS[case]
    panel = _minimal_panel()
    mutate(panel)
    found = errors("destination-panel.meta", panel)
    assert any(e.startswith(f"{path}: ") for e in found), f"no error at {path}: {found}"


META_ACCEPTS: dict[str, Mutation] = {
    "no required list": _delete("required"),
    "readOnly field": _set("properties/ro", {"title": "R", "description": "d", "readOnly": True}),
    "tuple items": _set(
        "properties/pair",
        {"title": "Pair", "description": "d", "type": "array", "items": [{"type": "string"}, True]},
    ),
    "labelled anyOf multi-choice": _set(
        "properties/flags/items", {"type": "string", "anyOf": [{"const": "X", "title": "Ex"}]}
    ),
    "nullable field with type array": _set(
        "properties/opt", {"title": "O", "description": "d", "type": ["string", "null"]}
    ),
    "dependencies and definitions": _set("dependencies", {"apiKey": ["mode"]}),
    "x- extension keywords": _set("properties/mode/x-ui-order", 1),
}


@pytest.mark.parametrize("case", sorted(META_ACCEPTS))
def test_meta_schema_accepts(case: str) -> None:
    panel = _minimal_panel()
    META_ACCEPTS[case](panel)
    assert_valid("destination-panel.meta", panel)


# --------------------------------------------------------------------------- bill / account


def test_samples_are_present() -> None:
    assert SAMPLES.is_dir(), f"sample directory {SAMPLES} is missing"
    assert samples("bill-"), f"no bill-*.json samples in {SAMPLES}"
    assert samples("account-"), f"no account-*.json samples in {SAMPLES}"


@pytest.mark.parametrize("path", samples("bill-"), ids=lambda p: p.name)
def test_sample_bill_validates(path: Path) -> None:
    assert_valid("bill", json.loads(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("path", samples("account-"), ids=lambda p: p.name)
def test_sample_account_validates(path: Path) -> None:
    assert_valid("account", json.loads(path.read_text(encoding="utf-8")))


def _bill() -> dict[str, Any]:
    return {
        "id": "b-1",
        "version": 2,
        "accountId": "a-1",
        "currency": "USD",
        "status": "PENDING",
        "billDate": "2026-10-01",
        "lineItems": [
            {
                "lineItemType": "USAGE",
                "quantity": 3,
                "subtotal": 1.5,
                "usagePerPricingBand": [{"pricingBandId": "b1", "bandQuantity": 3}],
            }
        ],
    }


def test_bill_with_band_usage_and_unknown_line_item_type_validates() -> None:
    bill = _bill()
    bill["lineItems"] = [
        {
            "lineItemType": "USAGE",
            "quantity": 150000,
            "subtotal": 600.0,
            "bandUsage": [
                {"pricingBandId": "band-1", "lowerLimit": 0, "bandQuantity": 100000},
                {"pricingBandId": "band-2", "lowerLimit": 100000, "bandQuantity": 50000},
            ],
        },
        {"lineItemType": "SOME_FUTURE_TYPE", "subtotal": 1.0, "brandNewField": {"x": 1}},
    ]
    bill["aFieldM3terAddedLater"] = [1, 2, 3]
    assert_valid("bill", bill)


def test_bill_accepts_nulls_for_optional_fields() -> None:
    bill = _bill()
    bill.update(dueDate=None, purchaseOrderNumber=None, currencyConversions=None, locked=None)
    bill["lineItems"][0].update(productId=None, usagePerPricingBand=None, segment=None)
    assert_valid("bill", bill)


def test_bill_accepts_unknown_status() -> None:
    bill = _bill()
    bill["status"] = "SOMETHING_NEW"
    assert_valid("bill", bill)


@pytest.mark.parametrize("required", ["id", "accountId", "currency", "lineItems"])
def test_bill_missing_required_field_fails(required: str) -> None:
    bill = _bill()
    del bill[required]
    assert_invalid("bill", bill)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("billDate", "01/10/2026"),
        ("lineItems", {"lineItemType": "USAGE"}),
        ("billTotal", "930.00"),
        ("currencyConversions", [{"to": "USD", "multiplier": 1.2}]),
    ],
)
def test_bill_rejects_malformed_field(field: str, value: Any) -> None:
    bill = _bill()
    bill[field] = value
    assert_invalid("bill", bill)


def test_bill_line_item_needs_a_type() -> None:
    bill = _bill()
    del bill["lineItems"][0]["lineItemType"]
    assert_invalid("bill", bill)


def test_bill_lists_known_line_item_types_without_restricting_them() -> None:
    line_type = schema("bill")["definitions"]["lineItem"]["properties"]["lineItemType"]
    assert line_type["examples"] == LINE_ITEM_TYPES
    assert "enum" not in line_type
    assert "oneOf" not in line_type


def test_account_requires_id_and_checks_email() -> None:
    assert_valid("account", {"id": "a-1", "customFields": {"n": 1, "flag": True, "x": None}})
    assert_invalid("account", {"name": "No id"})
    assert_invalid("account", {"id": "a-1", "emailAddress": "not an email"})


# --------------------------------------------------------------------------- panel defaults


def _properties_with_defaults() -> list[tuple[str, str]]:
    return [
        (name, prop)
        for name in sorted(PANEL_LIKE)
        for prop, prop_schema in schema(name)["properties"].items()
        if "default" in prop_schema
    ]


@pytest.mark.parametrize(("name", "prop"), _properties_with_defaults())
def test_default_validates_against_its_property(name: str, prop: str) -> None:
    prop_schema = schema(name)["properties"][prop]
    found = list(validator(prop_schema).iter_errors(prop_schema["default"]))
    assert not found, [e.message for e in found]


@pytest.mark.parametrize("name", ["panel:quickbooks", "panel:xero", "bill-entity-config"])
def test_empty_and_all_defaults_configs_validate(name: str) -> None:
    assert_valid(name, {})
    defaults = {k: v["default"] for k, v in schema(name)["properties"].items() if "default" in v}
    assert defaults
    assert_valid(name, defaults)


# --------------------------------------------------------------------------- QuickBooks panel


QBO_KEYS = [
    "splitUsageLineItems",
    "creditMemoItem",
    "debitMemoItem",
    "allowFallbackItems",
    "unmatchedOneTimeItem",
    "unmatchedRecurringItem",
    "sendZeroQuantityLines",
    "allowBankTransferPayment",
    "allowCreditCardPayment",
    "bccInvoiceEmail",
    "accountManagerEmailCustomField",
    "sortLineItemsBy",
    "strictLineItemMapping",
    "defaultTaxCode",
    "taxCodesByLineType",
    "taxCalculation",
    "taxRates",
    "salesTerm",
    "customerMemo",
    "invoiceNumberSource",
    "invoiceNumberPrefix",
    "invoiceNumberTooLong",
    "paymentMethodMapping",
]


def test_quickbooks_panel_keys_in_order() -> None:
    panel = schema("panel:quickbooks")
    assert list(panel["properties"]) == QBO_KEYS
    assert panel.get("required", []) == []
    tables = {k: v.get("x-external-table") for k, v in panel["properties"].items()}
    assert tables["creditMemoItem"] == tables["debitMemoItem"] == "Item"
    assert tables["unmatchedOneTimeItem"] == tables["unmatchedRecurringItem"] == "Item"
    assert panel["properties"]["allowFallbackItems"]["default"] is False
    assert tables["defaultTaxCode"] == "TaxCode"
    assert tables["salesTerm"] == "Term"
    mapping = panel["properties"]["paymentMethodMapping"]["items"]["properties"]
    assert mapping["paymentMethod"]["x-external-table"] == "PaymentMethod"


def test_quickbooks_panel_valid_config() -> None:
    assert_valid(
        "panel:quickbooks",
        {
            "splitUsageLineItems": "USAGE_BAND",
            "creditMemoItem": "21",
            "debitMemoItem": "22",
            "sendZeroQuantityLines": True,
            "allowBankTransferPayment": True,
            "allowCreditCardPayment": False,
            "bccInvoiceEmail": "books@example.com",
            "accountManagerEmailCustomField": "accountManagerEmail",
            "sortLineItemsBy": "AGGREGATION_ID",
            "strictLineItemMapping": True,
            "defaultTaxCode": "TAX",
            "salesTerm": "3",
            "customerMemo": "Thank you for your business.",
        },
    )


@pytest.mark.parametrize(
    "config",
    [
        {"accountManagerEmailCustomField": ""},
        {"bccInvoiceEmail": "not-an-email"},
        {"splitUsageLineItems": "PER_BAND"},
        {"sortLineItemsBy": "name"},
        {"customerMemo": "x" * 1001},
        {"sendZeroQuantityLines": "yes"},
        {"unknownOption": True},
    ],
    ids=repr,
)
def test_quickbooks_panel_rejects(config: dict[str, Any]) -> None:
    assert_invalid("panel:quickbooks", config)


# --------------------------------------------------------------------------- Xero panel


def test_xero_panel_keys_and_defaults() -> None:
    props = schema("panel:xero")["properties"]
    assert set(props) == {
        "splitUsageLineItems",
        "creditMemoItem",
        "debitMemoItem",
        "sendZeroQuantityLines",
        "sortLineItemsBy",
        "strictLineItemMapping",
        "accountManagerEmailCustomField",
        "invoiceStatus",
        "lineAmountTypes",
        "defaultAccountCode",
        "defaultTaxType",
        "taxTypesByLineType",
        "taxRates",
        "trackingCategories",
        "brandingThemeId",
        "invoiceNumberSource",
        "invoiceNumberPrefix",
        "invoiceNumberTooLong",
        "allowFallbackItems",
        "unmatchedOneTimeItem",
        "unmatchedRecurringItem",
        "referenceSource",
        "paymentMethodMapping",
    }
    assert props["invoiceStatus"]["default"] == "DRAFT"
    assert props["lineAmountTypes"]["default"] == "Exclusive"
    assert props["invoiceNumberSource"]["default"] == "SEQUENTIAL_INVOICE_NUMBER"
    assert props["referenceSource"]["default"] == "PURCHASE_ORDER_NUMBER"
    # Options shared with QuickBooks mean the same and accept the same values.
    qbo = schema("panel:quickbooks")["properties"]
    for key in ("splitUsageLineItems", "sortLineItemsBy", "accountManagerEmailCustomField"):
        shared = {k: v for k, v in props[key].items() if k != "description"}
        assert shared == {k: v for k, v in qbo[key].items() if k != "description"}
    # The number options take the same values; only the limit and the default differ, since
    # each destination keeps what it did before the option existed.
    consts = {c["const"] for c in props["invoiceNumberTooLong"]["oneOf"]}
    assert consts == {c["const"] for c in qbo["invoiceNumberTooLong"]["oneOf"]}
    assert (props["invoiceNumberTooLong"]["default"], qbo["invoiceNumberTooLong"]["default"]) == (
        "REFUSE",
        "DESTINATION",
    )
    assert (props["invoiceNumberPrefix"]["maxLength"], qbo["invoiceNumberPrefix"]["maxLength"]) == (
        254,
        20,
    )
    # Both map payment methods to the same reporting labels; Xero's are bank accounts.
    xero_map = props["paymentMethodMapping"]["items"]["properties"]
    qbo_map = qbo["paymentMethodMapping"]["items"]["properties"]
    assert xero_map["reportAs"] == qbo_map["reportAs"]
    assert xero_map["paymentAccount"]["x-external-table"] == "BankAccount"


def test_xero_panel_valid_config() -> None:
    assert_valid(
        "panel:xero",
        {
            "splitUsageLineItems": "PRODUCT",
            "creditMemoItem": "CREDIT",
            "sendZeroQuantityLines": False,
            "sortLineItemsBy": "SUBTOTAL",
            "strictLineItemMapping": False,
            "accountManagerEmailCustomField": "customFields.accountManager",
            "invoiceStatus": "AUTHORISED",
            "lineAmountTypes": "NoTax",
            "defaultAccountCode": "200",
            "defaultTaxType": "OUTPUT2",
            "trackingCategories": [
                {"name": "Region", "option": "Europe"},
                {"name": "Channel", "option": "Direct"},
            ],
            "brandingThemeId": "5d4c2d8e-6a1b-4c3d-9e8f-0a1b2c3d4e5f",
            "invoiceNumberSource": "XERO",
            "referenceSource": "NONE",
        },
    )


@pytest.mark.parametrize(
    "config",
    [
        {"invoiceStatus": "PAID"},
        {"lineAmountTypes": "exclusive"},
        {"defaultAccountCode": "12345678901"},
        {"brandingThemeId": "default"},
        {"trackingCategories": [{"name": "Region"}]},
        {"trackingCategories": [{"name": "Region", "option": "EU", "id": "x"}]},
        {"trackingCategories": [{"name": f"C{i}", "option": "o"} for i in range(3)]},
        {"trackingCategories": [{"name": "R", "option": "o"}, {"name": "R", "option": "o"}]},
        {"invoiceNumberSource": "CUSTOM"},
        {"referenceSource": "PO"},
        {"allowCreditCardPayment": True},
    ],
    ids=repr,
)
def test_xero_panel_rejects(config: dict[str, Any]) -> None:
    assert_invalid("panel:xero", config)


# --------------------------------------------------------------------------- global config


def _global_config() -> dict[str, Any]:
    return {
        "name": "Xero UK",
        "accountIds": [],
        "restrictedAccountIds": ["a-internal"],
        "usersToNotify": ["u-123", "ops@example.com"],
        "accountFilter": 'customFields != null AND customFields.country == "UK"',
        "autoDisableThreshold": 20,
        "deliverySchedule": "0 * * * *",
        "scheduleTimezone": "Europe/London",
        "statusCheckMinutes": 60,
    }


def test_global_config_valid_examples() -> None:
    assert_valid("global-config", _global_config())
    assert_valid("global-config", {"name": "Minimal"})


def test_global_config_filter_is_marked_and_examples_fit() -> None:
    prop = schema("global-config")["properties"]["accountFilter"]
    assert prop["x-filter-expression"] is True
    assert 'customFields != null AND customFields.country == "UK"' in prop["examples"]
    assert "address.country == US" in prop["examples"]
    for example in prop["examples"]:
        assert_valid("global-config", {"name": "n", "accountFilter": example})


@pytest.mark.parametrize(
    "change",
    [
        {"unknownKey": 1},
        {"name": ""},
        {"name": "x" * 201},
        {"autoDisableThreshold": 0},
        {"autoDisableThreshold": 1001},
        {"autoDisableThreshold": 2.5},
        {"accountIds": ["a-1", "a-1"]},
        {"accountIds": "a-1"},
        {"accountFilter": "x" * 4001},
        {"statusCheckMinutes": 30},
        {"statusCheckMinutes": "60"},
        {"deliverySchedule": "x" * 201},
        {"scheduleTimezone": ""},
    ],
    ids=repr,
)
def test_global_config_rejects(change: dict[str, Any]) -> None:
    assert_invalid("global-config", {**_global_config(), **change})


def test_global_config_requires_name() -> None:
    config = _global_config()
    del config["name"]
    assert_invalid("global-config", config)


# --------------------------------------------------------------------------- entity config


def test_entity_config_valid_example() -> None:
    assert_valid(
        "bill-entity-config",
        {
            "onlySendOnApproval": True,
            "useExternalMappingAccountCode": False,
            "excludedLineItemTypes": ["MINIMUM_SPEND", "COMMITMENT_CONSUMED"],
            "enforceExternalMappings": True,
            "excludedProducts": ["p-internal"],
            "excludedAggregations": ["agg-test"],
        },
    )


def test_entity_config_offers_every_known_line_item_type() -> None:
    props = schema("bill-entity-config")["properties"]
    choices = props["excludedLineItemTypes"]["items"]["oneOf"]
    assert [c["const"] for c in choices] == LINE_ITEM_TYPES
    assert all(c["title"].strip() for c in choices)
    assert props["excludedProducts"]["x-m3ter-entity"] == "Product"
    assert props["excludedAggregations"]["x-m3ter-entity"] == "Aggregation"


@pytest.mark.parametrize(
    "config",
    [
        {"unknownKey": True},
        {"onlySendOnApproval": "true"},
        {"excludedLineItemTypes": ["NOT_A_TYPE"]},
        {"excludedLineItemTypes": ["USAGE", "USAGE"]},
        {"excludedProducts": ["p-1", "p-1"]},
        {"excludedAggregations": [""]},
    ],
    ids=repr,
)
def test_entity_config_rejects(config: dict[str, Any]) -> None:
    assert_invalid("bill-entity-config", config)


# --------------------------------------------------------------------------- external mapping


def _mapping() -> dict[str, Any]:
    return {
        "m3terEntity": "Account",
        "m3terId": "28b1be8b-4450-5fda-a8c6-ec746d9252cb",
        "externalSystem": "quickbooks",
        "externalTable": "Customer",
        "externalId": "58",
    }


def test_external_mapping_examples() -> None:
    assert_valid("external-mapping", _mapping())
    assert_valid("external-mapping", {**_mapping(), "integrationConfigId": None})
    linked = {
        **_mapping(),
        "id": "m-1",
        "externalSystem": "xero",
        "externalTable": "Contact",
        "externalId": "9f1c4a9e-1b2c-4d3e-8f90-123456789abc",
        "integrationConfigId": "i-xero-uk",
        "createdAt": "2026-01-01T00:00:00Z",
    }
    assert_valid("external-mapping", linked)
    props = schema("external-mapping")["properties"]
    assert props["id"]["readOnly"] is True
    assert props["createdAt"]["readOnly"] is True


@pytest.mark.parametrize(
    "key", ["m3terEntity", "m3terId", "externalSystem", "externalTable", "externalId"]
)
def test_external_mapping_requires(key: str) -> None:
    mapping = _mapping()
    del mapping[key]
    assert_invalid("external-mapping", mapping)


@pytest.mark.parametrize(
    "change", [{"unknownKey": 1}, {"externalId": ""}, {"externalId": 58}], ids=repr
)
def test_external_mapping_rejects(change: dict[str, Any]) -> None:
    assert_invalid("external-mapping", {**_mapping(), **change})


# --------------------------------------------------------------------------- credential


def _credential() -> dict[str, Any]:
    return {
        "id": "c-1",
        "name": "Xero UK",
        "displayName": "Xero UK (Incomplete)",
        "destination": "xero",
        "entityType": "Bill",
        "status": "INCOMPLETE",
        "createdAt": "2026-01-01T10:00:00Z",
        "expiresAt": "2026-01-01T10:10:00Z",
        "tenantId": None,
        "tenantName": None,
        "scopes": [],
        "accessTokenExpiresAt": None,
    }


def test_credential_examples() -> None:
    assert_valid("credential", _credential())
    complete = {
        **_credential(),
        "displayName": "Xero UK",
        "status": "COMPLETE",
        "expiresAt": None,
        "tenantId": "0b2e5a36-5b1c-4c7e-9d1a-3c7e2f1a9b8d",
        "tenantName": "Demo Company (UK)",
        "scopes": ["offline_access", "accounting.invoices"],
        "accessTokenExpiresAt": "2026-01-01T10:30:00Z",
    }
    assert_valid("credential", complete)


def test_credential_read_only_fields() -> None:
    props = schema("credential")["properties"]
    writable = {k for k, v in props.items() if not v.get("readOnly", False)}
    assert writable == {"name", "destination", "entityType"}
    assert props["entityType"]["default"] == "Bill"
    assert [c["const"] for c in props["status"]["oneOf"]] == [
        "INCOMPLETE",
        "COMPLETE",
        "NEEDS_RECONNECT",
    ]


@pytest.mark.parametrize(
    "change",
    [
        {"accessToken": "eyJ..."},
        {"refreshToken": "r-1"},
        {"clientSecret": "s"},
        {"status": "EXPIRED"},
        {"name": ""},
    ],
    ids=repr,
)
def test_credential_rejects(change: dict[str, Any]) -> None:
    assert_invalid("credential", {**_credential(), **change})
