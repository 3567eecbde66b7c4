"""Recording what a batch of attempts came to: runs, attempts, ledger, events, auto-disable.

Every outcome of one batch is written in one unit of work: COMPLETE runs with their external
document and a ledger entry; failures with the status, retry time and event that
:func:`~billbridge.domain.outcomes.classify` gives them. Successive error events are counted in
the same transaction, so the count always moves with the outcomes it counts, and an
integration that reaches its threshold is disabled there too.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import attrs

from billbridge.domain.clock import Clock
from billbridge.domain.models import (
    DocumentStatus,
    Event,
    EventType,
    Integration,
    LedgerEntry,
    Run,
    RunAttempt,
    RunStatus,
)
from billbridge.domain.outcomes import Classified, advice, classify
from billbridge.domain.runs import RetryPolicy, count_successive_errors
from billbridge.errors import BillbridgeError, NotFound, TransientError
from billbridge.logs import get_logger
from billbridge.plugin.contract import Delivery, Destination, SendResult
from billbridge.plugin.manager import PluginRegistry
from billbridge.services.bill_cache import BillCache
from billbridge.store import UnitOfWork, UnitOfWorkFactory, atomically, new_id

__all__ = ["Prepared", "Recorder", "count_errors", "tell_disabled"]

log = get_logger(__name__)


@attrs.define
class Prepared:
    """A claimed run, and either what to send for it or why it cannot be sent."""

    run: Run
    integration: Integration
    delivery: Delivery | None = None
    failure: BaseException | None = None


@attrs.define
class _Writes:
    """Everything one batch's outcomes write, gathered before the transaction."""

    finished: list[Run] = attrs.Factory(list)
    attempts: list[RunAttempt] = attrs.Factory(list)
    ledger: list[LedgerEntry] = attrs.Factory(list)
    events: list[Event] = attrs.Factory(list)
    errors: dict[str, list[bool]] = attrs.Factory(dict)
    unsettled: list[str] = attrs.Factory(list)


