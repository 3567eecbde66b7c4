"""Correctness under disorder: versions out of order, retries, replays, reused ids.

Against ``fakebooks`` over real HTTP (its invoices carry the bill version they were sent), in
batch and single-send mode, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy.exc import DataError

import fakebooks_plugin as fake
from billbridge import Engine, hookimpl
from billbridge.errors import Conflict, DestinationValidationError, TransientError
from billbridge.plugin.contract import SendResult
from billbridge.store.repositories import LedgerRepository
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


# --- one bad bill never blocks good ones ---------------------------------------------------------


def numbered(n: int) -> tuple[dict[str, Any], dict[str, Any]]:
    account = {**ACME, "id": f"acct-{n}"}
    return {**ACME_BILL, "id": f"bill-{n}", "accountId": account["id"]}, account


@pytest.mark.parametrize("batch", [True], ids=["batch"])
def test_a_batch_refused_for_one_member_is_split_and_the_others_go(world: World) -> None:
    world.integration()
    for n in range(6):
        bill, account = numbered(n)
        world.map_account(account, f"cust-{n}")
        world.engine.submit_bill(bill, account)

    @hookimpl(specname="send_bills")
    def refusing(connection: Any, deliveries: Any, idempotency_key: str) -> Any:
        # A destination that refuses a whole request because of one member (a body it cannot
        # read), doing nothing: fakebooks' own batch otherwise.
        if any(d.bill.id == "bill-3" for d in deliveries):
            raise DestinationValidationError("the request was refused", detail="line 1: bad")
        return fake.send_bills(connection, deliveries, idempotency_key)

    engine = world.other_engine(batch=True, hooks={"batch_hook": refusing})
    try:
        engine.deliver_pending()
        by_bill = {r.bill_id: r for r in engine.runs.list(limit=None)}
    finally:
        engine.close()
    assert by_bill["bill-3"].status.value == "ERROR"
    assert by_bill["bill-3"].error == "the request was refused: line 1: bad"
    assert {b: r.status.value for b, r in by_bill.items() if b != "bill-3"} == {
        f"bill-{n}": "COMPLETE" for n in (0, 1, 2, 4, 5)
    }


def test_a_plugin_bug_is_reported_without_python_words(world: World) -> None:
    world.integration()
    world.map_account(ACME, "cust-acme")
    world.engine.submit_bill(ACME_BILL, ACME)

    @hookimpl(specname="send_bill")
    def broken(**_: Any) -> Any:
        raise KeyError("customer")

    @hookimpl(specname="send_bills")
    def broken_batch(**_: Any) -> Any:
        raise KeyError("customer")

    engine = world.other_engine(batch=True, hooks={"send_bill": broken, "batch_hook": broken_batch})
    try:
        engine.deliver_pending()
        (run,) = engine.runs.list(limit=None)
    finally:
        engine.close()
    assert run.status.value == "AWAITING_RETRY"
    assert run.error == (
        "the destination's plugin failed unexpectedly (its error is in the worker's log)"
    )
    assert "KeyError" not in (run.error or "")


# --- attempts stay bounded even when recording fails --------------------------------------------


@pytest.mark.parametrize("batch", [False], ids=["single"])
@pytest.mark.parametrize(
    ("result", "complaint"),
    [
        (SendResult(external_id="x" * 250), "an external id of 250 characters (at most 200)"),
        (SendResult(external_id="42", state={"when": object()}), "state that cannot be written"),
        (SendResult(external_id=""), "no external id"),
    ],
    ids=["long-id", "state", "empty-id"],
)
def test_results_the_store_cannot_hold_end_the_run_naming_the_plugin(
    world: World, result: SendResult, complaint: str
) -> None:
    world.integration()
    world.map_account(ACME, "cust-acme")
    world.engine.submit_bill(ACME_BILL, ACME)

    @hookimpl(specname="send_bill")
    def odd(**_: Any) -> Any:
        return result

    engine = world.other_engine(hooks={"send_bill": odd})
    try:
        engine.deliver_pending()
        (run,) = engine.runs.list(limit=None)
        events = engine.events.list()
    finally:
        engine.close()
    assert run.status.value == "ERROR"
    assert run.error is not None and run.error.startswith(
        f"the fakebooks plugin returned {complaint}"
    )
    assert [e.type.value for e in events] == ["integration.perform.error"]


@pytest.mark.parametrize("batch", [False], ids=["single"])
def test_a_failing_write_still_counts_the_attempt_and_stops_at_the_cap(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.integration()
    world.map_account(ACME, "cust-acme")
    world.engine.submit_bill(ACME_BILL, ACME)

    def refuse(self: Any, entries: Any) -> None:
        if entries:
            raise DataError("INSERT", {}, Exception("value too long for the column"))

    monkeypatch.setattr(LedgerRepository, "record", refuse)
    cap = world.engine.deliverer.retry.max_attempts
    for _ in range(cap + 3):
        world.engine.deliver_pending()
        world.clock.advance(4000)
    (run,) = world.engine.runs.list(limit=None)
    assert run.status.value == "TIMEOUT_LIMIT_EXCEEDED"
    assert run.attempts == cap
    assert len(world.engine.runs.attempts(run.id)) == cap
    assert "could not record" in (run.error or "")
    assert [e.type.value for e in world.engine.events.list()] == ["integration.perform.error"]
    # The destination recognised every repeat: one invoice.
    assert len(world.provider.invoices_for(ACME_BILL["id"])) == 1


# --- no plugin can stall or crash the engine ------------------------------------------------------


@pytest.mark.parametrize("batch", [False], ids=["single"])
def test_a_hung_plugin_call_becomes_a_transient_failure(world: World) -> None:
    world.integration()
    world.map_account(ACME, "cust-acme")
    world.engine.submit_bill(ACME_BILL, ACME)
    release = threading.Event()

    @hookimpl(specname="send_bill")
    def hung(**_: Any) -> Any:
        release.wait(30)
        raise TransientError("released")

    engine = world.other_engine(hooks={"send_bill": hung}, plugin_timeout=0.5)
    try:
        report = engine.deliver_pending()
        (run,) = engine.runs.list(limit=None)
    finally:
        release.set()
        engine.close()
    assert report.attempted == 1
    assert run.status.value == "AWAITING_RETRY"
    assert (
        run.error
        == "the fakebooks plugin did not finish send_bill within 0.5 s; it is tried again later"
    )


@pytest.mark.parametrize("batch", [False], ids=["single"])
def test_a_plugin_calling_exit_does_not_end_the_worker(world: World) -> None:
    world.integration()
    world.map_account(ACME, "cust-acme")
    world.engine.submit_bill(ACME_BILL, ACME)

    @hookimpl(specname="send_bill")
    def leaving(**_: Any) -> Any:
        raise SystemExit(3)

    engine = world.other_engine(hooks={"send_bill": leaving})
    try:
        engine.deliver_pending()
        (run,) = engine.runs.list(limit=None)
    finally:
        engine.close()
    assert run.status.value == "AWAITING_RETRY"
    assert "unexpectedly" in (run.error or "") or "tried to stop" in (run.error or "")
