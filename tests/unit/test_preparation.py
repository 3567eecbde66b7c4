"""Preparing a delivery: exclusions, mapping resolution, defaults, the ledger's previous entry."""

from __future__ import annotations

import attrs
import pytest
from builders import DESTINATION, T0, account, bill, integration

from billbridge.domain.mappings import mapping_keys, require_account_mapping, resolve_mappings
from billbridge.domain.models import ExternalMapping, LedgerEntry
from billbridge.domain.preparation import apply_defaults, build_delivery, exclude_lines
from billbridge.errors import DestinationValidationError, MissingMapping
from billbridge.plugin.contract import ResolvedMappings
from billbridge.plugin.idempotency import idempotency_key


def mapping(entity: str, entity_id: str, external: str, **changes: object) -> ExternalMapping:
    made = ExternalMapping(
        id=f"m-{entity_id}-{external}",
        m3ter_entity=entity,
        m3ter_id=entity_id,
        external_system="books",
        external_table="Customer" if entity == "Account" else "Item",
        external_id=external,
        created_at=T0,
    )
    return attrs.evolve(made, **changes)


def plain(config: object) -> dict[str, object]:
    return dict(config)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("entity", "left"),
    [
        ({"excluded_line_item_types": ("USAGE",)}, ["Platform fee"]),
        # The accounting product decides where a line has one: prod-fee is not it.
        ({"excluded_products": ("prod-fee",)}, ["API calls", "Platform fee"]),
        ({"excluded_products": ("acct-fee",)}, ["API calls"]),
        ({"excluded_aggregations": ("agg-calls",)}, ["Platform fee"]),
        ({}, ["API calls", "Platform fee"]),
    ],
)
def test_excluded_lines_are_dropped(entity: dict[str, object], left: list[str]) -> None:
    kept = exclude_lines(bill(), integration(entity=entity).entity_config)
    assert [line.description for line in kept.line_items] == left


def test_mapping_keys_name_every_entity_a_delivery_may_look_up() -> None:
    assert mapping_keys(bill(), account()) == {
        ("Account", "acc-1"),
        ("Product", "prod-api"),
        ("Product", "prod-fee"),
        ("Product", "acct-fee"),
        ("Aggregation", "agg-calls"),
    }


def test_linked_mappings_win_and_enforcing_integrations_use_only_theirs() -> None:
    candidates = [
        mapping("Account", "acc-1", "C-global"),
        mapping("Account", "acc-1", "C-linked", integration_id="int-1"),
        mapping("Product", "prod-api", "I-global"),
        mapping("Product", "prod-api", "I-other", integration_id="int-2"),
        mapping("Product", "prod-fee", "I-elsewhere", external_system="xero"),
    ]
    resolved = resolve_mappings(integration(), DESTINATION, account(), candidates)
    assert resolved.get("Account", "acc-1", "Customer") == "C-linked"
    assert resolved.get("Product", "prod-api", "Item") == "I-global"
    assert resolved.get("Product", "prod-fee", "Item") is None  # another system's
    enforcing = integration(entity={"enforce_external_mappings": True})
    only_linked = resolve_mappings(enforcing, DESTINATION, account(), candidates)
    assert only_linked.get("Product", "prod-api", "Item") is None
    assert only_linked.get("Account", "acc-1", "Customer") == "C-linked"


def test_the_account_code_can_stand_for_the_account_mapping() -> None:
    by_code = integration(entity={"use_external_mapping_account_code": True})
    resolved = resolve_mappings(by_code, DESTINATION, account(), [])
    assert resolved.get("Account", "acc-1", "Customer") == "ACME"


def test_a_missing_account_mapping_names_the_account_and_the_table() -> None:
    with pytest.raises(MissingMapping) as missing:
        require_account_mapping(integration(), DESTINATION, account(), ResolvedMappings())
    assert "Acme Ltd" in str(missing.value) and "Customer" in str(missing.value)
    assert missing.value.entity == "Account"


def test_panel_defaults_fill_what_is_unset() -> None:
    assert apply_defaults({}, DESTINATION.schema) == {"memo": "thanks"}
    assert apply_defaults({"memo": "hi"}, DESTINATION.schema) == {"memo": "hi"}


def test_a_delivery_carries_everything_the_plugin_needs() -> None:
    previous = LedgerEntry("int-1", "bill-1", 1, external_id="inv-9", updated_at=T0)
    configured = integration(destination_config={"token": {"$sealed": "x"}})
    delivery = build_delivery(
        "run-1",
        configured,
        DESTINATION,
        bill(),
        account(),
        [mapping("Account", "acc-1", "C-1")],
        previous,
        unseal=lambda config: {**plain(config), "token": "plain"},
    )
    assert delivery.key == "run-1"
    assert delivery.config == {"token": "plain", "memo": "thanks"}
    assert delivery.mappings.get("Account", "acc-1", "Customer") == "C-1"
    assert delivery.previous == previous
    assert delivery.idempotency_key == idempotency_key("int-1", "bill-1", 2)
    assert len(delivery.idempotency_key) == 36


def test_a_ledger_entry_for_a_newer_version_is_not_handed_over_as_previous() -> None:
    newer = LedgerEntry("int-1", "bill-1", 5, external_id="inv-9", updated_at=T0)
    delivery = build_delivery(
        "run-1",
        integration(),
        DESTINATION,
        bill(),
        account(),
        [mapping("Account", "acc-1", "C-1")],
        newer,
        unseal=plain,
    )
    assert delivery.previous is None


def test_nothing_left_after_exclusions_is_refused() -> None:
    everything = integration(entity={"excluded_line_item_types": ("USAGE", "STANDING_CHARGE")})
    with pytest.raises(DestinationValidationError, match="no lines left"):
        build_delivery(
            "run-1",
            everything,
            DESTINATION,
            bill(),
            account(),
            [mapping("Account", "acc-1", "C-1")],
            None,
            unseal=plain,
        )
