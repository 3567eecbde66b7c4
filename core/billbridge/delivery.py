"""Delivery: waiting runs become invoices, as fast as each destination allows, exactly once.

How a worker delivers (:meth:`Deliverer.deliver_pending`):

1. Due runs are grouped by destination tenant (a QuickBooks realm, a Xero organisation): the
   unit whose limits matter. Runs of disabled integrations become DISABLED; runs that cannot
   be sent (no credential, plugin not installed) are parked with a reason and an event.
2. For each tenant the worker takes a lease (one worker per tenant at a time, across processes
   and machines sharing the database), then repeatedly claims a batch of runs (STARTED,
   ``attempts + 1``), prepares them (excluded lines, resolved mappings, panel defaults, the
   ledger's earlier invoice), waits for the tenant's rate limiter, and sends them through the
   plugin's ``send_bills`` (one request per batch) or ``send_bill`` (concurrently, up to the
   declared concurrency) with a fresh access token (refreshed once on a 401).
3. Outcomes are written in one transaction per batch: COMPLETE runs with the external id and
   URL and a ledger entry; failures with the status their exception names, a retry time
   (exponential backoff with jitter; ``Retry-After`` for 429) or an event a person must act
   on. Successive error events disable the integration at its threshold.

A worker that dies leaves its runs STARTED with a claim that expires; another worker claims
them again and sends them with the same idempotency key, so the destination returns the
invoice it already made instead of a second one.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from billbridge.domain.models import (
    Account,
    Bill,
    CredentialStatus,
    Event,
    EventType,
    Integration,
    LedgerEntry,
    Run,
    RunAttempt,
    RunStatus,
    Secret,
)
from billbridge.domain.preparation import (
    apply_defaults,
    exclude_lines,
    mapping_keys,
    require_account_mapping,
    resolve_mappings,
)
from billbridge.domain.ratelimit import TenantLimiter, in_seconds
from billbridge.errors import (
    AuthenticationFailed,
    BillbridgeError,
    DestinationError,
    DestinationValidationError,
    MissingMapping,
    NotFound,
    PermanentError,
    RateLimited,
    TokenExpired,
    TransientError,
)
from billbridge.plugin.contract import Connection, Delivery, Destination, SendResult
from billbridge.store import (
    CredentialRepository,
    EventRepository,
    IntegrationRepository,
    MappingRepository,
    new_id,
)
from billbridge.store.queue import DeliveryQueue

if TYPE_CHECKING:
    from billbridge.engine import Engine

__all__ = ["Deliverer", "DeliveryReport", "RetryPolicy", "idempotency_key"]

log = logging.getLogger(__name__)

_NAMESPACE = uuid.UUID("6f1d5c2e-2b8a-4f7e-9a51-b111b81d9e00")


def idempotency_key(integration_id: str, bill_id: str, version: int) -> str:
    """The deterministic key of one bill version through one integration (36 characters)."""
    return str(uuid.uuid5(_NAMESPACE, f"{integration_id}/{bill_id}/{version}"))


def batch_idempotency_key(deliveries: Sequence[Delivery]) -> str:
    """The key of a batch: the same members always give the same key (36 characters)."""
    members = "\n".join(sorted(d.idempotency_key for d in deliveries))
    return str(uuid.uuid5(_NAMESPACE, f"batch\n{members}"))


@attrs.frozen
class RetryPolicy:
    """When to try again after a transient failure, and when to give up."""

    base: float = 30.0
    cap: float = 3600.0
    max_attempts: int = 12

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds before attempt ``attempt + 1``: exponential, capped, with equal jitter."""
        ceiling: float = min(self.cap, self.base * 2.0 ** max(attempt - 1, 0))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


@attrs.frozen
class DeliveryReport:
    """What one :meth:`Deliverer.deliver_pending` call did."""

    attempted: int
    statuses: Mapping[str, int]
    requests: int
    throttled: int
    seconds: float

    @property
    def completed(self) -> int:
        """Runs that ended COMPLETE."""
        return self.statuses.get(RunStatus.COMPLETE.value, 0)


@attrs.define
class _Tally:
    attempted: int = 0
    statuses: Counter[str] = attrs.field(factory=Counter)
    requests: int = 0
    throttled: int = 0
    lock: threading.Lock = attrs.field(factory=threading.Lock)

    def add(self, runs: Iterable[Run]) -> None:
        with self.lock:
            for run in runs:
                self.attempted += 1
                self.statuses[run.status.value] += 1


