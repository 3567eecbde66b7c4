"""Submitting bills: store each version once, route it, record every decision.

``engine.submit_bill(bill, account)`` is what a billing service calls when m3ter produces or
regenerates a bill; ``engine.submit_bills(pairs)`` does the same for many (a backfill), in
bounded chunks with set-based queries so memory stays flat and throughput high.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime

import attrs

from billbridge.domain.clock import Clock
from billbridge.domain.intake import AccountInput, BillInput, Received, receive
from billbridge.domain.models import Integration, Run, RunStatus, Skip
from billbridge.domain.routing import Routed, route_many
from billbridge.domain.schedule import ScheduleError, next_slot
from billbridge.services.bill_cache import BillCache
from billbridge.store import UnitOfWork, UnitOfWorkFactory, atomically, new_id

__all__ = ["SubmitCounts", "SubmitResult", "Submitter"]

log = logging.getLogger(__name__)


@attrs.frozen
class SubmitResult:
    """What submitting bills decided: runs queued, and skips with their reasons."""

    runs: tuple[Run, ...]
    skips: tuple[Skip, ...]
    bills: int = 1

    def __add__(self, other: SubmitResult) -> SubmitResult:
        return SubmitResult(
            self.runs + other.runs, self.skips + other.skips, self.bills + other.bills
        )


class Submitter:
    """Routes bills for an engine."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, bill_cache: BillCache) -> None:
        self._uow = uow
        self._clock = clock
        self._cache = bill_cache

    def submit(self, received: Iterable[Received], *, keep: bool = True) -> SubmitResult:
        """Store, route and record one chunk of bills in one unit of work.

        :param keep: return the runs and skips (False for backfills: only counts matter).
        """
        batch = list(received)
        items = [(r.bill, r.account) for r in batch]
        now = self._clock.now()

        def work(uow: UnitOfWork) -> SubmitResult:
            integrations = uow.integrations.list(entity_type="Bill")
            uow.bills.save_many(batch, received_at=now)
            bill_ids = [bill.id for bill, _ in items]
            runs, skips = _record(
                route_many(
                    items,
                    integrations,
                    delivered=uow.ledger.delivered_versions(bill_ids),
                    queued=uow.runs.queued_versions(bill_ids),
                ),
                now,
            )
            queued = uow.runs.add_many(runs)
            if len(queued) < len(runs):
                # Queued by a concurrent submission meanwhile: recorded as such, not twice.
                skips += [_raced(run, now) for run in runs if run.id not in queued]
                runs = [run for run in runs if run.id in queued]
            uow.skips.add_many(skips)
            # Before the commit, not after: once committed, another thread may claim these runs
            # at once, miss the cache, load the bill with its own count, and this count would
            # then be added on top (the bill kept until the cache's bound pushes it out).
            self._cache.put_many(
                {(b.id, b.version): (b, a) for b, a in items},
                Counter((r.bill_id, r.bill_version) for r in runs),
            )
            if keep:
                return SubmitResult(tuple(runs), tuple(skips), len(items))
            return SubmitResult((), (), len(items))

        return atomically(self._uow, work)

    def submit_many(
        self, pairs: Iterable[tuple[BillInput, AccountInput]], *, chunk: int = 500
    ) -> Iterator[SubmitCounts]:
        """Submit a stream of bills in chunks of ``chunk``; yields each chunk's counts.

        Only counts are kept: a backfill of 100,000 bills must not hold every run in memory.
        """
        buffer: list[Received] = []
        for bill, account in pairs:
            buffer.append(receive(bill, account))
            if len(buffer) >= chunk:
                yield SubmitCounts.of(self.submit(buffer))
                buffer = []
        if buffer:
            yield SubmitCounts.of(self.submit(buffer))


@attrs.frozen
class SubmitCounts:
    """How many bills one chunk held, and how many runs and skips routing made."""

    bills: int
    runs: int
    skips: int

    @classmethod
    def of(cls, result: SubmitResult) -> SubmitCounts:
        """The counts of a result."""
        return cls(result.bills, len(result.runs), len(result.skips))


def _slot(integration: Integration, now: datetime) -> datetime | None:
    """When a run of ``integration`` queued now is due: its schedule's next slot, or at once."""
    expression = integration.config.delivery_schedule
    if not expression or not expression.strip():
        return None
    try:
        return next_slot(expression, now, integration.config.schedule_timezone)
    except (ScheduleError, ValueError) as exc:
        # Refused when saved; one that stopped working (a time zone gone from this machine's
        # database) must not hold bills back: they go at once, and the log says why.
        log.error(
            "integration %s: schedule not used (%s); runs are due at once", integration.id, exc
        )
        return None


def _record(routed: Iterable[Routed], now: datetime) -> tuple[list[Run], list[Skip]]:
    """Each decision as what is stored: a WAITING run (due at the integration's next delivery
    slot when it has a schedule), or a skip with its reason."""
    runs: list[Run] = []
    skips: list[Skip] = []
    slots: dict[str, datetime | None] = {}
    for item in routed:
        bill, account, integration = item.bill, item.account, item.integration
        if item.decision.take:
            if integration.id not in slots:
                slots[integration.id] = _slot(integration, now)
            runs.append(
                Run(
                    id=new_id(),
                    integration_id=integration.id,
                    bill_id=bill.id,
                    bill_version=bill.version,
                    account_id=account.id,
                    status=RunStatus.WAITING,
                    created_at=now,
                    updated_at=now,
                    next_attempt_at=slots[integration.id],
                )
            )
        else:
            skips.append(
                Skip(
                    id=new_id(),
                    integration_id=integration.id,
                    bill_id=bill.id,
                    bill_version=bill.version,
                    account_id=account.id,
                    reason=item.decision.reason or "not taken",
                    created_at=now,
                )
            )
    return runs, skips


def _raced(run: Run, now: datetime) -> Skip:
    return Skip(
        id=new_id(),
        integration_id=run.integration_id,
        bill_id=run.bill_id,
        bill_version=run.bill_version,
        account_id=run.account_id,
        reason=f"version {run.bill_version} is already queued",
        created_at=now,
    )
