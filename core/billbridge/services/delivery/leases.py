"""Tenant leases: one worker at a time delivers to a tenant, across processes and machines.

A worker takes a tenant's lease before claiming its runs, keeps it while it waits for rate-limit
windows, and gives it back with the tenant's limit usage, so the next worker carries on from it.
A worker that dies loses the lease when it expires.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from billbridge.domain.clock import Clock
from billbridge.domain.ratelimit import TenantLimiter
from billbridge.store import UnitOfWorkFactory, atomically
from billbridge.store.repositories import TenantState

__all__ = ["TenantLeases"]


class TenantLeases:
    """The leases one worker holds (thread-safe: a worker delivers several tenants at once)."""

    def __init__(
        self, *, uow: UnitOfWorkFactory, clock: Clock, worker_id: str, lease: timedelta
    ) -> None:
        self._uow = uow
        self._clock = clock
        self.worker_id = worker_id
        self.lease = lease
        #: When this worker last extended each lease it holds (clock time).
        self._renewed: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> TenantState | None:
        """Take tenant ``key``'s lease; ``None`` when another worker holds it."""
        now = self._clock.now()
        state = atomically(
            self._uow,
            lambda uow: uow.tenants.acquire(
                key, worker=self.worker_id, now=now, until=now + self.lease
            ),
        )
        if state is not None:
            with self._lock:
                self._renewed[key] = now
        return state

    def keep(self, key: str) -> None:
        """Extend the lease once a third of it has passed since the last extension.

        Not on every batch or wait: each extension is a write transaction, and on SQLite every
        writer queues behind the one before, so ten send threads waking for rate-limit slots
        would each hold up the claims and outcomes of every other tenant.
        """
        now = self._clock.now()
        with self._lock:
            last = self._renewed.get(key)
            if last is not None and now - last < self.lease / 3:
                return
            self._renewed[key] = now
        atomically(
            self._uow,
            lambda uow: uow.tenants.renew(key, worker=self.worker_id, until=now + self.lease),
        )

    def sleep(self, seconds: float, key: str) -> None:
        """Wait ``seconds`` while keeping the lease, so that no other worker takes the tenant."""
        remaining = seconds
        while remaining > 0:
            step = min(remaining, self.lease.total_seconds() / 3)
            self._clock.sleep(step)
            remaining -= step
            self.keep(key)

    def release(self, key: str, limiter: TenantLimiter) -> None:
        """Give the lease back, saving the tenant's usage and any block."""
        with self._lock:
            self._renewed.pop(key, None)
        atomically(
            self._uow,
            lambda uow: uow.tenants.release(
                key,
                worker=self.worker_id,
                now=self._clock.now(),
                counters=limiter.counters(),
                blocked_until=limiter.blocked_until,
                blocked_reason=limiter.blocked_reason,
            ),
        )