class _Budget:
    """How many more runs one ``deliver_pending`` call may claim (shared by its threads)."""

    def __init__(self, runs: int) -> None:
        self.left = runs
        self._lock = threading.Lock()

    def take(self, wanted: int) -> int:
        with self._lock:
            granted = max(min(wanted, self.left), 0)
            self.left -= granted
            return granted

    def give(self, unused: int) -> None:
        with self._lock:
            self.left += max(unused, 0)


@attrs.frozen
class _Group:
    key: str
    destination: str
    #: ``None`` for destinations without OAuth.
    credential_id: str | None
    integrations: tuple[Integration, ...]


@attrs.define
class _Prepared:
    run: Run
    integration: Integration
    delivery: Delivery | None = None
    failure: BaseException | None = None


ProgressCallback = Callable[[int, int], None]
"""Called with ``(runs finished so far, runs due when delivery started)``."""


class Deliverer:
    """Delivers runs for an engine; one per engine (thread-safe)."""

    def __init__(self, engine: Engine, *, retry: RetryPolicy | None = None) -> None:
        self._engine = engine
        self.retry = retry or RetryPolicy()
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._rng = random.Random()
        #: How long a tenant lease and a run claim last before another worker may take over.
        self.lease = timedelta(seconds=engine.settings.worker_lease_seconds)
        #: When this worker last extended each tenant lease it holds (engine clock).
        self._renewed: dict[str, datetime] = {}
        self._renewed_lock = threading.Lock()

    # -- entry points -----------------------------------------------------------------------

    def deliver_pending(
        self,
        *,
        max_runs: int | None = None,
        progress: ProgressCallback | None = None,
        threads: int | None = None,
    ) -> DeliveryReport:
        """Deliver every run that is due now (waiting for rate limits as needed).

        Runs that become due later (backoff) are left for the next call or the worker loop.
        :param max_runs: stop after about this many runs.
        :param progress: told how many runs have finished, for a progress bar.
        """
        started = time.monotonic()
        tally = _Tally()
        engine = self._engine
        total = sum(
            engine._unit_of_work(lambda s: DeliveryQueue(s).due_counts(engine.clock())).values()
        )
        budget = _Budget(max_runs if max_runs is not None else 1 << 62)

        def report(runs: Sequence[Run]) -> None:
            tally.add(runs)
            if progress is not None:
                progress(tally.attempted, total)

        while True:
            groups = self._groups(report)
            if not groups or budget.left <= 0:
                break
            workers = max(1, min(threads or engine.settings.worker_threads, len(groups)))
            with ThreadPoolExecutor(workers, thread_name_prefix="billbridge-deliver") as pool:
                done = list(
                    pool.map(lambda g: self._deliver_group(g, tally, budget, report), groups)
                )
            if not any(done):
                break  # every tenant is leased elsewhere or blocked: nothing more now
        return DeliveryReport(
            attempted=tally.attempted,
            statuses=dict(tally.statuses),
            requests=tally.requests,
            throttled=tally.throttled,
            seconds=time.monotonic() - started,
        )

    def deliver(self, run_id: str) -> Run:
        """Deliver one run now (for job systems): claims it, sends it, returns its new state.

        Waits for its tenant's lease if another worker holds it (up to one lease period).
        """
        engine = self._engine
        run = engine._unit_of_work(lambda s: _get_run(s, run_id))
        integration = engine.integrations.get(run.integration_id)
        tally = _Tally()
        group = self._group_for(integration, lambda runs: tally.add(runs))
        if group is not None:
            deadline = time.monotonic() + self.lease.total_seconds()
            while not self._deliver_group(group, tally, _Budget(1), tally.add, only=[run_id]):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        return engine._unit_of_work(lambda s: _get_run(s, run_id))

    # -- grouping ---------------------------------------------------------------------------

    def _groups(self, report: Callable[[Sequence[Run]], None]) -> list[_Group]:
        engine = self._engine
        counts = engine._unit_of_work(lambda s: DeliveryQueue(s).due_counts(engine.clock()))
        if not counts:
            return []
        groups: dict[str, _Group] = {}
        for integration_id in counts:
            try:
                integration = engine.integrations.get(integration_id)
            except NotFound:
                continue
            group = self._group_for(integration, report)
            if group is None:
                continue
            existing = groups.get(group.key)
            if existing is not None:
                group = attrs.evolve(
                    existing, integrations=existing.integrations + group.integrations
                )
            groups[group.key] = group
        return list(groups.values())

    def _group_for(
        self, integration: Integration, report: Callable[[Sequence[Run]], None]
    ) -> _Group | None:
        """The tenant group of an integration, or ``None`` after parking runs it cannot send."""
        engine = self._engine
        now = engine.clock()
        if not integration.enabled:
            self._park(integration, RunStatus.DISABLED, "the integration is disabled", None, None)
            return None
        if integration.destination not in engine.plugins.destinations:
            self._park(
                integration,
                RunStatus.AWAITING_RETRY,
                f"the plugin for {integration.destination} is not installed; runs wait until it is",
                in_seconds(now, 3600),
                EventType.PERFORM_ERROR,
            )
            return None
        destination = engine.destination(integration.destination)
        if destination.oauth is None:
            # No authentication (e.g. a signed webhook): each integration is its own "tenant".
            return _Group(
                key=f"{integration.destination}:{integration.id}",
                destination=integration.destination,
                credential_id=None,
                integrations=(integration,),
            )
        if integration.credential_id is None:
            self._park(
                integration,
                RunStatus.AUTH_FAILED,
                "no credential is connected: connect one, then replay these runs",
                None,
                EventType.AUTHENTICATION_ERROR,
            )
            return None
        box = engine.secret_box
        try:
            credential = engine._unit_of_work(
                lambda s: CredentialRepository(s, box).get(integration.credential_id or "")
            )
        except NotFound:
            self._park(
                integration,
                RunStatus.AUTH_FAILED,
                "its credential was deleted: connect another one, then replay these runs",
                None,
                EventType.AUTHENTICATION_ERROR,
            )
            return None
        if credential.status is not CredentialStatus.COMPLETE or credential.tenant_id is None:
            self._park(
                integration,
                RunStatus.AUTH_FAILED,
                f"its credential {credential.display_name} cannot be used: reconnect it, then "
                "replay these runs",
                None,
                EventType.AUTHENTICATION_ERROR,
            )
            return None
        return _Group(
            key=f"{integration.destination}:{credential.tenant_id}",
            destination=integration.destination,
            credential_id=credential.id,
            integrations=(integration,),
        )

    def _park(
        self,
        integration: Integration,
        status: RunStatus,
        why: str,
        next_attempt_at: datetime | None,
        event: EventType | None,
    ) -> None:
        engine = self._engine
        now = engine.clock()

        def work(session: Any) -> tuple[int, Integration | None]:
            moved = DeliveryQueue(session).set_status(
                integration_id=integration.id,
                status=status,
                error=why,
                now=now,
                next_attempt_at=next_attempt_at,
            )
            if moved and event is not None:
                EventRepository(session).add(
                    Event(
                        id=new_id(),
                        type=event,
                        message=f"{integration.name}: {moved} run(s) not delivered: {why}",
                        created_at=now,
                        integration_id=integration.id,
                        details={"runs": moved, "status": status.value},
                    )
                )
                return moved, self._count_errors(session, integration.id, [True])
            return moved, None

        _, disabled = engine._unit_of_work(work)
        self._tell_disabled([disabled] if disabled is not None else [])

    # -- one tenant ---------------------------------------------------------------------------

    def _deliver_group(
        self,
        group: _Group,
        tally: _Tally,
        budget: _Budget,
        report: Callable[[Sequence[Run]], None],
        *,
        only: Sequence[str] | None = None,
    ) -> bool:
        """Deliver a tenant's due runs while holding its lease. False if the lease was busy."""
        engine = self._engine
        destination = engine.destination(group.destination)
        now = engine.clock()
        state = engine._unit_of_work(
            lambda s: DeliveryQueue(s).acquire_tenant(
                group.key, worker=self.worker_id, now=now, until=now + self.lease
            )
        )
        if state is None:
            return False
        with self._renewed_lock:
            self._renewed[group.key] = now
        limiter = TenantLimiter(
            destination.limits,
            state.counters,
            blocked_until=state.blocked_until,
            blocked_reason=state.blocked_reason,
        )
        batch = engine.plugins.has_hook(group.destination, "send_bills")
        singles = max(destination.limits.concurrency or 1, 1)
        integration_ids = [i.id for i in group.integrations]
        try:
            while True:
                now = engine.clock()
                limiter.unblock_if_over(now)
                if limiter.blocked_until is not None:
                    wait = (limiter.blocked_until - now).total_seconds()
                    if wait > engine.settings.max_inline_wait:
                        self._defer(integration_ids, limiter, only)
                        break
                    self._sleep(wait, group)
                    continue
                use_batch = batch
                if batch and destination.limits.batch_requests_per_minute:
                    # Some destinations (QuickBooks) cap batch requests separately from all
                    # requests: when the batch allowance is spent but the general one is not,
                    # single sends use what is left instead of waiting.
                    batch_wait = limiter.wait_time(now, batch=True)
                    if batch_wait > 0:
                        single_wait = limiter.wait_time(now, batch=False)
                        if single_wait > 0:
                            if not self._anything_due(integration_ids, only):
                                break  # do not wait for a window nothing needs
                            self._sleep(min(batch_wait, single_wait), group)
                            continue
                        use_batch = False
                size = max(destination.limits.batch_size, 1) if use_batch else singles
                wanted = budget.take(size)
                if wanted <= 0:
                    break
                claimed = engine._unit_of_work(
                    functools.partial(
                        # Only a plugin that sends batches must keep a batch's members together.
                        self._claim,
                        integration_ids,
                        wanted,
                        only,
                        resume_batches=use_batch or not batch,
                    )
                )
                budget.give(wanted - len(claimed))
                if not claimed:
                    if (
                        batch
                        and not use_batch
                        and engine._unit_of_work(
                            lambda s: DeliveryQueue(s).has_unsettled(
                                integration_ids, engine.clock()
                            )
                        )
                    ):
                        # Only unsettled batches are due: they wait for a batch slot.
                        self._sleep(limiter.wait_time(engine.clock(), batch=True), group)
                        continue
                    break
                finished = self._deliver_batch(group, destination, claimed, limiter, use_batch)
                report(finished)
                self._keep_lease(group)
                if only is not None:
                    break
        finally:
            with tally.lock:
                tally.requests += limiter.requests
                tally.throttled += limiter.throttled
            with self._renewed_lock:
                self._renewed.pop(group.key, None)
            engine._unit_of_work(
                lambda s: DeliveryQueue(s).release_tenant(
                    group.key,
                    worker=self.worker_id,
                    now=engine.clock(),
                    counters=limiter.counters(),
                    blocked_until=limiter.blocked_until,
                    blocked_reason=limiter.blocked_reason,
                )
            )
        return True

    def _anything_due(self, integration_ids: Sequence[str], only: Sequence[str] | None) -> bool:
        engine = self._engine
        counts = engine._unit_of_work(lambda s: DeliveryQueue(s).due_counts(engine.clock()))
        if only is not None:
            return bool(counts) and any(i in counts for i in integration_ids)
        return any(counts.get(i, 0) for i in integration_ids)

    def _claim(
        self,
        integration_ids: Sequence[str],
        limit: int,
        only: Sequence[str] | None,
        session: Any,
        *,
        resume_batches: bool = True,
    ) -> list[Run]:
        now = self._engine.clock()
        return DeliveryQueue(session).claim(
            integration_ids=integration_ids,
            limit=limit,
            worker=self.worker_id,
            now=now,
            lease_until=now + self.lease,
            run_ids=only,
            resume_batches=resume_batches,
        )

    def _defer(self, integration_ids: Sequence[str], limiter: TenantLimiter, only: Any) -> None:
        """A long block (a spent daily allowance): park the tenant's due runs until it ends."""
        engine = self._engine
        now = engine.clock()
        why = f"the destination asked to wait until {limiter.blocked_until:%Y-%m-%d %H:%M} UTC"
        if limiter.blocked_reason:
            why += f" ({limiter.blocked_reason})"

        def park(session: Any) -> None:
            queue = DeliveryQueue(session)
            for integration_id in integration_ids:
                queue.set_status(
                    integration_id=integration_id,
                    status=RunStatus.RATE_LIMIT_RETRY,
                    error=why,
                    now=now,
                    next_attempt_at=limiter.blocked_until,
                )

        engine._unit_of_work(park)

    def _sleep(self, seconds: float, group: _Group) -> None:
        engine = self._engine
        remaining = seconds
        while remaining > 0:
            # Keep the lease while waiting: another worker must not take the tenant meanwhile.
            step = min(remaining, self.lease.total_seconds() / 3)
            engine.sleep(step)
            remaining -= step
            self._keep_lease(group)

    def _keep_lease(self, group: _Group) -> None:
        """Extend the tenant's lease once a third of it has passed since the last extension.

        Not on every batch or wait: each extension is a write transaction, and on SQLite every
        writer queues behind the one before, so ten send threads waking for rate-limit slots
        would each hold up the claims and outcomes of every other tenant.
        """
        engine = self._engine
        now = engine.clock()
        with self._renewed_lock:
            last = self._renewed.get(group.key)
            if last is not None and now - last < self.lease / 3:
                return
            self._renewed[group.key] = now
        engine._unit_of_work(
            lambda s: DeliveryQueue(s).renew_tenant(
                group.key, worker=self.worker_id, until=now + self.lease
            )
        )

    def _wait_for_slot(self, limiter: TenantLimiter, group: _Group, *, batch: bool) -> None:
        engine = self._engine
        while True:
            wait = limiter.acquire(engine.clock(), batch=batch)
            if wait <= 0:
                return
            self._sleep(wait, group)

    # -- one batch -----------------------------------------------------------------------------

    def _deliver_batch(
        self,
        group: _Group,
        destination: Destination,
        claimed: Sequence[Run],
        limiter: TenantLimiter,
        batch: bool,
    ) -> list[Run]:
        engine = self._engine
        started = engine.clock()
        prepared = self._prepare(group, destination, claimed)
        outcomes: dict[str, SendResult | BaseException] = {
            p.run.id: p.failure for p in prepared if p.failure is not None
        }
        ready = [p for p in prepared if p.delivery is not None]
        unsettled: set[str] = set()

        def report_limit(scope: str, remaining: int) -> None:
            limiter.observe(scope, remaining, engine.clock())

        if ready and batch:
            deliveries = [p.delivery for p in ready if p.delivery is not None]
            self._wait_for_slot(limiter, group, batch=True)
            try:
                results = self._call(
                    group,
                    lambda connection: engine.plugins.call(
                        "send_bills",
                        group.destination,
                        connection=connection,
                        deliveries=deliveries,
                        idempotency_key=batch_idempotency_key(deliveries),
                    ),
                    report_limit=report_limit,
                )
                results = list(results or ())
                if len(results) != len(deliveries):
                    raise BillbridgeError(
                        f"the {group.destination} plugin returned {len(results)} outcomes for "
                        f"{len(deliveries)} deliveries"
                    )
                for item, result in zip(ready, results, strict=True):
                    outcomes[item.run.id] = result
            except Exception as exc:  # the whole request failed: every delivery shares it
                for item in ready:
                    outcomes[item.run.id] = exc
                if _ambiguous(exc):
                    # The destination may have carried the batch out: send the same members
                    # again, so the batch's idempotency key returns the original answer.
                    unsettled = {item.run.id for item in ready}
        elif ready:

            def send(item: _Prepared) -> tuple[str, SendResult | BaseException]:
                assert item.delivery is not None
                delivery = item.delivery
                self._wait_for_slot(limiter, group, batch=False)
                try:
                    result = self._call(
                        group,
                        lambda connection: _send_one(
                            engine, group.destination, connection, delivery
                        ),
                        report_limit=report_limit,
                    )
                except Exception as exc:
                    return item.run.id, exc
                return item.run.id, result

            workers = max(1, min(destination.limits.concurrency or 1, len(ready)))
            with ThreadPoolExecutor(workers, thread_name_prefix="billbridge-send") as pool:
                outcomes.update(pool.map(send, ready))
        for outcome in outcomes.values():
            if isinstance(outcome, RateLimited):
                limiter.block(
                    in_seconds(engine.clock(), outcome.retry_after), f"{outcome.scope} limit"
                )
        return self._record(group, destination, prepared, outcomes, started, unsettled)

    def _call(
        self,
        group: _Group,
        work: Callable[[Connection], Any],
        *,
        report_limit: Callable[[str, int], None],
    ) -> Any:
        """Run ``work`` with a connection to the group's tenant (token refreshed as needed)."""
        engine = self._engine
        if group.credential_id is not None:
            return engine.credentials.call(group.credential_id, work, report_limit=report_limit)
        connection = Connection(
            destination=group.destination,
            tenant_id=group.key.split(":", 1)[1],
            access_token=Secret(""),
            http=engine.http,
            api_base_url=engine.api_base_url(group.destination),
            report_limit=report_limit,
        )
        return work(connection)

    def _prepare(
        self, group: _Group, destination: Destination, claimed: Sequence[Run]
    ) -> list[_Prepared]:
        engine = self._engine
        integrations = {i.id: i for i in group.integrations}

        def load(session: Any) -> tuple[Any, Any, Any, Any]:
            queue = DeliveryQueue(session)
            wanted = [(r.bill_id, r.bill_version) for r in claimed]
            bills = engine.bill_cache.get_many(wanted)
            missing = [key for key in wanted if key not in bills]
            if missing:
                loaded = queue.bills(missing)
                engine.bill_cache.put_many(
                    loaded, Counter((r.bill_id, r.bill_version) for r in claimed)
                )
                bills.update(loaded)
            ledgers = {
                iid: queue.ledger(iid, [r.bill_id for r in claimed if r.integration_id == iid])
                for iid in {r.integration_id for r in claimed}
            }
            bill_keys = {key: mapping_keys(*pair) for key, pair in bills.items()}
            keys = set().union(*bill_keys.values())
            candidates = MappingRepository(session).for_entities(group.destination, sorted(keys))
            return bills, ledgers, candidates, bill_keys

        bills, ledgers, candidates, bill_keys = engine._unit_of_work(load)
        # Each delivery is given its own bill's mappings: index the batch's once, by entity
        # (stored order kept), instead of every delivery scanning all of them.
        by_entity: dict[tuple[str, str], list[Any]] = {}
        for mapping in candidates:
            by_entity.setdefault((mapping.m3ter_entity, mapping.m3ter_id), []).append(mapping)
        prepared: list[_Prepared] = []
        for run in claimed:
            integration = integrations[run.integration_id]
            item = _Prepared(run=run, integration=integration)
            prepared.append(item)
            found = bills.get((run.bill_id, run.bill_version))
            if found is None:
                item.failure = DestinationValidationError(
                    f"bill {run.bill_id} version {run.bill_version} is not stored: submit it again"
                )
                continue
            bill, account = found
            try:
                item.delivery = build_delivery(
                    run,
                    integration,
                    destination,
                    bill,
                    account,
                    [
                        mapping
                        for key in bill_keys[(run.bill_id, run.bill_version)]
                        for mapping in by_entity.get(key, ())
                    ],
                    ledgers[run.integration_id].get(run.bill_id),
                    engine.unseal,
                )
            except Exception as exc:
                item.failure = exc
        return prepared

    # -- outcomes -------------------------------------------------------------------------------

    def _record(
        self,
        group: _Group,
        destination: Destination,
        prepared: Sequence[_Prepared],
        outcomes: Mapping[str, SendResult | BaseException],
        started: datetime,
        unsettled: set[str],
    ) -> list[Run]:
        engine = self._engine
        now = engine.clock()
        finished: list[Run] = []
        attempts: list[RunAttempt] = []
        ledger: list[LedgerEntry] = []
        events: list[Event] = []
        errors_by_integration: dict[str, list[bool]] = {}
        # Members of a batch whose outcome is unknown retry together, at one time.
        shared_retry: list[datetime | None] = []
        for item in prepared:
            run = item.run
            outcome = outcomes.get(run.id) or BillbridgeError("no outcome was reported")
            if isinstance(outcome, SendResult):
                done = attrs.evolve(
                    run,
                    status=RunStatus.COMPLETE,
                    external_id=outcome.external_id,
                    external_url=outcome.url,
                    error=None,
                    next_attempt_at=None,
                    updated_at=now,
                )
                ledger.append(
                    LedgerEntry(
                        integration_id=run.integration_id,
                        bill_id=run.bill_id,
                        bill_version=run.bill_version,
                        external_id=outcome.external_id,
                        external_number=outcome.number,
                        external_url=outcome.url,
                        state=outcome.state,
                        updated_at=now,
                    )
                )
                errors_by_integration.setdefault(run.integration_id, []).append(False)
            else:
                status, text, retry_at, event_type = self._classify(outcome, run, now)
                if run.id in unsettled and not status.is_final:
                    if not shared_retry:
                        shared_retry.append(retry_at)
                    retry_at = shared_retry[0]
                done = attrs.evolve(
                    run, status=status, error=text, next_attempt_at=retry_at, updated_at=now
                )
                if event_type is not None:
                    events.append(
                        Event(
                            id=new_id(),
                            type=event_type,
                            message=_advice(
                                event_type, status, item.integration, destination, run, text
                            ),
                            created_at=now,
                            integration_id=run.integration_id,
                            run_id=run.id,
                            details={
                                "billId": run.bill_id,
                                "billVersion": run.bill_version,
                                "status": status.value,
                            },
                        )
                    )
                    errors_by_integration.setdefault(run.integration_id, []).append(True)
            finished.append(done)
            attempts.append(
                RunAttempt(
                    run_id=run.id,
                    number=run.attempts,
                    worker=self.worker_id,
                    started_at=started,
                    finished_at=now,
                    status=done.status,
                    error=done.error,
                )
            )

        def write(session: Any) -> list[Integration]:
            queue = DeliveryQueue(session)
            queue.finish(
                finished,
                self.worker_id,
                unsettled=[r.id for r in finished if r.id in unsettled and not r.status.is_final],
            )
            queue.add_attempts(attempts)
            queue.record_ledger(ledger)
            repo = EventRepository(session)
            for event in events:
                repo.add(event)
            # In the same transaction: the error count moves with the outcomes it counts.
            changed = [
                self._count_errors(session, integration_id, flags)
                for integration_id, flags in errors_by_integration.items()
            ]
            return [integration for integration in changed if integration is not None]

        disabled = engine._unit_of_work(write)
        engine.bill_cache.settle((r.bill_id, r.bill_version) for r in finished if r.status.is_final)
        self._tell_disabled(disabled)
        return finished

    def _classify(
        self, outcome: BaseException, run: Run, now: datetime
    ) -> tuple[RunStatus, str, datetime | None, EventType | None]:
        text = _describe(outcome)
        if isinstance(outcome, RateLimited):
            return RunStatus.RATE_LIMIT_RETRY, text, in_seconds(now, outcome.retry_after), None
        if isinstance(outcome, MissingMapping):
            event = (
                EventType.MISSING_ACCOUNT_MAPPING
                if outcome.entity == "Account"
                else EventType.VALIDATION_ERROR
            )
            return RunStatus.ERROR, text, None, event
        if isinstance(outcome, DestinationValidationError):
            return RunStatus.ERROR, text, None, EventType.VALIDATION_ERROR
        if isinstance(outcome, PermanentError):
            return RunStatus(outcome.status), text, None, EventType.PERFORM_ERROR
        if isinstance(outcome, AuthenticationFailed | TokenExpired):
            return RunStatus.AUTH_FAILED, text, None, EventType.AUTHENTICATION_ERROR
        if not isinstance(outcome, TransientError | DestinationError):
            # Not one of the contract's exceptions: a plugin bug or an unexpected failure.
            # Retried a bounded number of times, and logged for the plugin's author.
            log.error(
                "run %s: unexpected %s from the %s plugin: %s",
                run.id,
                type(outcome).__name__,
                "destination",
                outcome,
            )
        if run.attempts >= self.retry.max_attempts:
            return (
                RunStatus.TIMEOUT_LIMIT_EXCEEDED,
                f"gave up after {run.attempts} attempts; last: {text}",
                None,
                EventType.PERFORM_ERROR,
            )
        delay = self.retry.delay(run.attempts, self._rng)
        return RunStatus.AWAITING_RETRY, text, in_seconds(now, delay), None

    def _count_errors(
        self, session: Any, integration_id: str, flags: Sequence[bool]
    ) -> Integration | None:
        """Count successive error events (in the caller's transaction); disable at the threshold.

        :returns: the integration when this disabled it (see :meth:`_tell_disabled`).
        """
        repo = IntegrationRepository(session)
        try:
            integration = repo.get(integration_id)
        except NotFound:
            return None
        count = integration.consecutive_errors
        for is_error in flags:
            count = count + 1 if is_error else 0
        threshold = integration.config.auto_disable_threshold
        if integration.enabled and count >= threshold:
            now = self._engine.clock()
            changed = repo.update(
                attrs.evolve(integration, enabled=False, consecutive_errors=count, updated_at=now)
            )
            EventRepository(session).add(
                Event(
                    id=new_id(),
                    type=EventType.DISABLED,
                    message=(
                        f"{integration.name} was disabled after {count} successive errors. "
                        "Read its error events, fix the cause, then enable it again and "
                        "replay the failed runs."
                    ),
                    created_at=now,
                    integration_id=integration.id,
                    details={"successiveErrors": count},
                )
            )
            DeliveryQueue(session).set_status(
                integration_id=integration.id,
                status=RunStatus.DISABLED,
                error="the integration was disabled automatically",
                now=now,
                only_due=False,
            )
            return changed
        if count != integration.consecutive_errors:
            repo.set_consecutive_errors(integration.id, count)
        return None

    def _tell_disabled(self, disabled: Sequence[Integration]) -> None:
        """Tell plugins about integrations disabled automatically (after the commit)."""
        for integration in disabled:
            self._engine.plugins.broadcast(
                "integration_disabled",
                integration=integration,
                users_to_notify=list(integration.config.users_to_notify),
                reason=f"{integration.consecutive_errors} successive errors",
            )