class Recorder:
    """Writes outcomes for one worker (thread-safe: it keeps no state between batches)."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        plugins: PluginRegistry,
        clock: Clock,
        bill_cache: BillCache,
        retry: RetryPolicy,
        worker_id: str,
    ) -> None:
        self._uow = uow
        self._plugins = plugins
        self._clock = clock
        self._cache = bill_cache
        self.retry = retry
        self._worker_id = worker_id
        self._rng = random.Random()

    def record(
        self,
        destination: Destination,
        prepared: Sequence[Prepared],
        outcomes: Mapping[str, SendResult | BaseException],
        started: datetime,
        unsettled: set[str],
    ) -> list[Run]:
        """Write the outcome of every prepared run; returns the runs as they ended."""
        now = self._clock.now()
        writes = _Writes()
        # Members of a batch whose outcome is unknown retry together, at one time.
        shared_retry: list[datetime | None] = []
        reads_status = self._plugins.has_hook(destination.key, "fetch_invoice_status")
        for item in prepared:
            run = item.run
            outcome = outcomes.get(run.id) or BillbridgeError("no outcome was reported")
            if isinstance(outcome, SendResult):
                check = _first_check(reads_status, item.integration, now)
                done = self._completed(run, outcome, now, writes, check)
            else:
                done = self._failed(item, destination, outcome, now, writes)
                if run.id in unsettled and not done.status.is_final:
                    if not shared_retry:
                        shared_retry.append(done.next_attempt_at)
                    done = attrs.evolve(done, next_attempt_at=shared_retry[0])
                    writes.unsettled.append(run.id)
            writes.finished.append(done)
            writes.attempts.append(
                RunAttempt(
                    run_id=run.id,
                    number=run.attempts,
                    worker=self._worker_id,
                    started_at=started,
                    finished_at=now,
                    status=done.status,
                    error=done.error,
                )
            )
        try:
            disabled = atomically(self._uow, lambda uow: self._write(uow, writes, now))
        except Exception as exc:
            disabled = self._write_fallback(destination, prepared, writes, exc, started, now)
        self._cache.settle(
            (r.bill_id, r.bill_version) for r in writes.finished if r.status.is_final
        )
        tell_disabled(self._plugins, disabled)
        return writes.finished

    @staticmethod
    def _completed(
        run: Run, result: SendResult, now: datetime, writes: _Writes, check: datetime | None
    ) -> Run:
        writes.ledger.append(
            LedgerEntry(
                integration_id=run.integration_id,
                bill_id=run.bill_id,
                bill_version=run.bill_version,
                external_id=result.external_id,
                external_number=result.number,
                external_url=result.url,
                state=result.state,
                updated_at=now,
                status=DocumentStatus(next_check_at=check),
            )
        )
        writes.errors.setdefault(run.integration_id, []).append(False)
        return attrs.evolve(
            run,
            status=RunStatus.COMPLETE,
            external_id=result.external_id,
            external_url=result.url,
            error=None,
            next_attempt_at=None,
            updated_at=now,
        )

    def _failed(
        self,
        item: Prepared,
        destination: Destination,
        outcome: BaseException,
        now: datetime,
        writes: _Writes,
    ) -> Run:
        run = item.run
        found: Classified = classify(outcome, run.attempts, now, self.retry, self._rng)
        if found.unexpected:
            # Not one of the contract's exceptions: logged for the plugin's author.
            log.error(
                "run %s: unexpected %s from the %s plugin: %s",
                run.id,
                type(outcome).__name__,
                destination.key,
                outcome,
            )
        if found.event is not None:
            writes.events.append(
                Event(
                    id=new_id(),
                    type=found.event,
                    message=advice(
                        found.event, found.status, item.integration, destination, run, found.text
                    ),
                    created_at=now,
                    integration_id=run.integration_id,
                    run_id=run.id,
                    details={
                        "billId": run.bill_id,
                        "billVersion": run.bill_version,
                        "status": found.status.value,
                    },
                )
            )
            if found.event.is_error:
                writes.errors.setdefault(run.integration_id, []).append(True)
        return attrs.evolve(
            run,
            status=found.status,
            error=found.text,
            next_attempt_at=found.retry_at,
            updated_at=now,
        )

    def _write_fallback(
        self,
        destination: Destination,
        prepared: Sequence[Prepared],
        writes: _Writes,
        failure: Exception,
        started: datetime,
        now: datetime,
    ) -> list[Integration]:
        """The outcomes could not be written (a value the store refuses, a database hiccup):
        write each attempt as failed, so that it still counts, and the run stops at the cap.

        Without this, the runs would stay claimed, be claimed again when the claim lapsed and
        be sent again, for ever: attempts are counted when written.
        """
        log.error(
            "could not record the outcome of %d run(s) for %s: %s",
            len(prepared),
            destination.key,
            type(failure).__name__,
            exc_info=failure,
        )
        why = TransientError(
            "billbridge could not record what the destination answered; the run is sent again "
            "(the destination recognises the repeat by its idempotency key)"
        )
        retry = _Writes()
        shared: list[datetime | None] = []
        for item in prepared:
            done = self._failed(item, destination, why, now, retry)
            if not done.status.is_final:
                # Sent again together, as one batch, with its key (see send.py): one time.
                shared = shared or [done.next_attempt_at]
                done = attrs.evolve(done, next_attempt_at=shared[0])
                retry.unsettled.append(done.id)
            retry.finished.append(done)
            retry.attempts.append(
                RunAttempt(
                    run_id=item.run.id,
                    number=item.run.attempts,
                    worker=self._worker_id,
                    started_at=started,
                    finished_at=now,
                    status=done.status,
                    error=done.error,
                )
            )
        writes.finished[:] = retry.finished
        # If this fails too, the database itself is unreachable: the worker loop backs off.
        return atomically(self._uow, lambda uow: self._write(uow, retry, now))

    def _write(self, uow: UnitOfWork, writes: _Writes, now: datetime) -> list[Integration]:
        uow.runs.finish(writes.finished, self._worker_id, unsettled=writes.unsettled)
        uow.runs.add_attempts(writes.attempts)
        uow.ledger.record(writes.ledger)
        for event in writes.events:
            uow.events.add(event)
        # In the same transaction: the error count moves with the outcomes it counts.
        changed = [
            count_errors(uow, integration_id, flags, now)
            for integration_id, flags in writes.errors.items()
        ]
        return [integration for integration in changed if integration is not None]


def _first_check(reads_status: bool, integration: Integration, now: datetime) -> datetime | None:
    """When a document just delivered is first read back (``None``: never): one interval of
    the integration's ``statusCheckMinutes`` later, when its plugin reads statuses at all."""
    minutes = integration.config.status_check_minutes
    if not reads_status or minutes <= 0:
        return None
    return now + timedelta(minutes=minutes)


def count_errors(
    uow: UnitOfWork, integration_id: str, flags: Sequence[bool], now: datetime
) -> Integration | None:
    """Count successive error events in ``uow``; disable the integration at its threshold.

    :returns: the integration when this disabled it (tell plugins with :func:`tell_disabled`
        after the commit).
    """
    try:
        integration = uow.integrations.get(integration_id)
    except NotFound:
        return None
    counted = count_successive_errors(
        integration.consecutive_errors,
        flags,
        threshold=integration.config.auto_disable_threshold,
        enabled=integration.enabled,
    )
    if counted.disable:
        changed = uow.integrations.update(
            attrs.evolve(
                integration, enabled=False, consecutive_errors=counted.count, updated_at=now
            )
        )
        uow.events.add(
            Event(
                id=new_id(),
                type=EventType.DISABLED,
                message=(
                    f"{integration.name} was disabled after {counted.count} successive errors. "
                    "Read its error events, fix the cause, then enable it again and "
                    "replay the failed runs."
                ),
                created_at=now,
                integration_id=integration.id,
                details={"successiveErrors": counted.count},
            )
        )
        uow.runs.set_status(
            integration_id=integration.id,
            status=RunStatus.DISABLED,
            error="the integration was disabled automatically",
            now=now,
            only_due=False,
        )
        return changed
    if counted.count != integration.consecutive_errors:
        uow.integrations.set_consecutive_errors(integration.id, counted.count)
    return None


def tell_disabled(plugins: PluginRegistry, disabled: Sequence[Integration]) -> None:
    """Tell every plugin about integrations disabled automatically (after the commit)."""
    for integration in disabled:
        plugins.broadcast(
            "integration_disabled",
            integration=integration,
            users_to_notify=list(integration.config.users_to_notify),
            reason=f"{integration.consecutive_errors} successive errors",
        )
