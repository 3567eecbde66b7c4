"""Correctness under disorder: versions out of order, retries, replays, reused ids.

Against ``fakebooks`` over real HTTP (its invoices carry the bill version they were sent), in
batch and single-send mode, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from billbridge import Engine
from billbridge.errors import Conflict
from support import ACME, ACME_BILL, World, bill_version, statuses


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


# --- a bill version is immutable -----------------------------------------------------------------


def test_a_bill_version_with_other_content_is_refused_and_never_delivered(world: World) -> None:
    world.integration()
    world.map_account(ACME, "cust-acme")
    other_account = {**ACME, "id": "acct-other", "name": "Someone Else"}
    world.map_account(other_account, "cust-other")
    (run,) = world.engine.submit_bill(ACME_BILL, ACME).runs
    changed = {**ACME_BILL, "accountId": other_account["id"]}
    with pytest.raises(Conflict, match="accountId") as refused:
        world.engine.submit_bill(changed, other_account)
    assert "different content" in str(refused.value)
    fewer = {**ACME_BILL, "lineItems": ACME_BILL["lineItems"][:1]}
    with pytest.raises(Conflict, match="lineItems"):
        world.engine.submit_bill(fewer, ACME)
    # A fresh process (no bill cache) refuses it the same way.
    other = world.other_engine()
    try:
        with pytest.raises(Conflict, match="accountId"):
            other.submit_bill(changed, other_account)
    finally:
        other.close()
    world.engine.deliver_pending()
    (invoice,) = world.provider.invoices_for(ACME_BILL["id"])
    assert invoice["customer"] == "cust-acme"
    assert len(invoice["lines"]) == len(ACME_BILL["lineItems"])
    assert world.engine.runs.get(run.id).status.value == "COMPLETE"


# --- concurrent submissions -----------------------------------------------------------------------


@pytest.mark.parametrize("batch", [False], ids=["single"])
def test_concurrent_identical_submissions_queue_one_run(world: World) -> None:
    integration = world.integration()
    world.map_account(ACME, "cust-acme")
    engines = [world.other_engine() for _ in range(6)]
    barrier = threading.Barrier(len(engines))

    def submit(engine: Engine) -> int:
        barrier.wait()
        return len(engine.submit_bill(ACME_BILL, ACME).runs)

    try:
        with ThreadPoolExecutor(len(engines)) as pool:
            queued = list(pool.map(submit, engines))
        assert sum(queued) == 1
        assert len(world.engine.runs.list(integration_id=integration.id)) == 1
        # After an ERROR, six resubmissions at once queue one run again, not six.
        world.provider.refuse_customers.add("cust-acme")
        world.engine.deliver_pending()
        assert statuses(world) == ["ERROR"]
        with ThreadPoolExecutor(len(engines)) as pool:
            queued = list(pool.map(submit, engines))
        assert sum(queued) == 1
        assert statuses(world) == ["ERROR", "WAITING"]
    finally:
        for engine in engines:
            engine.close()