# -- helpers ---------------------------------------------------------------------------------------


def build_delivery(
    run: Run,
    integration: Integration,
    destination: Destination,
    bill: Bill,
    account: Account,
    candidates: Iterable[Any],
    previous: LedgerEntry | None,
    unseal: Callable[[Mapping[str, Any]], dict[str, Any]],
) -> Delivery:
    """Everything a plugin needs to send one bill version through one integration.

    ``unseal`` decrypts the configuration's secrets (see :meth:`Engine.seal`).
    """
    mappings = resolve_mappings(integration, destination, account, candidates)
    require_account_mapping(integration, destination, account, mappings)
    filtered = exclude_lines(bill, integration.entity_config)
    if not filtered.line_items:
        raise DestinationValidationError(
            "the bill has no lines left after the integration's exclusions: nothing to send"
        )
    return Delivery(
        key=run.id,
        bill=filtered,
        account=account,
        config=apply_defaults(unseal(integration.destination_config), destination.schema),
        mappings=mappings,
        previous=previous
        if previous is not None and previous.bill_version <= bill.version
        else None,
        idempotency_key=idempotency_key(integration.id, bill.id, bill.version),
    )


def _ambiguous(exc: BaseException) -> bool:
    """True when a failed request may still have been carried out by the destination."""
    if isinstance(exc, RateLimited | TokenExpired | AuthenticationFailed):
        return False  # refused before anything was done
    return isinstance(exc, TransientError) or not isinstance(exc, BillbridgeError)


