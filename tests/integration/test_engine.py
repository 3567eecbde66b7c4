"""The configuration API on ``billbridge.Engine``, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from billbridge import Engine
from billbridge.errors import Conflict, NotFound, StaleVersion, ValidationFailed
from billbridge.settings import Settings


def paths(exc: pytest.ExceptionInfo[ValidationFailed]) -> dict[str, str]:
    return {e.path: e.message for e in exc.value.errors}


def test_a_new_database_is_migrated_on_first_use(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh' / 'bb.db'}"
    with Engine(url, settings=Settings(home=tmp_path)) as engine:
        assert engine.db.current_revision() == engine.db.head_revision()
        assert engine.integrations.list() == []


def test_destinations_and_schemas(engine: Engine) -> None:
    assert [d.key for d in engine.destinations()] == ["quickbooks", "quickbooks_sandbox", "xero"]
    schema = engine.schema("xero")
    assert schema["properties"]["invoiceStatus"]["default"] == "DRAFT"
    schema["title"] = "changed"  # a copy: the plugin's own schema is untouched
    assert engine.schema("xero")["title"] == "Xero"
    assert engine.schema("quickbooks") == engine.schema("quickbooks_sandbox")


def test_create_get_list_update_delete(engine: Engine) -> None:
    created = engine.integrations.create(
        name="Xero UK",
        destination="xero",
        config={"accountFilter": 'customFields.country == "UK"', "usersToNotify": ["ops@x.io"]},
        entity_config={"onlySendOnApproval": True, "excludedLineItemTypes": ["USAGE_CREDIT"]},
        destination_config={"invoiceStatus": "AUTHORISED", "defaultAccountCode": "200"},
    )
    assert created.version == 1
    assert created.name == "Xero UK"
    assert created.enabled and not created.connected
    assert created.config.users_to_notify == ("ops@x.io",)
    assert created.entity_config.only_send_on_approval
    assert created.entity_config.excluded_line_item_types == ("USAGE_CREDIT",)
    assert engine.integrations.get(created.id) == created
    assert engine.integrations.list(destination="xero") == [created]
    assert engine.integrations.list(destination="quickbooks") == []

    updated = engine.integrations.update(
        created.id, version=1, name="Xero GB", destination_config={"invoiceStatus": "DRAFT"}
    )
    assert updated.version == 2
    assert updated.name == "Xero GB"
    assert dict(updated.destination_config) == {"invoiceStatus": "DRAFT"}
    # Parts not given are kept.
    assert updated.config.account_filter == 'customFields.country == "UK"'
    assert updated.entity_config == created.entity_config

    engine.integrations.delete(created.id)
    with pytest.raises(NotFound):
        engine.integrations.get(created.id)


def test_update_with_a_stale_version_changes_nothing(engine: Engine) -> None:
    created = engine.integrations.create(name="QBO", destination="quickbooks")
    engine.integrations.update(created.id, version=1, name="first")
    with pytest.raises(StaleVersion, match="reload and retry"):
        engine.integrations.update(created.id, version=1, name="second")
    assert engine.integrations.get(created.id).name == "first"


def test_enable_and_disable(engine: Engine) -> None:
    created = engine.integrations.create(name="QBO", destination="quickbooks", enabled=False)
    assert not created.enabled
    assert engine.integrations.enable(created.id).enabled
    assert not engine.integrations.disable(created.id).enabled
    assert engine.integrations.list(enabled=False)[0].id == created.id


def test_every_problem_is_reported_with_its_path_and_nothing_is_saved(engine: Engine) -> None:
    with pytest.raises(ValidationFailed) as info:
        engine.integrations.create(
            name="  ",
            destination="quickbooks",
            config={"accountFilter": "address.country == (US", "autoDisableThreshold": 0},
            entity_config={"bogus": True},
            destination_config={"splitUsageLineItems": "PER_BAND", "bccInvoiceEmail": "nope"},
        )
    found = paths(info)
    assert found["/config/name"] == "must not be blank"
    assert "line 1, column 20" in found["/config/accountFilter"]
    assert "/config/autoDisableThreshold" in found
    assert found["/entityConfig/bogus"] == "is not a known setting"
    assert "USAGE_BAND" in found["/destinationConfig/splitUsageLineItems"]
    assert "email" in found["/destinationConfig/bccInvoiceEmail"]
    assert engine.integrations.list() == []


def test_the_plugins_semantic_check_runs(engine: Engine) -> None:
    with pytest.raises(ValidationFailed) as info:
        engine.integrations.create(
            name="QBO",
            destination="quickbooks",
            destination_config={"accountManagerEmailCustomField": "sam@billing.example"},
        )
    assert (
        "NAME of the account custom field"
        in paths(info)["/destinationConfig/accountManagerEmailCustomField"]
    )
    with pytest.raises(ValidationFailed) as info:
        engine.integrations.create(
            name="Xero",
            destination="xero",
            destination_config={
                "trackingCategories": [
                    {"name": "Region", "option": "EU"},
                    {"name": "region", "option": "US"},
                ]
            },
        )
    assert "/destinationConfig/trackingCategories/1/name" in paths(info)
    assert engine.integrations.list() == []


def test_unknown_destination_and_missing_fields(engine: Engine) -> None:
    with pytest.raises(ValidationFailed) as info:
        engine.integrations.create(name="x", destination="sage")
    assert (
        "installed destinations: quickbooks, quickbooks_sandbox, xero"
        in paths(info)["/destination"]
    )
    with pytest.raises(ValidationFailed) as info:
        engine.integrations.create(name="x", destination="xero", entity_type="Invoice")
    assert "/entityType" in paths(info)


def test_update_is_validated_too(engine: Engine) -> None:
    created = engine.integrations.create(name="QBO", destination="quickbooks")
    with pytest.raises(ValidationFailed):
        engine.integrations.update(created.id, version=1, config={"accountFilter": "a =="})
    assert engine.integrations.get(created.id).version == 1


# --- mappings ----------------------------------------------------------------------------------


def test_mappings_create_find_and_delete(engine: Engine) -> None:
    account = "28b1be8b-4450-5fda-a8c6-ec746d9252cb"
    contact = engine.mappings.create(
        entity="Account", entity_id=account, external_table="Contact", external_id="c-1"
    )
    assert contact.external_system == "xero"  # the only destination with a Contact table
    assert not contact.linked
    integration = engine.integrations.create(name="QBO", destination="quickbooks")
    customer = engine.mappings.create(
        entity="Account",
        entity_id=account,
        external_table="Customer",
        external_id=58,  # type: ignore[arg-type]  # numbers from a UI are accepted
        integration_id=integration.id,
    )
    assert customer.external_system == "quickbooks"
    assert customer.external_id == "58"
    assert customer.linked
    assert {m.id for m in engine.mappings.find("Account", account)} == {contact.id, customer.id}
    assert engine.mappings.find_external("quickbooks", "Customer", "58") == [customer]
    assert engine.mappings.list(linked=True) == [customer]
    assert engine.mappings.list(external_system="xero") == [contact]
    assert engine.mappings.get(contact.id) == contact
    engine.mappings.delete(contact.id)
    with pytest.raises(NotFound):
        engine.mappings.get(contact.id)


def test_a_duplicate_mapping_is_refused(engine: Engine) -> None:
    engine.mappings.create(
        entity="Account", entity_id="a", external_table="Contact", external_id="1"
    )
    with pytest.raises(Conflict, match="already exists"):
        engine.mappings.create(
            entity="Account", entity_id="a", external_table="Contact", external_id="2"
        )


def test_mapping_validation(engine: Engine) -> None:
    with pytest.raises(ValidationFailed) as info:
        engine.mappings.create(
            entity="Account", entity_id="a", external_table="Customer", external_id="1"
        )
    assert "quickbooks, quickbooks_sandbox" in paths(info)["/externalSystem"]
    with pytest.raises(ValidationFailed) as info:
        engine.mappings.create(
            entity="Account",
            entity_id="a",
            external_table="Contact",
            external_id="1",
            external_system="quickbooks",
        )
    assert "has no table 'Contact'" in paths(info)["/externalTable"]
    with pytest.raises(ValidationFailed) as info:
        engine.mappings.create(
            entity="Account",
            entity_id="a",
            external_table="Contact",
            external_id="1",
            integration_id="no-such-integration",
        )
    assert "/integrationConfigId" in paths(info)
    assert engine.mappings.list() == []


def test_bulk_create_is_all_or_nothing(engine: Engine) -> None:
    good: list[dict[str, Any]] = [
        {"m3terEntity": "Account", "m3terId": f"a{i}", "externalTable": "Contact", "externalId": i}
        for i in range(5)
    ]
    created = engine.mappings.create_many(good)
    assert len(created) == 5
    with pytest.raises(ValidationFailed) as info:
        engine.mappings.create_many(
            [
                {
                    "entity": "Product",
                    "entity_id": "p",
                    "external_table": "Item",
                    "external_id": "9",
                },
                {
                    "entity": "Product",
                    "entity_id": "q",
                    "external_table": "Nope",
                    "external_id": "9",
                },
            ]
        )
    assert "/1/externalSystem" in paths(info)
    with pytest.raises(Conflict):
        engine.mappings.create_many(
            [
                {
                    "entity": "Account",
                    "entity_id": "new",
                    "external_table": "Contact",
                    "external_id": "x",
                },
                {
                    "entity": "Account",
                    "entity_id": "a3",
                    "external_table": "Contact",
                    "external_id": "y",
                },
            ]
        )
    assert len(engine.mappings.list()) == 5
    assert engine.mappings.find("Account", "new") == []


def test_deleting_an_integration_removes_its_linked_mappings(engine: Engine) -> None:
    integration = engine.integrations.create(name="Xero", destination="xero")
    engine.mappings.create(
        entity="Account",
        entity_id="a",
        external_table="Contact",
        external_id="1",
        integration_id=integration.id,
    )
    engine.mappings.create(
        entity="Account", entity_id="a", external_table="Contact", external_id="1"
    )
    engine.integrations.delete(integration.id)
    assert [m.linked for m in engine.mappings.list()] == [False]


def test_the_bill_cache_keeps_bills_until_their_runs_end_within_its_bound() -> None:
    from billbridge.domain.models import parse_account, parse_bill
    from billbridge.engine import BillCache

    bill = parse_bill({"id": "b", "accountId": "a", "currency": "USD", "lineItems": []})
    pair = (bill, parse_account({"id": "a", "name": "A"}))
    cache = BillCache(2)
    cache.put_many(
        {("b1", 1): pair, ("b2", 1): pair, ("b0", 1): pair}, {("b1", 1): 2, ("b2", 1): 1}
    )
    assert set(cache.get_many([("b0", 1), ("b1", 1), ("b2", 1)])) == {("b1", 1), ("b2", 1)}
    cache.settle([("b1", 1)])
    assert cache.get_many([("b1", 1)])  # one of its two runs is still open
    cache.settle([("b1", 1), ("b2", 1), ("unknown", 1)])
    assert len(cache) == 0
    # Past its size the least recently used bill goes, whatever it still waits for.
    cache.put_many({("b1", 1): pair, ("b2", 1): pair}, {("b1", 1): 1, ("b2", 1): 1})
    cache.get_many([("b1", 1)])
    cache.put_many({("b3", 1): pair}, {("b3", 1): 1})
    assert set(cache.get_many([("b1", 1), ("b2", 1), ("b3", 1)])) == {("b1", 1), ("b3", 1)}
    cache.settle([("b2", 1)])  # ended elsewhere after it left: nothing to do
    assert len(cache) == 2
    assert len(BillCache(0)) == 0
