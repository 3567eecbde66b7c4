"""Domain objects for unit tests: small, valid, and changed only where a test says so."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs

from billbridge.domain.models import (
    Account,
    Bill,
    BillEntityConfig,
    GlobalConfig,
    Integration,
    Run,
    RunStatus,
    parse_account,
    parse_bill,
)
from billbridge.plugin.contract import Destination

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

DESTINATION = Destination(
    key="books",
    title="Books",
    schema={
        "type": "object",
        "properties": {
            "memo": {"type": "string", "title": "Memo", "default": "thanks"},
            "token": {"type": "string", "title": "Token", "writeOnly": True},
        },
    },
    external_tables=("Customer", "Item"),
    account_table="Customer",
    system_name="Books",
)


def bill(**changes: Any) -> Bill:
    """A two-line bill (usage and a standing charge) for account ``acc-1``."""
    made = parse_bill(
        {
            "id": "bill-1",
            "version": 2,
            "accountId": "acc-1",
            "currency": "GBP",
            "status": "APPROVED",
            "lineItems": [
                {
                    "lineItemType": "USAGE",
                    "description": "API calls",
                    "quantity": "1000",
                    "subtotal": "12.50",
                    "productId": "prod-api",
                    "aggregationId": "agg-calls",
                },
                {
                    "lineItemType": "STANDING_CHARGE",
                    "description": "Platform fee",
                    "subtotal": "100.00",
                    "productId": "prod-fee",
                    "accountingProductId": "acct-fee",
                },
            ],
        }
    )
    return attrs.evolve(made, **changes)


def account(**changes: Any) -> Account:
    """Account ``acc-1`` in the UK, with code ``ACME``."""
    made = parse_account(
        {
            "id": "acc-1",
            "code": "ACME",
            "name": "Acme Ltd",
            "address": {"country": "UK"},
            "customFields": {"tier": "gold"},
        }
    )
    return attrs.evolve(made, **changes)


def integration(
    *,
    config: dict[str, Any] | None = None,
    entity: dict[str, Any] | None = None,
    **changes: Any,
) -> Integration:
    """An enabled integration to :data:`DESTINATION`."""
    made = Integration(
        id="int-1",
        destination="books",
        config=GlobalConfig(name="Books UK", **(config or {})),
        entity_config=BillEntityConfig(**(entity or {})),
        destination_config={},
        created_at=T0,
        updated_at=T0,
    )
    return attrs.evolve(made, **changes)


def run(**changes: Any) -> Run:
    """A WAITING run of ``bill-1`` v2 through ``int-1``."""
    made = Run(
        id="run-1",
        integration_id="int-1",
        bill_id="bill-1",
        bill_version=2,
        status=RunStatus.WAITING,
        created_at=T0,
        updated_at=T0,
        account_id="acc-1",
    )
    return attrs.evolve(made, **changes)