def _send_one(
    engine: Engine, destination: str, connection: Connection, delivery: Delivery
) -> SendResult:
    result = engine.plugins.call(
        "send_bill",
        destination,
        connection=connection,
        bill=delivery.bill,
        account=delivery.account,
        config=delivery.config,
        mappings=delivery.mappings,
        previous=delivery.previous,
        idempotency_key=delivery.idempotency_key,
    )
    if not isinstance(result, SendResult):
        raise BillbridgeError(
            f"the {destination} plugin's send_bill returned {type(result).__name__}"
        )
    return result


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    detail = getattr(exc, "detail", None)
    if detail and detail not in text:
        text = f"{text}: {detail}"
    return text


def _advice(
    event: EventType,
    status: RunStatus,
    integration: Integration,
    destination: Destination,
    run: Run,
    text: str,
) -> str:
    """An event message that says what happened and what to do about it."""
    where = f"{integration.name} ({destination.title}), bill {run.bill_id} v{run.bill_version}"
    then = f"then replay run {run.id}"
    title = destination.title
    if event is EventType.MISSING_ACCOUNT_MAPPING:
        return f"{where}: {text}; {then}."
    if event is EventType.VALIDATION_ERROR:
        return (
            f"{where}: {title} refused the invoice: {text}. Fix the mapping or "
            f"configuration, {then}."
        )
    if event is EventType.AUTHENTICATION_ERROR:
        return f"{where}: {text}. Reconnect the integration's credential, {then}."
    if status is RunStatus.INVOICE_ALREADY_PAID:
        return (
            f"{where}: the invoice is already paid or voided in {title}, so this version was not "
            f"applied: {text}. Adjust it there (for example with a credit note)."
        )
    if status is RunStatus.ACCOUNTING_PERIOD_CLOSED:
        return (
            f"{where}: the invoice date is in a closed period: {text}. Reopen the period or "
            f"change the date in {title}, {then}."
        )
    return f"{where}: {text}. Check {title}'s status, {then}."


def _get_run(session: Any, run_id: str) -> Run:
    from billbridge.store import RunRepository

    return RunRepository(session).get(run_id)
