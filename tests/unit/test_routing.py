"""Routing decisions, one integration at a time: pure, no database."""

from __future__ import annotations

import pytest
from builders import account, bill, integration

from billbridge.domain.routing import route


def test_an_enabled_integration_takes_a_new_bill() -> None:
    assert route(bill(), account(), integration()).take


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"enabled": False}, "disabled"),
        ({"entity_type": "Invoice"}, "takes Invoice"),
        ({"config": {"restricted_account_ids": ("acc-1",)}}, "restricted"),
        ({"config": {"account_ids": ("acc-2",)}}, "not on the integration's account list"),
        ({"config": {"account_filter": "address.country == US"}}, "does not match the filter"),
    ],
)
def test_integrations_that_do_not_take_the_bill_say_why(
    changes: dict[str, object], reason: str
) -> None:
    decision = route(bill(), account(), integration(**changes))  # type: ignore[arg-type]
    assert not decision.take
    assert reason in (decision.reason or "")


def test_the_deny_list_wins_over_the_allow_list() -> None:
    both = integration(config={"account_ids": ("acc-1",), "restricted_account_ids": ("acc-1",)})
    assert "restricted" in (route(bill(), account(), both).reason or "")


def test_only_approved_bills_when_the_integration_asks() -> None:
    strict = integration(entity={"only_send_on_approval": True})
    assert route(bill(status="APPROVED"), account(), strict).take
    pending = route(bill(status="PENDING"), account(), strict)
    assert not pending.take and "PENDING" in (pending.reason or "")


def test_the_ledger_decides_between_versions() -> None:
    taken = integration()
    assert route(bill(version=3), account(), taken, delivered_version=2).take  # an update
    same = route(bill(version=2), account(), taken, delivered_version=2)
    assert not same.take and "already delivered" in (same.reason or "")
    older = route(bill(version=1), account(), taken, delivered_version=2)
    assert not older.take and "newer version (2)" in (older.reason or "")
    queued = route(bill(), account(), taken, queued_versions=frozenset({2}))
    assert not queued.take and "already queued" in (queued.reason or "")


def test_the_filter_sees_the_account_as_m3ter_sends_it() -> None:
    gold = integration(config={"account_filter": 'customFields.tier == "gold" AND code == ACME'})
    assert route(bill(), account(), gold).take


def test_the_same_version_twice_in_one_submission_is_queued_once() -> None:
    from billbridge.domain.routing import route_many

    taken = integration()
    routed = route_many(
        [(bill(), account()), (bill(), account()), (bill(version=3), account())],
        [taken, integration(id="int-2", enabled=False)],
        delivered={},
        queued={},
    )
    assert [(r.bill.version, r.integration.id, r.decision.take) for r in routed] == [
        (2, "int-1", True),
        (2, "int-2", False),
        (2, "int-1", False),
        (2, "int-2", False),
        (3, "int-1", True),
        (3, "int-2", False),
    ]
    assert "already queued" in (routed[2].decision.reason or "")
