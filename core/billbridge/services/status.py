"""Status read-back: what delivered documents have become at their destination.

Delivery is one half of the job; the other is knowing that an invoice was paid, partly paid,
voided or deleted. Each delivered document is read back through its plugin's optional
``fetch_invoice_status`` hook on the schedule its integration sets (``statusCheckMinutes``,
hourly by default) until it is settled (paid in full, voided or deleted); then it is left
alone. What was read is stored in the delivery ledger, and a document that becomes paid or
voided raises ``integration.invoice.paid`` / ``integration.invoice.voided`` (informational:
they never count towards an integration's automatic disabling).

Read-backs keep the destination's limits exactly as deliveries do: documents are grouped by
tenant, the tenant's lease is taken (so a tenant is never read and written by two workers at
once) and its :class:`~billbridge.domain.ratelimit.TenantLimiter` carries on from the usage the
last holder saved. Each call reads up to ``Limits.status_batch_size`` documents of one
integration and first waits for ``Limits.status_requests`` slots. A refused or rate-limited read
changes no run and loses nothing: the documents keep what was read before, record why this read
failed, and are read again later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import attrs

from billbridge.domain.clock import Clock
from billbridge.domain.models import (
    DocumentStatus,
    Event,
    EventType,
    Integration,
    InvoiceState,
    LedgerEntry,
)
from billbridge.domain.outcomes import describe
from billbridge.domain.preparation import apply_defaults
from billbridge.domain.ratelimit import TenantLimiter, in_seconds
from billbridge.errors import AuthenticationFailed, BillbridgeError, RateLimited, TokenExpired
from billbridge.plugin.contract import Destination, InvoiceStatus
from billbridge.plugin.manager import PluginRegistry
from billbridge.services.delivery.groups import Grouper, TenantGroup
from billbridge.services.delivery.leases import TenantLeases
from billbridge.services.delivery.send import Sender
from billbridge.settings import Settings
from billbridge.store import UnitOfWork, UnitOfWorkFactory, atomically, new_id

__all__ = ["HOOK", "StatusPoller", "StatusReport"]

log = logging.getLogger(__name__)

HOOK = "fetch_invoice_status"
#: Documents looked at per pass (the rest wait for the next pass).
PASS_LIMIT = 500
#: When documents of a tenant another worker holds are tried again.
BUSY_RETRY = timedelta(seconds=60)


@attrs.frozen
class StatusReport:
    """What one :meth:`StatusPoller.poll` did."""

    #: Documents the destinations answered for.
    read: int = 0
    #: Of those, documents whose state changed.
    changed: int = 0
    #: Documents whose read failed (kept as they were, read again later).
    failed: int = 0
    #: Documents left for a later pass (their tenant was busy or blocked).
    deferred: int = 0
    #: Events raised (``integration.invoice.paid`` / ``.voided``).
    events: int = 0

    def __add__(self, other: StatusReport) -> StatusReport:
        mine, theirs = attrs.astuple(self), attrs.astuple(other)
        return StatusReport(*(a + b for a, b in zip(mine, theirs, strict=True)))


@attrs.define
class _Tenant:
    group: TenantGroup
    destination: Destination
    #: Due documents by integration id.
    documents: dict[str, list[LedgerEntry]] = attrs.Factory(dict)


class StatusPoller:
    """Reads delivered documents' statuses back; one per engine (thread-safe)."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        plugins: PluginRegistry,
        clock: Clock,
        settings: Settings,
        sender: Sender,
        unseal: Callable[[Mapping[str, Any]], dict[str, Any]],
        worker_id: str,
    ) -> None:
        self._uow = uow
        self._plugins = plugins
        self._clock = clock
        self._settings = settings
        self._sender = sender
        self._unseal = unseal
        self._groups = Grouper(uow=uow, plugins=plugins, clock=clock)
        self._leases = TenantLeases(
            uow=uow,
            clock=clock,
            worker_id=worker_id,
            lease=timedelta(seconds=settings.worker_lease_seconds),
        )

    def next_check_at(self) -> datetime | None:
        """When the earliest scheduled read-back is due (``None``: nothing is scheduled)."""
        return atomically(self._uow, lambda uow: uow.ledger.next_status_check_at())

    def poll(self, *, limit: int = PASS_LIMIT) -> StatusReport:
        """Read back every document due now (at most ``limit``), tenant by tenant."""
        now = self._clock.now()

        def load(uow: UnitOfWork) -> tuple[list[LedgerEntry], dict[str, Integration]]:
            due = uow.ledger.due_for_status(now, limit=limit)
            wanted = {e.integration_id for e in due}
            integrations = {i.id: i for i in uow.integrations.list() if i.id in wanted}
            return due, integrations

        due, integrations = atomically(self._uow, load)
        if not due:
            return StatusReport()
        tenants, report = self._tenants(due, integrations, now)
        if not tenants:
            return report
        workers = max(1, min(self._settings.worker_threads, len(tenants)))
        with ThreadPoolExecutor(workers, thread_name_prefix="billbridge-status") as pool:
            for done in pool.map(lambda t: self._poll_tenant(t, integrations), tenants):
                report += done
        return report

    # -- grouping ---------------------------------------------------------------------------------

    def _tenants(
        self,
        due: Sequence[LedgerEntry],
        integrations: Mapping[str, Integration],
        now: datetime,
    ) -> tuple[list[_Tenant], StatusReport]:
        """Due documents by tenant; those that cannot be read are rescheduled here."""
        tenants: dict[str, _Tenant] = {}
        never: list[tuple[str, str]] = []
        unreachable: dict[tuple[str, datetime | None], list[LedgerEntry]] = {}
        for entry in due:
            integration = integrations.get(entry.integration_id)
            if integration is None:
                continue  # deleted meanwhile: its ledger went with it
            minutes = integration.config.status_check_minutes
            key = integration.destination
            if (
                minutes <= 0
                or key not in self._plugins.destinations
                or not self._plugins.has_hook(key, HOOK)
            ):
                never.append((entry.integration_id, entry.bill_id))
                continue
            group = self._groups.tenant_of(integration)
            if isinstance(group, str):
                why = f"not read back: {group}"
                unreachable.setdefault((why, now + timedelta(minutes=minutes)), []).append(entry)
                continue
            tenant = tenants.setdefault(group.key, _Tenant(group, self._plugins.destination(key)))
            tenant.documents.setdefault(integration.id, []).append(entry)

        def reschedule(uow: UnitOfWork) -> None:
            if never:
                uow.ledger.reschedule_status(never, None)
            for (why, when), entries in unreachable.items():
                uow.ledger.record_status_failure(
                    entries, error=why, checked_at=now, next_check_at=when
                )

        if never or unreachable:
            atomically(self._uow, reschedule)
        failed = sum(len(entries) for entries in unreachable.values())
        return list(tenants.values()), StatusReport(failed=failed)

    # -- one tenant -------------------------------------------------------------------------------

    def _poll_tenant(
        self, tenant: _Tenant, integrations: Mapping[str, Integration]
    ) -> StatusReport:
        key = tenant.group.key
        waiting = sum(len(entries) for entries in tenant.documents.values())
        state = self._leases.acquire(key)
        if state is None:
            # A worker is delivering to this tenant (or reading it): in a minute, so that a
            # worker loop waiting for the next read-back does not spin meanwhile.
            later = self._clock.now() + BUSY_RETRY
            keys = [(e.integration_id, e.bill_id) for es in tenant.documents.values() for e in es]
            atomically(self._uow, lambda uow: uow.ledger.reschedule_status(keys, later))
            return StatusReport(deferred=waiting)
        limits = tenant.destination.limits
        limiter = TenantLimiter(
            limits,
            state.counters,
            blocked_until=state.blocked_until,
            blocked_reason=state.blocked_reason,
        )
        report = StatusReport()
        try:
            for integration_id, entries in tenant.documents.items():
                integration = integrations[integration_id]
                config = apply_defaults(
                    self._unseal(integration.destination_config), tenant.destination.schema
                )
                size = max(limits.status_batch_size, 1)
                for start in range(0, len(entries), size):
                    chunk = entries[start : start + size]
                    if not self._wait_for_slots(tenant, limiter):
                        report += self._deferred(entries[start:], integration, limiter)
                        break
                    outcome = self._read(tenant, limiter, chunk, config)
                    report += self._record(tenant, integration, chunk, outcome)
                    if isinstance(outcome, AuthenticationFailed | TokenExpired):
                        # The credential is refused: the rest would be refused the same way.
                        rest = entries[start + size :]
                        if rest:
                            report += self._record(tenant, integration, rest, outcome)
                        break
                self._leases.keep(key)
        finally:
            self._leases.release(key, limiter)
        return report

    def _wait_for_slots(self, tenant: _Tenant, limiter: TenantLimiter) -> bool:
        """Take ``status_requests`` rate-limit slots, waiting for them while holding the lease;
        False when the tenant is blocked for longer than is worth waiting (a spent day)."""
        key = tenant.group.key
        for _ in range(max(tenant.destination.limits.status_requests, 1)):
            while True:
                now = self._clock.now()
                limiter.unblock_if_over(now)
                wait = limiter.acquire(now)
                if wait <= 0:
                    break
                if wait > self._settings.max_inline_wait:
                    return False
                self._leases.sleep(wait, key)
        return True

    def _read(
        self,
        tenant: _Tenant,
        limiter: TenantLimiter,
        documents: Sequence[LedgerEntry],
        config: Mapping[str, Any],
    ) -> list[InvoiceStatus] | BaseException:
        """The plugin's answer for ``documents``, or the exception the whole read ended with."""

        def report_limit(scope: str, remaining: int) -> None:
            limiter.observe(scope, remaining, self._clock.now())

        destination = tenant.destination.key
        try:
            answer = self._sender.call(
                tenant.group,
                lambda connection: self._plugins.call(
                    HOOK,
                    destination,
                    connection=connection,
                    documents=list(documents),
                    config=config,
                ),
                report_limit=report_limit,
            )
        except RateLimited as exc:
            limiter.block(in_seconds(self._clock.now(), exc.retry_after), f"{exc.scope} limit")
            return exc
        except Exception as exc:
            if not isinstance(exc, BillbridgeError):
                log.error(
                    "unexpected %s from the %s plugin's %s: %s",
                    type(exc).__name__,
                    destination,
                    HOOK,
                    exc,
                )
            return exc
        statuses = list(answer or ())
        wrong = [type(s).__name__ for s in statuses if not isinstance(s, InvoiceStatus)]
        if wrong:
            return BillbridgeError(
                f"the {destination} plugin's {HOOK} returned {', '.join(sorted(set(wrong)))} "
                "instead of InvoiceStatus values"
            )
        return statuses

    # -- recording --------------------------------------------------------------------------------

    def _deferred(
        self, entries: Sequence[LedgerEntry], integration: Integration, limiter: TenantLimiter
    ) -> StatusReport:
        """The tenant is blocked for long (a spent daily allowance): read these when it ends."""
        now = self._clock.now()
        until = limiter.blocked_until or now + timedelta(
            minutes=integration.config.status_check_minutes
        )
        why = f"not read back: the destination asked to wait until {until:%Y-%m-%d %H:%M} UTC"
        if limiter.blocked_reason:
            why += f" ({limiter.blocked_reason})"
        atomically(
            self._uow,
            lambda uow: uow.ledger.record_status_failure(
                entries, error=why, checked_at=now, next_check_at=until
            ),
        )
        return StatusReport(deferred=len(entries))

    def _record(
        self,
        tenant: _Tenant,
        integration: Integration,
        documents: Sequence[LedgerEntry],
        outcome: list[InvoiceStatus] | BaseException,
    ) -> StatusReport:
        now = self._clock.now()
        interval = timedelta(minutes=max(integration.config.status_check_minutes, 1))
        title = tenant.destination.system_name or tenant.destination.title
        if isinstance(outcome, BaseException):
            retry_at = now + interval
            if isinstance(outcome, RateLimited):
                retry_at = max(in_seconds(now, outcome.retry_after), now)
            why = f"reading the status back from {title} failed: {describe(outcome)}"
            atomically(
                self._uow,
                lambda uow: uow.ledger.record_status_failure(
                    documents, error=why, checked_at=now, next_check_at=retry_at
                ),
            )
            return StatusReport(failed=len(documents))
        by_id = {status.external_id: status for status in outcome}
        read: list[LedgerEntry] = []
        missing: list[LedgerEntry] = []
        events: list[Event] = []
        changed = 0
        for entry in documents:
            status = by_id.get(entry.external_id)
            if status is None:
                missing.append(entry)
                continue
            stored = _stored(status, now, interval)
            read.append(attrs.evolve(entry, status=stored))
            if stored.state is not entry.status.state:
                changed += 1
                event = _event(integration, entry, stored, title, now)
                if event is not None:
                    events.append(event)

        def write(uow: UnitOfWork) -> None:
            uow.ledger.record_status(read)
            if missing:
                uow.ledger.record_status_failure(
                    missing,
                    error=f"{title} did not return this document when its status was read",
                    checked_at=now,
                    next_check_at=now + interval,
                )
            for event in events:
                uow.events.add(event)

        atomically(self._uow, write)
        return StatusReport(
            read=len(read), changed=changed, failed=len(missing), events=len(events)
        )


