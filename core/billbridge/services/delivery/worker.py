"""Delivery: waiting runs become invoices, as fast as each destination allows, exactly once.

How a worker delivers (:meth:`Deliverer.deliver_pending`):

1. Due runs are grouped by destination tenant (:mod:`~billbridge.services.delivery.groups`);
   runs that cannot be sent are parked with a reason and an event.
2. For each tenant the worker takes a lease (:mod:`~billbridge.services.delivery.leases`), then
   repeatedly claims a batch of runs (STARTED, ``attempts + 1``), prepares them
   (:mod:`~billbridge.services.delivery.prepare`), waits for the tenant's rate limiter, and sends
   them (:mod:`~billbridge.services.delivery.send`) with a fresh access token.
3. Outcomes are written in one transaction per batch
   (:mod:`~billbridge.services.delivery.record`).

A worker that dies leaves its runs STARTED with a claim that expires; another worker claims
them again and sends them with the same idempotency key, so the destination returns the
invoice it already made instead of a second one.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Literal

import attrs

from billbridge.domain.clock import Clock
from billbridge.domain.models import Run, RunStatus
from billbridge.domain.ratelimit import TenantLimiter
from billbridge.domain.runs import RetryPolicy
from billbridge.plugin.contract import Destination
from billbridge.plugin.manager import PluginRegistry
from billbridge.services.delivery.groups import Grouper, TenantGroup
from billbridge.services.delivery.leases import TenantLeases
from billbridge.services.delivery.prepare import Preparer
from billbridge.services.delivery.record import Recorder
from billbridge.services.delivery.send import Sender
from billbridge.settings import Settings
from billbridge.store import UnitOfWork, UnitOfWorkFactory, atomically

__all__ = ["Deliverer", "DeliveryReport", "ProgressCallback"]

ProgressCallback = Callable[[int, int], None]
"""Called with ``(runs finished so far, runs due when delivery started)``."""

_Mode = Literal["batch", "single", "waited", "stop"]


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

    def add_requests(self, limiter: TenantLimiter) -> None:
        with self.lock:
            self.requests += limiter.requests
            self.throttled += limiter.throttled

    def report(self, started: float) -> DeliveryReport:
        """What was done since ``started`` (``time.monotonic()``)."""
        return DeliveryReport(
            attempted=self.attempted,
            statuses=dict(self.statuses),
            requests=self.requests,
            throttled=self.throttled,
            seconds=time.monotonic() - started,
        )


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
class _Tenant:
    """One tenant being delivered while this worker holds its lease."""

    group: TenantGroup
    destination: Destination
    limiter: TenantLimiter
    #: The plugin sends batches (``send_bills``).
    batch: bool
    #: Only these runs (``deliver(run_id)``), or every due run.
    only: Sequence[str] | None

    @property
    def singles(self) -> int:
        return max(self.destination.limits.concurrency or 1, 1)


class Deliverer:
    """Delivers runs; one per engine (thread-safe)."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        plugins: PluginRegistry,
        clock: Clock,
        settings: Settings,
        preparer: Preparer,
        sender: Sender,
        recorder_factory: Callable[[str, RetryPolicy], Recorder],
        retry: RetryPolicy | None = None,
    ) -> None:
        self._uow = uow
        self._plugins = plugins
        self._clock = clock
        self._settings = settings
        self.retry = retry or RetryPolicy()
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        #: How long a tenant lease and a run claim last before another worker may take over.
        self.lease = timedelta(seconds=settings.worker_lease_seconds)
        self._groups = Grouper(uow=uow, plugins=plugins, clock=clock)
        self._leases = TenantLeases(
            uow=uow, clock=clock, worker_id=self.worker_id, lease=self.lease
        )
        self._preparer = preparer
        self._sender = sender
        self._recorder = recorder_factory(self.worker_id, self.retry)
        #: Tenants a :meth:`deliver_tenant` call of this process is delivering.
        self._delivering: set[str] = set()
        self._delivering_lock = threading.Lock()

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
        now = self._clock.now()
        total = sum(atomically(self._uow, lambda uow: uow.runs.due_counts(now)).values())
        budget = _Budget(max_runs if max_runs is not None else 1 << 62)

        def report(runs: Sequence[Run]) -> None:
            tally.add(runs)
            if progress is not None:
                progress(tally.attempted, total)

        while budget.left > 0:
            groups = self._groups.due_groups()
            if not groups:
                break
            before = tally.attempted
            workers = max(1, min(threads or self._settings.worker_threads, len(groups)))
            with ThreadPoolExecutor(workers, thread_name_prefix="billbridge-deliver") as pool:
                done = list(
                    pool.map(lambda g: self._deliver_group(g, tally, budget, report), groups)
                )
            if not any(done) or tally.attempted == before:
                # Every tenant is leased elsewhere or blocked, or what is due cannot be claimed
                # yet (it waits behind an unsettled batch): nothing more to do now.
                break
        return tally.report(started)

    def deliver(self, run_id: str) -> Run:
        """Deliver one run now (for job systems): claims it, sends it, returns its new state.

        Waits for its tenant's lease if another worker holds it (up to one lease period), then
        returns the run as it is: STARTED when another worker is sending it at that moment.
        """
        run = atomically(self._uow, lambda uow: uow.runs.get(run_id))
        integration = atomically(self._uow, lambda uow: uow.integrations.get(run.integration_id))
        tally = _Tally()
        group = self._groups.group_for(integration)
        if group is not None:
            deadline = self._clock.time() + self.lease.total_seconds()
            while not self._deliver_group(group, tally, _Budget(1), tally.add, only=[run_id]):
                if self._clock.time() > deadline:
                    break
                self._clock.sleep(0.2)
        return atomically(self._uow, lambda uow: uow.runs.get(run_id))

    def next_due_at(self) -> datetime | None:
        """When the next waiting run becomes due (``None``: nothing is waiting)."""
        return atomically(self._uow, lambda uow: uow.runs.next_due_at())

    def due_tenants(self) -> list[TenantGroup]:
        """The tenants with runs due now, for a job system to deliver each in its own job
        (:meth:`deliver_tenant`). Runs that cannot be sent are parked, as a delivery pass
        would park them."""
        return self._groups.due_groups()

    def deliver_tenant(
        self, key: str, integration_ids: Sequence[str], *, max_runs: int | None = None
    ) -> DeliveryReport | None:
        """Deliver the due runs of these integrations to tenant ``key``, under its lease.

        What :meth:`deliver_pending` does for one tenant, for job systems that give each tenant
        its own job: ``key`` and ``integration_ids`` come from :meth:`due_tenants`. Integrations
        that no longer send to that tenant (reconnected, deleted) are left out.

        :param max_runs: stop after about this many runs (the rest wait for the next job).
        :returns: what was done; ``None`` when the tenant is being delivered already, by
            another worker (its lease) or by another call in this process.
        """
        started = time.monotonic()
        with self._delivering_lock:
            # The lease is this worker's: a second call here (a job system running jobs on
            # threads) would take it again, so it is kept out here.
            if key in self._delivering:
                return None
            self._delivering.add(key)
        try:
            wanted = set(integration_ids)
            integrations = [
                i
                for i in atomically(self._uow, lambda uow: uow.integrations.list())
                if i.id in wanted
            ]
            groups = [g for g in self._groups.groups_of(integrations) if g.key == key]
            tally = _Tally()
            budget = _Budget(max_runs if max_runs is not None else 1 << 62)
            if groups and not self._deliver_group(groups[0], tally, budget, tally.add):
                return None
            return tally.report(started)
        finally:
            with self._delivering_lock:
                self._delivering.discard(key)

    # -- one tenant ---------------------------------------------------------------------------

    def _deliver_group(
        self,
        group: TenantGroup,
        tally: _Tally,
        budget: _Budget,
        report: Callable[[Sequence[Run]], None],
        *,
        only: Sequence[str] | None = None,
    ) -> bool:
        """Deliver a tenant's due runs while holding its lease. False if the lease was busy."""
        destination = self._plugins.destination(group.destination)
        state = self._leases.acquire(group.key)
        if state is None:
            return False
        tenant = _Tenant(
            group=group,
            destination=destination,
            limiter=TenantLimiter(
                destination.limits,
                state.counters,
                blocked_until=state.blocked_until,
                blocked_reason=state.blocked_reason,
            ),
            batch=self._plugins.has_hook(group.destination, "send_bills"),
            only=only,
        )
        try:
            while self._step(tenant, budget, report):
                pass
        finally:
            tally.add_requests(tenant.limiter)
            self._leases.release(group.key, tenant.limiter)
        return True

    def _step(
        self, tenant: _Tenant, budget: _Budget, report: Callable[[Sequence[Run]], None]
    ) -> bool:
        """One round of waiting, or claiming and sending; False when the tenant is done for now."""
        key = tenant.group.key
        now = self._clock.now()
        limiter = tenant.limiter
        limiter.unblock_if_over(now)
        if limiter.blocked_until is not None:
            wait = (limiter.blocked_until - now).total_seconds()
            if wait > self._settings.max_inline_wait:
                self._defer(tenant)
                return False
            self._leases.sleep(wait, key)
            return True
        mode = self._mode(tenant, now)
        if mode in ("waited", "stop"):
            return mode == "waited"
        use_batch = mode == "batch"
        wanted = budget.take(
            max(tenant.destination.limits.batch_size, 1) if use_batch else tenant.singles
        )
        if wanted <= 0:
            return False
        # Only a plugin that sends batches must keep a batch's members together.
        claimed = self._claim(tenant, wanted, resume_batches=use_batch or not tenant.batch)
        budget.give(wanted - len(claimed))
        if not claimed:
            if tenant.batch and not use_batch and self._has_unsettled(tenant):
                # Only unsettled batches are due: they wait for a batch slot.
                self._leases.sleep(limiter.wait_time(self._clock.now(), batch=True), key)
                return True
            return False
        report(self._deliver_batch(tenant, claimed, batch=use_batch))
        self._leases.keep(key)
        return tenant.only is None

    def _mode(self, tenant: _Tenant, now: datetime) -> _Mode:
        """Send a batch or single runs now; or wait for a window (``waited``); or stop."""
        if not tenant.batch:
            return "single"
        if not tenant.destination.limits.batch_requests_per_minute:
            return "batch"
        # Some destinations (QuickBooks) cap batch requests separately from all requests: when
        # the batch allowance is spent but the general one is not, single sends use what is
        # left instead of waiting.
        batch_wait = tenant.limiter.wait_time(now, batch=True)
        if batch_wait <= 0:
            return "batch"
        single_wait = tenant.limiter.wait_time(now, batch=False)
        if single_wait <= 0:
            return "single"
        if not self._anything_due(tenant):
            return "stop"  # do not wait for a window nothing needs
        self._leases.sleep(min(batch_wait, single_wait), tenant.group.key)
        return "waited"

    def _anything_due(self, tenant: _Tenant) -> bool:
        now = self._clock.now()
        counts = atomically(self._uow, lambda uow: uow.runs.due_counts(now))
        return any(counts.get(i, 0) for i in tenant.group.integration_ids)

    def _has_unsettled(self, tenant: _Tenant) -> bool:
        now = self._clock.now()
        ids = tenant.group.integration_ids
        return atomically(self._uow, lambda uow: uow.runs.has_unsettled(ids, now))

    def _claim(self, tenant: _Tenant, limit: int, *, resume_batches: bool) -> list[Run]:
        now = self._clock.now()
        return atomically(
            self._uow,
            lambda uow: uow.runs.claim(
                integration_ids=tenant.group.integration_ids,
                limit=limit,
                worker=self.worker_id,
                now=now,
                lease_until=now + self.lease,
                run_ids=tenant.only,
                resume_batches=resume_batches,
            ),
        )

    def _defer(self, tenant: _Tenant) -> None:
        """A long block (a spent daily allowance): park the tenant's due runs until it ends."""
        limiter = tenant.limiter
        now = self._clock.now()
        why = f"the destination asked to wait until {limiter.blocked_until:%Y-%m-%d %H:%M} UTC"
        if limiter.blocked_reason:
            why += f" ({limiter.blocked_reason})"

        def park(uow: UnitOfWork) -> None:
            for integration_id in tenant.group.integration_ids:
                uow.runs.set_status(
                    integration_id=integration_id,
                    status=RunStatus.RATE_LIMIT_RETRY,
                    error=why,
                    now=now,
                    next_attempt_at=limiter.blocked_until,
                )

        atomically(self._uow, park)

    def _wait_for_slot(self, tenant: _Tenant, batch: bool) -> None:
        while True:
            wait = tenant.limiter.acquire(self._clock.now(), batch=batch)
            if wait <= 0:
                return
            self._leases.sleep(wait, tenant.group.key)

    def _deliver_batch(self, tenant: _Tenant, claimed: Sequence[Run], *, batch: bool) -> list[Run]:
        started = self._clock.now()
        prepared = self._preparer.prepare(tenant.group, tenant.destination, claimed)
        sent = self._sender.send(
            tenant.group,
            tenant.destination,
            prepared,
            tenant.limiter,
            batch=batch,
            wait_for_slot=lambda as_batch: self._wait_for_slot(tenant, as_batch),
        )
        return self._recorder.record(
            tenant.destination, prepared, sent.outcomes, started, sent.unsettled
        )
