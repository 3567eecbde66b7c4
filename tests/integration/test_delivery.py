"""Delivery end to end: routing, runs, batching, retries, rate limits, events, auto-disable.

Against the ``fakebooks`` destination over real HTTP (with fault injection), on SQLite and on
PostgreSQL, with a manual clock so that backoff and rate-limit waits take no real time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import fakebooks_plugin as fake
from billbridge import Engine, hookimpl
from billbridge.domain.models import EventType, RunStatus, parse_account, parse_bill
from billbridge.errors import Conflict, MissingMapping, ValidationFailed
from billbridge.plugin.idempotency import idempotency_key
from billbridge.plugin.manager import load_plugins
from billbridge.secrets import generate_key
from billbridge.store import atomically
from billbridge.store.repositories import TenantRepository
from billbridge.testing.emulation.clock import ManualClock
from billbridge.testing.emulation.limits import SlidingWindow
from billbridge.testing.emulation.server import serve
from support import (
    ACME,
    ACME_BILL,
    GLOBEX,
    GLOBEX_BILL,
    World,
    bill_version,
    statuses,
)

# --- routing -------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [True], ids=["batch"])
def test_routing_records_every_decision(world: World) -> None:
    everyone = world.integration("Everyone")
    uk = world.integration("UK", config={"accountFilter": 'customFields.country == "UK"'})
    approved_only = world.integration("Approved only", entity_config={"onlySendOnApproval": True})
    deny = world.integration("Deny", config={"restrictedAccountIds": [ACME["id"]]})
    allow = world.integration("Allow", config={"accountIds": [GLOBEX["id"]]})
    pending = bill_version(ACME_BILL, 3, status="PENDING")
    result = world.engine.submit_bill(pending, ACME)
    taken = {r.integration_id for r in result.runs}
    assert taken == {everyone.id, uk.id}
    reasons = {s.integration_id: s.reason for s in result.skips}
    assert "only sends approved bills" in reasons[approved_only.id]
    assert "restricted" in reasons[deny.id]
    assert "not on the integration's account list" in reasons[allow.id]
    assert {s.integration_id for s in world.engine.skips.list(bill_id=ACME_BILL["id"])} == {
        approved_only.id,
        deny.id,
        allow.id,
    }
    globex = world.engine.submit_bill(GLOBEX_BILL, GLOBEX)
    assert {r.integration_id for r in globex.runs} == {
        everyone.id,
        approved_only.id,
        deny.id,
        allow.id,
    }
    assert "does not match the filter" in {s.integration_id: s.reason for s in globex.skips}[uk.id]


def test_a_version_is_queued_once_and_delivered_once(world: World) -> None:
    world.integration()
    world.map_account(ACME, "cust-acme")
    assert len(world.engine.submit_bill(ACME_BILL, ACME).runs) == 1
    again = world.engine.submit_bill(ACME_BILL, ACME)
    assert again.runs == () and "already queued" in again.skips[0].reason
    report = world.engine.deliver_pending()
    assert report.completed == 1
    after = world.engine.submit_bill(ACME_BILL, ACME)
    assert after.runs == () and "already delivered" in after.skips[0].reason
    older = world.engine.submit_bill(bill_version(ACME_BILL, 2), ACME)
    assert older.runs == () and "newer version" in older.skips[0].reason
    assert len(world.provider.invoices_for(ACME_BILL["id"])) == 1


def test_bad_input_is_refused_and_nothing_is_stored(world: World) -> None:
    world.integration()
    with pytest.raises(ValidationFailed, match="not valid JSON"):
        world.engine.submit_bill("{not json", ACME)
    with pytest.raises(ValidationFailed, match="does not match the bill"):
        world.engine.submit_bill(ACME_BILL, GLOBEX)
    with pytest.raises(ValidationFailed) as info:
        world.engine.submit_bill({**ACME_BILL, "lineItems": [{"quantity": 1}]}, ACME)
    assert "/lineItems/0/lineItemType" in [e.path for e in info.value.errors]
    assert world.engine.runs.list() == []
    assert world.engine.skips.list() == []


# --- delivery ------------------------------------------------------------------------------------


def test_bills_become_invoices_with_ids_urls_and_a_ledger(world: World) -> None:
    integration = world.integration(destination_config={})
    world.map_account(ACME, "cust-acme")
    world.map_account(GLOBEX, "cust-globex")
    world.engine.submit_bill(ACME_BILL, ACME)
    world.engine.submit_bill(GLOBEX_BILL, GLOBEX)
    seen: list[tuple[int, int]] = []
    report = world.engine.deliver_pending(progress=lambda done, total: seen.append((done, total)))
    assert report.completed == 2
    assert seen[-1] == (2, 2)
    runs = world.engine.runs.list(integration_id=integration.id)
    assert {r.status for r in runs} == {RunStatus.COMPLETE}
    for run in runs:
        assert run.external_id and run.external_url.endswith(run.external_id)
        assert [a.status for a in world.engine.runs.attempts(run.id)] == [RunStatus.COMPLETE]
    invoice = world.provider.invoices_for(ACME_BILL["id"])[0]
    assert invoice["customer"] == "cust-acme"
    assert len(invoice["lines"]) == 7


def test_a_new_version_updates_the_invoice_made_before(world: World) -> None:
    world.integration()
    world.map_account(ACME, "cust-acme")
    world.engine.submit_bill(ACME_BILL, ACME)
    world.engine.deliver_pending()
    regenerated = bill_version(ACME_BILL, 4, billTotal=1300.0)
    assert len(world.engine.submit_bill(regenerated, ACME).runs) == 1
    world.engine.deliver_pending()
    invoices = world.provider.invoices_for(ACME_BILL["id"])
    assert len(invoices) == 1
    assert invoices[0]["version"] == 4 and invoices[0]["revision"] == 2
    runs = world.engine.runs.list(bill_id=ACME_BILL["id"])
    assert {r.external_id for r in runs} == {invoices[0]["id"]}


def test_exclusions_and_linked_mappings_apply(world: World) -> None:
    integration = world.integration(
        entity_config={
            "excludedLineItemTypes": ["CREDIT_MEMO"],
            "excludedProducts": ["p-platform"],
            "excludedAggregations": ["cagg-storage-gb"],
        }
    )
    world.map_account(ACME, "cust-global")
    world.map_account(ACME, "cust-linked", integration_id=integration.id)
    world.engine.submit_bill(ACME_BILL, ACME)
    world.engine.deliver_pending()
    invoice = world.provider.invoices_for(ACME_BILL["id"])[0]
    assert invoice["customer"] == "cust-linked"
    assert [line["type"] for line in invoice["lines"]] == ["USAGE", "COMMITMENT_CONSUMED"]


def test_preview_is_the_exact_payload_and_stores_nothing(world: World) -> None:
    integration = world.integration()
    world.map_account(ACME, "cust-acme")
    preview = world.engine.preview(ACME_BILL, ACME, integration.id)
    assert preview["method"] == "POST" and preview["path"] == "/invoices"
    assert preview["body"]["customer"] == "cust-acme"
    assert world.engine.runs.list() == [] and world.provider.invoices == {}
    with pytest.raises(MissingMapping, match="Customer"):
        world.engine.preview(GLOBEX_BILL, GLOBEX, integration.id)


# --- errors and events ---------------------------------------------------------------------------


def test_a_missing_account_mapping_is_an_event_saying_what_to_map(world: World) -> None:
    integration = world.integration()
    world.engine.submit_bill(GLOBEX_BILL, GLOBEX)
    world.engine.deliver_pending()
    run = world.engine.runs.list()[0]
    assert run.status is RunStatus.ERROR
    (event,) = world.engine.events.list(integration_id=integration.id)
    assert event.type is EventType.MISSING_ACCOUNT_MAPPING
    assert "Globex Corporation" in event.message and "Customer" in event.message
    assert run.id in event.message
    world.map_account(GLOBEX, "cust-globex")
    replay = world.engine.runs.replay(run.id)
    assert replay.replayed_from == run.id
    world.engine.deliver_pending()
    assert world.engine.runs.get(replay.id).status is RunStatus.COMPLETE
    assert world.engine.events.mark_actioned(event.id, by="ops").actioned
    assert world.engine.events.list(actioned=False) == []


def test_a_refused_invoice_fails_alone_with_the_destinations_words(world: World) -> None:
    world.integration()
    world.map_account(ACME, "cust-acme")
    world.map_account(GLOBEX, "cust-archived")
    world.provider.refuse_customers.add("cust-archived")
    world.engine.submit_bill(ACME_BILL, ACME)
    world.engine.submit_bill(GLOBEX_BILL, GLOBEX)
    world.engine.deliver_pending()
    by_bill = {r.bill_id: r for r in world.engine.runs.list()}
    assert by_bill[ACME_BILL["id"]].status is RunStatus.COMPLETE
    failed = by_bill[GLOBEX_BILL["id"]]
    assert failed.status is RunStatus.ERROR
    assert "customer cust-archived is archived" in (failed.error or "")
    assert [e.type for e in world.engine.events.list()] == [EventType.VALIDATION_ERROR]


def test_a_paid_invoice_is_not_changed(world: World) -> None:
    world.integration()
    world.map_account(ACME, "cust-acme")
    world.engine.submit_bill(ACME_BILL, ACME)
    world.engine.deliver_pending()
    world.provider.paid.add(world.provider.invoices_for(ACME_BILL["id"])[0]["id"])
    world.engine.submit_bill(bill_version(ACME_BILL, 4), ACME)
    world.engine.deliver_pending()
    (latest,) = [r for r in world.engine.runs.list(bill_id=ACME_BILL["id"]) if r.bill_version == 4]
    assert latest.status is RunStatus.INVOICE_ALREADY_PAID
    assert [e.type for e in world.engine.events.list()] == [EventType.PERFORM_ERROR]


def test_transient_failures_retry_with_backoff_and_give_up_when_bounded(world: World) -> None:
    world.integration()
    world.map_account(ACME, "cust-acme")
    world.engine.submit_bill(ACME_BILL, ACME)
    world.provider.faults.script("error")
    world.engine.deliver_pending()
    run = world.engine.runs.list()[0]
    assert run.status is RunStatus.AWAITING_RETRY
    assert run.next_attempt_at is not None
    wait = (run.next_attempt_at - world.engine.clock.now()).total_seconds()
    assert 15 <= wait <= 30  # first backoff: 30 s with jitter
    assert world.engine.deliver_pending().attempted == 0  # not due yet
    world.clock.advance(wait + 1)
    world.engine.deliver_pending()
    assert world.engine.runs.get(run.id).status is RunStatus.COMPLETE
    assert world.engine.runs.attempts(run.id)[-1].status is RunStatus.COMPLETE
    assert len(world.engine.runs.attempts(run.id)) == 2

    world.engine.submit_bill(GLOBEX_BILL, GLOBEX)
    world.map_account(GLOBEX, "cust-globex")
    world.provider.faults.error_rate = 1.0
    for _ in range(world.engine.deliverer.retry.max_attempts):
        world.engine.deliver_pending()
        world.clock.advance(3700)
    failed = world.engine.runs.list(bill_id=GLOBEX_BILL["id"])[0]
    assert failed.status is RunStatus.TIMEOUT_LIMIT_EXCEEDED
    assert failed.attempts == world.engine.deliverer.retry.max_attempts
    assert "gave up after" in (failed.error or "")


def test_a_bill_stays_parsed_in_memory_until_every_run_of_it_has_ended(world: World) -> None:
    world.integration("First")
    world.integration("Second")
    world.map_account(ACME, "cust-acme")
    cache = world.engine.bill_cache
    key = (ACME_BILL["id"], ACME_BILL["version"])
    assert len(world.engine.submit_bill(ACME_BILL, ACME).runs) == 2
    assert cache.get_many([key])  # parsed once at submission, kept for delivery
    world.provider.faults.script("error")  # the first request fails: a run waits for a retry
    world.engine.deliver_pending()
    assert "AWAITING_RETRY" in statuses(world)
    assert cache.get_many([key])  # a run still open: the bill stays
    world.clock.advance(3600)
    world.engine.deliver_pending()
    assert statuses(world) == ["COMPLETE", "COMPLETE"]
    assert not cache.get_many([key])  # every run ended: dropped
    assert len(world.provider.invoices_for(ACME_BILL["id"])) == 2

    # A bill that queues nothing (this version is delivered already) is not kept at all.
    assert world.engine.submit_bill(ACME_BILL, ACME).runs == ()
    assert len(cache) == 0


def test_a_destination_down_for_an_hour_is_waited_for(world: World) -> None:
    world.integration()
    world.map_account(ACME, "cust-acme")
    world.engine.submit_bill(ACME_BILL, ACME)
    world.provider.faults.error_rate = 1.0  # every request fails with a 5xx
    down_until = world.clock.time() + 3600
    while world.clock.time() < down_until:
        world.engine.deliver_pending()
        world.clock.advance(60)
    run = world.engine.runs.list()[0]
    assert run.status is RunStatus.AWAITING_RETRY
    assert run.attempts < world.engine.deliverer.retry.max_attempts
    assert world.engine.events.list() == []  # waiting is not an error anyone must act on
    world.provider.faults.error_rate = 0.0  # back up
    world.clock.advance(3600)
    world.engine.deliver_pending()
    assert world.engine.runs.get(run.id).status is RunStatus.COMPLETE
    assert len(world.provider.invoices_for(ACME_BILL["id"])) == 1


def test_a_response_lost_after_commit_does_not_make_a_second_invoice(world: World) -> None:
    world.integration()
    world.map_account(ACME, "cust-acme")
    world.engine.submit_bill(ACME_BILL, ACME)
    world.provider.faults.script("lost")
    world.engine.deliver_pending()
    assert world.engine.runs.list()[0].status is RunStatus.AWAITING_RETRY
    assert len(world.provider.invoices_for(ACME_BILL["id"])) == 1  # created, answer lost
    world.clock.advance(3600)
    world.engine.deliver_pending()
    assert world.engine.runs.list()[0].status is RunStatus.COMPLETE
    assert len(world.provider.invoices_for(ACME_BILL["id"])) == 1


@pytest.mark.parametrize("batch", [True], ids=["batch"])
def test_a_batch_whose_answer_was_lost_is_resent_with_the_same_members(world: World) -> None:
    world.integration()
    world.submit_numbered(range(10))
    world.provider.faults.script("lost")
    world.engine.deliver_pending(max_runs=10)
    first = world.provider.batches[-1]
    # Newer bills arrive meanwhile; the unsettled batch still goes again exactly as it was.
    world.clock.advance(1)
    world.submit_numbered(range(10, 25))
    world.clock.advance(3600)
    world.engine.deliver_pending()
    assert world.provider.batches[1] == first
    assert statuses(world) == [RunStatus.COMPLETE.value] * 25
    assert len(world.provider.invoices) == 25


def test_an_expired_token_is_refreshed_and_the_run_delivered(world: World) -> None:
    world.integration()
    world.map_account(ACME, "cust-acme")
    world.engine.submit_bill(ACME_BILL, ACME)
    world.provider.oauth.expire_access_tokens()
    world.engine.deliver_pending()
    assert world.engine.runs.list()[0].status is RunStatus.COMPLETE
    assert world.provider.oauth.stats["refreshes"] == 1


@pytest.mark.parametrize("batch", [True], ids=["batch"])
def test_rate_limits_are_kept_and_429_waits(world: World) -> None:
    world.integration()
    bills = []
    for n in range(25):
        account = {**ACME, "id": f"acct-{n}"}
        world.map_account(account, f"cust-{n}")
        bills.append(({**ACME_BILL, "id": f"bill-{n}", "accountId": account["id"]}, account))
    for bill, account in bills:
        world.engine.submit_bill(bill, account)
    # Declared 120/min with batches of 10: three requests, well within limits: no 429.
    report = world.engine.deliver_pending()
    assert report.completed == 25
    assert report.requests == 3
    assert world.provider.throttled == 0

    # A destination stricter than declared answers 429: the run waits Retry-After, then goes.
    world.provider.window = SlidingWindow(1, 60, world.clock)
    world.provider.window.acquire("tenant")  # someone else used this minute's only request
    more = {**ACME_BILL, "id": "bill-late", "accountId": "acct-0"}
    world.engine.submit_bill(more, bills[0][1])
    start = world.clock.time()
    world.engine.deliver_pending()  # a 429 with Retry-After: the worker waits, then sends
    run = world.engine.runs.list(bill_id="bill-late")[0]
    assert run.status is RunStatus.COMPLETE
    assert [a.status for a in world.engine.runs.attempts(run.id)] == [
        RunStatus.RATE_LIMIT_RETRY,
        RunStatus.COMPLETE,
    ]
    assert world.provider.throttled == 1
    assert world.clock.time() - start >= 59


def test_spare_request_budget_is_used_by_single_sends_when_batches_are_capped(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # QuickBooks-like: 2 batch requests and 20 requests in all per minute, 5 bills a batch.
    monkeypatch.setattr(
        fake,
        "LIMITS",
        fake.Limits(
            requests_per_minute=20, batch_size=5, batch_requests_per_minute=2, concurrency=3
        ),
    )
    clock = ManualClock()
    provider = fake.Provider(clock, rate_limit=20)
    with serve(provider.app) as server:
        engine = fake.make_engine(
            database_url, server.url, clock, tmp_path, generate_key(), batch=True
        )
        try:
            integration = engine.integrations.create(name="Capped", destination="fakebooks")
            engine.integrations.connect(integration.id, fake.connect(engine).id)
            for n in range(27):
                account = {**ACME, "id": f"acct-{n}"}
                engine.mappings.create(
                    entity="Account",
                    entity_id=account["id"],
                    external_table="Customer",
                    external_id=f"cust-{n}",
                    external_system="fakebooks",
                )
                engine.submit_bill(
                    {**ACME_BILL, "id": f"bill-{n}", "accountId": account["id"]}, account
                )
            start = clock.time()
            report = engine.deliver_pending()
        finally:
            engine.close()
    assert report.completed == 27
    assert provider.throttled == 0
    # Within the first minute: 2 batches (10 bills) and 17 single requests use the budget (the
    # limiter keeps one request of headroom: 19 of 20).
    assert len(provider.batches) == 2
    assert provider.requests == 19
    assert clock.time() - start < 60


@pytest.mark.parametrize("batch", [False], ids=["single"])
def test_single_sends_wait_for_the_minute_window(world: World) -> None:
    world.integration()
    world.submit_numbered(range(130))
    start = world.clock.time()
    report = world.engine.deliver_pending()
    assert report.completed == 130
    assert world.provider.throttled == 0
    assert world.clock.time() - start >= 60  # the 121st request waited for the window


@pytest.mark.parametrize("batch", [False], ids=["single"])
def test_a_worker_waiting_for_the_window_keeps_its_lease_with_few_writes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.integration()
    world.submit_numbered(range(130))
    renewals: list[tuple[datetime, datetime]] = []
    original = TenantRepository.renew

    def spy(self: TenantRepository, key: str, *, worker: str, until: datetime) -> bool:
        renewals.append((world.engine.clock.now(), until))
        return original(self, key, worker=worker, until=until)

    monkeypatch.setattr(TenantRepository, "renew", spy)
    start = world.engine.clock.now()
    report = world.engine.deliver_pending()
    assert report.completed == 130
    assert world.engine.clock.now() - start >= timedelta(seconds=60)  # it waited for the window
    # The 120 s lease is extended once a third of it has passed, not per request or wait (130
    # requests, many waits), and always before it runs out.
    lease = timedelta(seconds=world.engine.settings.worker_lease_seconds)
    assert 1 <= len(renewals) <= 3
    held_until = start + lease
    last = start
    for at, until in renewals:
        assert at < held_until
        assert at - last >= lease / 3
        held_until, last = until, at


def test_auth_failures_park_runs_until_reconnected(world: World) -> None:
    integration = world.integration()
    world.map_account(ACME, "cust-acme")
    credential_id = world.engine.integrations.get(integration.id).credential_id
    assert credential_id is not None
    world.engine.credentials.delete(credential_id)
    world.engine.submit_bill(ACME_BILL, ACME)
    world.engine.deliver_pending()
    run = world.engine.runs.list()[0]
    assert run.status is RunStatus.AUTH_FAILED
    assert "connect" in (run.error or "")
    assert world.engine.events.list()[0].type is EventType.AUTHENTICATION_ERROR
    fresh = fake.connect(world.engine, "Again")
    world.engine.integrations.connect(integration.id, fresh.id)
    world.engine.runs.replay(run.id)
    world.engine.deliver_pending()
    assert RunStatus.COMPLETE.value in statuses(world)


def test_runs_wait_while_the_plugin_is_not_installed(world: World) -> None:
    world.integration()
    world.map_account(ACME, "cust-acme")
    world.engine.submit_bill(ACME_BILL, ACME)
    without = Engine(
        world.database_url,
        settings=world.engine.settings,
        plugins=load_plugins(blocked=()),
        clock=world.engine.clock,
        secret_box=world.engine.secret_box,
    )
    try:
        without.deliver_pending()
        run = without.runs.list()[0]
        assert run.status is RunStatus.AWAITING_RETRY
        assert "not installed" in (run.error or "")
    finally:
        without.close()
    world.clock.advance(3601)
    world.engine.deliver_pending()
    assert statuses(world) == [RunStatus.COMPLETE.value]


@pytest.mark.parametrize("batch", [True], ids=["batch"])
def test_successive_errors_disable_the_integration_and_notify(world: World) -> None:
    told: list[tuple[str, list[str], str]] = []

    class Notifier:
        @hookimpl
        def integration_disabled(self, integration: Any, users_to_notify: Any, reason: str) -> None:
            told.append((integration.name, list(users_to_notify), reason))

    world.engine.plugins.register(Notifier(), "notifier")
    integration = world.integration(
        config={"autoDisableThreshold": 3, "usersToNotify": ["ops@example.com"]}
    )
    for n in range(5):
        account = {**ACME, "id": f"unmapped-{n}"}
        world.engine.submit_bill(
            {**ACME_BILL, "id": f"bill-{n}", "accountId": account["id"]}, account
        )
    world.engine.deliver_pending()
    current = world.engine.integrations.get(integration.id)
    assert not current.enabled
    types = [e.type for e in world.engine.events.list(integration_id=integration.id, limit=None)]
    assert types.count(EventType.DISABLED) == 1
    assert told == [
        ("Fake", ["ops@example.com"], f"{current.consecutive_errors} successive errors")
    ]
    assert RunStatus.ERROR.value in statuses(world)
    # Runs arriving while disabled are not taken; enabling resets the count.
    skipped = world.engine.submit_bill({**ACME_BILL, "id": "later", "accountId": ACME["id"]}, ACME)
    assert skipped.runs == () and "disabled" in skipped.skips[0].reason
    assert world.engine.integrations.enable(integration.id).consecutive_errors == 0


def test_a_success_resets_the_error_count(world: World) -> None:
    integration = world.integration(config={"autoDisableThreshold": 3})
    world.map_account(ACME, "cust-acme")
    for n in range(2):
        account = {**ACME, "id": f"unmapped-{n}"}
        world.engine.submit_bill(
            {**ACME_BILL, "id": f"bill-{n}", "accountId": account["id"]}, account
        )
    world.engine.deliver_pending()
    assert world.engine.integrations.get(integration.id).consecutive_errors == 2
    world.engine.submit_bill(ACME_BILL, ACME)
    world.engine.deliver_pending()
    assert world.engine.integrations.get(integration.id).consecutive_errors == 0


# --- workers -------------------------------------------------------------------------------------


def test_a_run_left_by_a_dead_worker_is_resumed_without_a_second_invoice(world: World) -> None:
    integration = world.integration()
    world.map_account(ACME, "cust-acme")
    (run,) = world.engine.submit_bill(ACME_BILL, ACME).runs
    # A worker claims the run, sends it, and dies before writing the outcome.
    claimed = atomically(
        world.engine.uow,
        lambda uow: uow.runs.claim(
            integration_ids=[integration.id],
            limit=10,
            worker="dead-worker",
            now=world.engine.clock.now(),
            lease_until=world.engine.clock.now(),
        ),
    )
    assert [c.id for c in claimed] == [run.id]
    connection = world.engine.credentials.connection(integration.credential_id)
    fake.send_bill(
        connection=connection,
        bill=parse_bill(ACME_BILL),
        account=parse_account(ACME),
        config={},
        mappings=fake.ResolvedMappings({("Account", ACME["id"], "Customer"): "cust-acme"}),
        previous=None,
        idempotency_key=idempotency_key(integration.id, ACME_BILL["id"], ACME_BILL["version"]),
    )
    world.clock.advance(1)
    world.engine.deliver_pending()
    resumed = world.engine.runs.get(run.id)
    assert resumed.status is RunStatus.COMPLETE
    assert resumed.attempts == 2
    assert len(world.provider.invoices_for(ACME_BILL["id"])) == 1


@pytest.mark.parametrize("batch", [True], ids=["batch"])
def test_concurrent_workers_never_deliver_a_run_twice(world: World) -> None:
    world.integration()
    world.submit_numbered(range(60))
    engines = [world.engine, *(world.other_engine(batch=True) for _ in range(2))]
    barrier = threading.Barrier(len(engines))
    try:

        def work(engine: Engine) -> int:
            barrier.wait()
            return sum(engine.deliver_pending().completed for _ in range(3))

        with ThreadPoolExecutor(3) as pool:
            completed = sum(pool.map(work, engines))
    finally:
        for engine in engines[1:]:
            engine.close()
    assert completed == 60
    assert statuses(world) == [RunStatus.COMPLETE.value] * 60
    assert len(world.provider.invoices) == 60
    assert world.provider.keys and len(world.provider.keys) == 60


def test_deliver_one_run_from_a_job_system(world: World) -> None:
    world.integration()
    world.map_account(ACME, "cust-acme")
    world.map_account(GLOBEX, "cust-globex")
    (first,) = world.engine.submit_bill(ACME_BILL, ACME).runs
    (second,) = world.engine.submit_bill(GLOBEX_BILL, GLOBEX).runs
    assert world.engine.deliver(first.id).status is RunStatus.COMPLETE
    assert world.engine.runs.get(second.id).status is RunStatus.WAITING


def test_replay_is_refused_while_open(world: World) -> None:
    world.integration()
    world.map_account(ACME, "cust-acme")
    (run,) = world.engine.submit_bill(ACME_BILL, ACME).runs
    with pytest.raises(Conflict, match="still WAITING"):
        world.engine.runs.replay(run.id)


def test_backfill_in_chunks(world: World) -> None:
    world.integration()

    def bills() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        for n in range(1200):
            yield {**ACME_BILL, "id": f"b-{n}", "accountId": ACME["id"]}, ACME

    counts = list(world.engine.submit_bills(bills(), chunk=500))
    assert [c.bills for c in counts] == [500, 500, 200]
    assert sum(c.runs for c in counts) == 1200