def _stored(status: InvoiceStatus, now: datetime, interval: timedelta) -> DocumentStatus:
    """What the ledger keeps of a read-back; settled documents are not read again."""
    return DocumentStatus(
        state=status.state,
        total=status.total,
        amount_due=status.amount_due,
        amount_paid=status.amount_paid,
        amount_credited=status.amount_credited,
        currency=status.currency,
        paid_on=status.paid_on,
        payments=tuple(p.to_dict() for p in status.payments),
        checked_at=now,
        next_check_at=None if status.state.settled else now + interval,
        error=None,
    )


def _event(
    integration: Integration,
    entry: LedgerEntry,
    status: DocumentStatus,
    title: str,
    now: datetime,
) -> Event | None:
    """``integration.invoice.paid`` / ``.voided`` when a document became so; else ``None``."""
    document = entry.external_number or entry.external_id
    where = f"{integration.name}: invoice {document} (bill {entry.bill_id} v{entry.bill_version})"
    money = f" ({status.currency} {status.amount_paid})" if status.currency else ""
    if status.state is InvoiceState.PAID:
        when = f" on {status.paid_on.isoformat()}" if status.paid_on is not None else ""
        kind = EventType.INVOICE_PAID
        message = f"{where} was paid in full in {title}{when}{money}."
    elif status.state in (InvoiceState.VOIDED, InvoiceState.DELETED):
        previous = entry.status.state
        if previous in (InvoiceState.VOIDED, InvoiceState.DELETED):
            return None  # voided, then deleted: told once
        kind = EventType.INVOICE_VOIDED
        message = (
            f"{where} was {status.state.value} in {title}; a new version of the bill will not "
            "be sent over it."
        )
    else:
        return None
    details: dict[str, Any] = {
        "billId": entry.bill_id,
        "billVersion": entry.bill_version,
        "externalId": entry.external_id,
        "state": status.state.value,
    }
    if entry.external_number:
        details["externalNumber"] = entry.external_number
    for name, value in (
        ("total", status.total),
        ("amountPaid", status.amount_paid),
        ("amountCredited", status.amount_credited),
        ("currency", status.currency),
        ("paidOn", status.paid_on.isoformat() if status.paid_on else None),
    ):
        if value is not None:
            details[name] = value
    return Event(
        id=new_id(),
        type=kind,
        message=message,
        created_at=now,
        integration_id=integration.id,
        details=details,
    )
