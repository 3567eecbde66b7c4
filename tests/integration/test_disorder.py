"""Correctness under disorder: versions out of order, retries, replays, reused ids.

Against ``fakebooks`` over real HTTP (its invoices carry the bill version they were sent), in
batch and single-send mode, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest

from billbridge.errors import Conflict
from support import ACME, ACME_BILL, World, bill_version


def held(world: World) -> list[int]:
    """The bill versions the destination holds for the sample bill, one per document."""
    return sorted(i["version"] for i in world.provider.invoices_for(ACME_BILL["id"]))


def runs_by_version(world: World) -> dict[int, list[Any]]:
    found: dict[int, list[Any]] = {}
    for run in world.engine.runs.list(bill_id=ACME_BILL["id"], limit=None):
        found.setdefault(run.bill_version, []).append(run)
    return found


def test_an_older_version_retried_after_a_newer_one_never_overwrites_it(world: World) -> None:
    world.integration()
    world.map_account(ACME, "cust-acme")
    world.engine.submit_bill(bill_version(ACME_BILL, 1), ACME)
    world.provider.faults.script("error")  # v1's first send fails with a 5xx
    world.engine.deliver_pending()
    assert held(world) == []
    assert len(world.engine.submit_bill(bill_version(ACME_BILL, 2), ACME).runs) == 1
    for _ in range(6):  # long enough for every retry to come due
        world.engine.deliver_pending()
        world.clock.advance(3600)
    assert held(world) == [2]
    runs = runs_by_version(world)
    (newest,) = runs[2]
    assert newest.status.value == "COMPLETE"
    for older in runs[1]:
        # Superseded, or (in batch mode, where v2 waits for v1's unsettled batch) delivered
        # before v2 was: never after it.
        assert older.status.value in ("SUPERSEDED", "COMPLETE")
        if older.status.value == "SUPERSEDED":
            assert "version 2" in (older.error or "")
        else:
            assert older.updated_at <= newest.updated_at


def test_a_newer_version_submitted_first_keeps_the_older_one_out(world: World) -> None:
    world.integration()
    world.map_account(ACME, "cust-acme")
    world.engine.submit_bill(bill_version(ACME_BILL, 2), ACME)
    late = world.engine.submit_bill(bill_version(ACME_BILL, 1), ACME)
    assert late.runs == ()
    assert "newer version (2)" in late.skips[0].reason
    world.engine.deliver_pending()
    assert held(world) == [2]
    after = world.engine.submit_bill(bill_version(ACME_BILL, 1), ACME)
    assert after.runs == () and "newer version (2)" in after.skips[0].reason
    world.engine.deliver_pending()
    assert held(world) == [2]


def test_two_waiting_versions_make_one_document_of_the_newer(world: World) -> None:
    world.integration()
    world.map_account(ACME, "cust-acme")
    world.engine.submit_bill(bill_version(ACME_BILL, 1), ACME)
    world.engine.submit_bill(bill_version(ACME_BILL, 2), ACME)
    world.engine.deliver_pending()
    assert held(world) == [2]
    runs = runs_by_version(world)
    assert [r.status.value for r in runs[2]] == ["COMPLETE"]
    assert [r.status.value for r in runs[1]] in (["SUPERSEDED"], ["COMPLETE"])


def test_replaying_an_older_version_is_refused(world: World) -> None:
    world.integration()
    world.map_account(ACME, "cust-acme")
    (first,) = world.engine.submit_bill(bill_version(ACME_BILL, 1), ACME).runs
    world.engine.deliver_pending()
    world.engine.submit_bill(bill_version(ACME_BILL, 2), ACME)
    world.engine.deliver_pending()
    assert held(world) == [2]
    with pytest.raises(Conflict, match="version 2 was delivered"):
        world.engine.runs.replay(first.id)
    world.engine.deliver_pending()
    assert held(world) == [2]
