"""Runs (list, attempts, replay) and routing skips: ``engine.runs`` and ``engine.skips``."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import datetime

from billbridge.domain.clock import Clock
from billbridge.domain.models import DocumentStatus, InvoiceState, Run, RunAttempt, RunStatus, Skip
from billbridge.errors import Conflict
from billbridge.store import UnitOfWork, UnitOfWorkFactory, atomically, new_id

__all__ = ["Runs", "Skips"]


class Runs:
    """``engine.runs``: list, show, and replay delivery runs."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def list(
        self,
        *,
        integration_id: str | None = None,
        bill_id: str | None = None,
        status: RunStatus | str | Iterable[RunStatus | str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = 100,
        offset: int = 0,
        before: tuple[datetime, str] | None = None,
        invoice_state: InvoiceState | str | Iterable[InvoiceState | str] | None = None,
    ) -> builtins.list[Run]:
        """Runs matching every filter, newest first (``since`` inclusive, ``until`` not).

        :param before: keyset paging: runs older than this ``(created_at, id)`` only.
        :param invoice_state: only runs whose invoice was read back in this state (or one of
            these): ``paid``, ``partly_paid``, ``unpaid``, ``voided``, ``deleted``.
        """
        statuses = _statuses(status)
        states = _invoice_states(invoice_state)
        return atomically(
            self._uow,
            lambda uow: uow.runs.list(
                integration_id=integration_id,
                bill_id=bill_id,
                status=statuses,
                since=since,
                until=until,
                limit=limit,
                offset=offset,
                before=before,
                invoice_state=states,
            ),
        )

    def count(
        self,
        *,
        integration_id: str | None = None,
        bill_id: str | None = None,
        status: RunStatus | str | Iterable[RunStatus | str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        invoice_state: InvoiceState | str | Iterable[InvoiceState | str] | None = None,
    ) -> int:
        """How many runs :meth:`list` would return without paging."""
        statuses = _statuses(status)
        states = _invoice_states(invoice_state)
        return atomically(
            self._uow,
            lambda uow: uow.runs.count(
                integration_id=integration_id,
                bill_id=bill_id,
                status=statuses,
                since=since,
                until=until,
                invoice_state=states,
            ),
        )

    def invoices(self, runs: Iterable[Run]) -> dict[str, DocumentStatus]:
        """What each run's invoice was last read back as, by run id (runs that delivered no
        invoice, or whose invoice was replaced by another since, are left out)."""
        delivered = [r for r in runs if r.external_id is not None]
        if not delivered:
            return {}
        entries = atomically(
            self._uow,
            lambda uow: uow.ledger.get_pairs((r.integration_id, r.bill_id) for r in delivered),
        )
        found: dict[str, DocumentStatus] = {}
        for run in delivered:
            entry = entries.get((run.integration_id, run.bill_id))
            if entry is not None and entry.external_id == run.external_id:
                found[run.id] = entry.status
        return found

    def get(self, run_id: str) -> Run:
        """One run; raises :class:`~billbridge.errors.NotFound`."""
        return atomically(self._uow, lambda uow: uow.runs.get(run_id))

    def attempts(self, run_id: str) -> builtins.list[RunAttempt]:
        """The run's attempts, in order."""
        self.get(run_id)
        return atomically(self._uow, lambda uow: uow.runs.attempts(run_id))

    def replay(self, run_id: str) -> Run:
        """A new WAITING run for the same bill version and integration, pointing to this one.

        Refused while the run (or another run for the same bill version) is still open.
        """
        original = self.get(run_id)
        if not original.status.is_final:
            raise Conflict(
                f"run {run_id} is still {original.status.value}: it cannot be replayed yet"
            )
        now = self._clock.now()

        def work(uow: UnitOfWork) -> Run:
            delivered = uow.ledger.get(original.integration_id, original.bill_id)
            if delivered is not None and delivered.bill_version > original.bill_version:
                raise Conflict(
                    f"run {run_id} is for version {original.bill_version} of bill "
                    f"{original.bill_id}, but version {delivered.bill_version} was delivered "
                    f"since ({delivered.external_number or delivered.external_id}): replaying "
                    "it would overwrite the newer invoice; replay a run of the newest version"
                )
            queued = uow.runs.queued_versions([original.bill_id]).get(
                (original.integration_id, original.bill_id), set()
            )
            if original.bill_version in queued:
                raise Conflict(
                    f"bill {original.bill_id} v{original.bill_version} already has an open run "
                    "for this integration"
                )
            if any(version > original.bill_version for version in queued):
                raise Conflict(
                    f"bill {original.bill_id} has a newer version (v{max(queued)}) waiting for "
                    f"this integration: it goes instead of v{original.bill_version}"
                )
            replay = Run(
                id=new_id(),
                integration_id=original.integration_id,
                bill_id=original.bill_id,
                bill_version=original.bill_version,
                account_id=original.account_id,
                status=RunStatus.WAITING,
                created_at=now,
                updated_at=now,
                replayed_from=original.id,
            )
            return uow.runs.add(replay)

        return atomically(self._uow, work)


def _statuses(
    status: RunStatus | str | Iterable[RunStatus | str] | None,
) -> list[RunStatus] | None:
    if status is None:
        return None
    return [RunStatus(status)] if isinstance(status, str) else [RunStatus(s) for s in status]


def _invoice_states(
    state: InvoiceState | str | Iterable[InvoiceState | str] | None,
) -> list[InvoiceState] | None:
    if state is None:
        return None
    return [InvoiceState(state)] if isinstance(state, str) else [InvoiceState(s) for s in state]


class Skips:
    """``engine.skips``: routing decisions not to send, with their reasons."""

    def __init__(self, *, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def list(
        self,
        *,
        integration_id: str | None = None,
        bill_id: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
        before: tuple[datetime, str] | None = None,
    ) -> builtins.list[Skip]:
        """Skips, newest first (``before``: keyset paging, as for runs)."""
        return atomically(
            self._uow,
            lambda uow: uow.skips.list(
                integration_id=integration_id,
                bill_id=bill_id,
                limit=limit,
                offset=offset,
                before=before,
            ),
        )

    def count(self, *, integration_id: str | None = None, bill_id: str | None = None) -> int:
        """How many skips :meth:`list` would return without paging."""
        return atomically(
            self._uow, lambda uow: uow.skips.count(integration_id=integration_id, bill_id=bill_id)
        )
