"""Delivery runs and their attempts, including the queue's bulk operations.

Delivery moves thousands of runs at month-end, so besides reading and writing single runs this
repository works in bulk (one statement for many rows) and owns what only the queue needs:
claiming runs so that no two workers deliver the same one, and writing a batch's outcomes.
"""

from __future__ import annotations

import builtins
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, case, exists, func, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from billbridge.domain.models import InvoiceState, Run, RunAttempt, RunStatus
from billbridge.store.common import before as before_key
from billbridge.store.common import (
    chunks,
    count_of,
    insert_or_conflict,
    insert_rows,
    is_postgres,
    page,
    require_row,
    rowcount,
)
from billbridge.store.tables import (
    OPEN_RUN_STATUSES,
    IntegrationRow,
    LedgerRow,
    RunAttemptRow,
    RunRow,
    new_id,
    open_runs,
    open_runs_literal,
)

__all__ = ["DUE_STATUSES", "OPEN_STATUSES", "RunRepository"]

#: Statuses of runs waiting to be (re)tried when their time comes.
DUE_STATUSES = (RunStatus.WAITING, RunStatus.AWAITING_RETRY, RunStatus.RATE_LIMIT_RETRY)
#: Statuses of runs that are not finished (the schema's partial index spells them out).
OPEN_STATUSES = tuple(RunStatus(value) for value in OPEN_RUN_STATUSES)


def _free() -> Any:
    """Runs not held back behind a batch: a bill waits while another run of it (through the
    same integration) is in a batch whose outcome is not settled yet.

    That batch goes again first, exactly as it was, so a newer version can never overtake it
    (and a create whose answer was lost is not made a second time beside it). Members of
    batches are free themselves; the set of held bills is small (unsettled batches are rare),
    so the database computes it once per statement.
    """
    other = aliased(RunRow)
    held = select(other.integration_id, other.bill_id).where(
        other.batch_key.is_not(None), other.status.in_([s.value for s in OPEN_STATUSES])
    )
    return or_(
        RunRow.batch_key.is_not(None),
        tuple_(RunRow.integration_id, RunRow.bill_id).not_in(held),
    )


def _due(now: datetime) -> Any:
    """Runs that may be delivered now: waiting and due, or claimed by a worker that vanished.

    The leading :func:`open_runs` term is implied by the rest; it is there so that the
    database can use the partial index of open runs (see :data:`ix_runs_open`).
    """
    return and_(
        open_runs(),
        or_(
            and_(
                RunRow.status.in_([s.value for s in DUE_STATUSES]),
                or_(RunRow.next_attempt_at.is_(None), RunRow.next_attempt_at <= now),
            ),
            and_(RunRow.status == RunStatus.STARTED.value, RunRow.claimed_until < now),
        ),
        _free(),
    )


#: Writes one run's outcome (executed with many parameter sets). Built once: constructing the
#: statement, its CASE above all, cost more than running it for a batch of 50.
_FINISH = (
    update(RunRow)
    .where(RunRow.id == bindparam("rid"), RunRow.claimed_by == bindparam("worker"))
    .values(
        status=bindparam("status"),
        external_id=bindparam("external_id"),
        external_url=bindparam("external_url"),
        error=bindparam("error"),
        next_attempt_at=bindparam("next_attempt_at"),
        updated_at=bindparam("updated_at"),
        claimed_by=None,
        claimed_until=None,
        batch_key=case((bindparam("settled"), None), else_=RunRow.batch_key),
    )
)


def _values(run: Run) -> dict[str, Any]:
    # The worker lease (claimed_by/claimed_until) is not part of Run and is left alone.
    return {
        "integration_id": run.integration_id,
        "bill_id": run.bill_id,
        "bill_version": run.bill_version,
        "account_id": run.account_id,
        "status": run.status.value,
        "attempts": run.attempts,
        "external_id": run.external_id,
        "external_url": run.external_url,
        "error": run.error,
        "replayed_from": run.replayed_from,
        "next_attempt_at": run.next_attempt_at,
        "updated_at": run.updated_at,
    }


def _to_domain(row: RunRow) -> Run:
    return Run(
        id=row.id,
        integration_id=row.integration_id,
        bill_id=row.bill_id,
        bill_version=row.bill_version,
        account_id=row.account_id,
        status=RunStatus(row.status),
        attempts=row.attempts,
        external_id=row.external_id,
        external_url=row.external_url,
        error=row.error,
        replayed_from=row.replayed_from,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class RunRepository:
    """Runs: single reads and writes, listings, and the queue's bulk operations."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._postgres = is_postgres(session)

    # -- single runs and listings ----------------------------------------------------------------

    def add(self, run: Run) -> Run:
        """Save a new run. Raises ``NotFound`` if its integration does not exist."""
        require_row(self.session, IntegrationRow, run.integration_id, "integration")
        row = RunRow(id=run.id, created_at=run.created_at, **_values(run))
        insert_or_conflict(
            self.session,
            row,
            f"run {run.id} already exists, or bill {run.bill_id} v{run.bill_version} already "
            "has an open run for this integration",
        )
        return self.get(run.id)

    def add_many(self, runs: Sequence[Run]) -> set[str]:
        """Insert new runs (their integrations must exist); returns the ids inserted.

        An open run for a bill version that already has one for the integration is not
        inserted (the database's unique partial index decides, so concurrent submissions of
        one bill queue it once).
        """
        if not runs:
            return set()
        dialect_insert = postgresql.insert if self._postgres else sqlite.insert
        statement = (
            dialect_insert(RunRow)
            .on_conflict_do_nothing(
                index_elements=[RunRow.integration_id, RunRow.bill_id, RunRow.bill_version],
                index_where=open_runs_literal(),
            )
            .returning(RunRow.id)
        )
        rows = [{"id": r.id, "created_at": r.created_at, **_values(r)} for r in runs]
        return set(self.session.scalars(statement, rows))

    def get(self, run_id: str) -> Run:
        """The run with this id, or ``NotFound``."""
        return _to_domain(require_row(self.session, RunRow, run_id, "run"))

    def list(
        self,
        *,
        integration_id: str | None = None,
        bill_id: str | None = None,
        status: RunStatus | Iterable[RunStatus] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        offset: int = 0,
        before: tuple[datetime, str] | None = None,
        invoice_state: Iterable[InvoiceState] | None = None,
    ) -> builtins.list[Run]:
        """Runs matching every filter, newest first. ``since`` is inclusive, ``until`` not.

        :param before: keyset paging: only runs older than this ``(created_at, id)``.
        :param invoice_state: only runs whose invoice was read back in one of these states.
        """
        statement = self._listing(integration_id, bill_id, status, since, until, invoice_state)
        older = before_key(RunRow.created_at, RunRow.id, before)
        if older is not None:
            statement = statement.where(older)
        statement = statement.order_by(RunRow.created_at.desc(), RunRow.id.desc())
        statement = page(statement, limit, offset).execution_options(populate_existing=True)
        return [_to_domain(row) for row in self.session.scalars(statement)]

    def count(
        self,
        *,
        integration_id: str | None = None,
        bill_id: str | None = None,
        status: RunStatus | Iterable[RunStatus] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        invoice_state: Iterable[InvoiceState] | None = None,
    ) -> int:
        """How many runs :meth:`list` would return without paging."""
        listing = self._listing(integration_id, bill_id, status, since, until, invoice_state)
        return count_of(self.session, listing.with_only_columns(RunRow.id))

    @staticmethod
    def _listing(
        integration_id: str | None,
        bill_id: str | None,
        status: RunStatus | Iterable[RunStatus] | None,
        since: datetime | None,
        until: datetime | None,
        invoice_state: Iterable[InvoiceState] | None = None,
    ) -> Select[RunRow]:
        statement = select(RunRow)
        if integration_id is not None:
            statement = statement.where(RunRow.integration_id == integration_id)
        if bill_id is not None:
            statement = statement.where(RunRow.bill_id == bill_id)
        if status is not None:
            # A RunStatus is a str: one status must not be iterated character by character.
            wanted = [status] if isinstance(status, str) else builtins.list(status)
            statement = statement.where(RunRow.status.in_([s.value for s in wanted]))
        if since is not None:
            statement = statement.where(RunRow.created_at >= since)
        if until is not None:
            statement = statement.where(RunRow.created_at < until)
        if invoice_state is not None:
            # The ledger's document is the one the run delivered (a later version updates the
            # same document, so every run that delivered it shows its state).
            statement = statement.where(
                exists().where(
                    LedgerRow.integration_id == RunRow.integration_id,
                    LedgerRow.bill_id == RunRow.bill_id,
                    LedgerRow.external_id == RunRow.external_id,
                    LedgerRow.invoice_state.in_([s.value for s in invoice_state]),
                )
            )
        return statement

    def status_counts(self, *, integration_id: str | None = None) -> dict[RunStatus, int]:
        """How many runs have each status (counted in SQL), optionally for one integration."""
        statement = select(RunRow.status, func.count()).group_by(RunRow.status)
        if integration_id is not None:
            statement = statement.where(RunRow.integration_id == integration_id)
        return {RunStatus(status): int(count) for status, count in self.session.execute(statement)}

    def queued_versions(self, bill_ids: Sequence[str]) -> dict[tuple[str, str], set[int]]:
        """Versions with an open run per ``(integration id, bill id)``."""
        result: dict[tuple[str, str], set[int]] = defaultdict(set)
        for chunk in chunks(list(dict.fromkeys(bill_ids))):
            for row in self.session.execute(
                select(RunRow.integration_id, RunRow.bill_id, RunRow.bill_version).where(
                    RunRow.bill_id.in_(chunk),
                    open_runs(),
                )
            ):
                result[(row.integration_id, row.bill_id)].add(row.bill_version)
        return result

    # -- the queue -------------------------------------------------------------------------------

    def due_counts(self, now: datetime) -> dict[str, int]:
        """How many runs are due now, per integration."""
        return {
            row.integration_id: int(row.due)
            for row in self.session.execute(
                select(RunRow.integration_id, func.count().label("due"))
                .where(_due(now))
                .group_by(RunRow.integration_id)
            )
        }

    def next_due_at(self) -> datetime | None:
        """When the earliest waiting run becomes due (``None``: nothing is waiting)."""
        earliest: datetime | None = self.session.scalar(
            select(func.min(func.coalesce(RunRow.next_attempt_at, RunRow.created_at))).where(
                RunRow.status.in_([s.value for s in DUE_STATUSES]), _free()
            )
        )
        started: datetime | None = self.session.scalar(
            select(func.min(RunRow.claimed_until)).where(RunRow.status == RunStatus.STARTED.value)
        )
        candidates = [t for t in (earliest, started) if t is not None]
        return min(candidates) if candidates else None

    def claim(
        self,
        *,
        integration_ids: Sequence[str],
        limit: int,
        worker: str,
        now: datetime,
        lease_until: datetime,
        run_ids: Sequence[str] | None = None,
        resume_batches: bool = True,
    ) -> builtins.list[Run]:
        """Claim up to ``limit`` due runs (oldest first) for ``worker``: STARTED, attempts + 1.

        On PostgreSQL the candidate rows are locked with ``FOR UPDATE SKIP LOCKED``, so workers
        racing for the same runs each get different ones; on SQLite the unit of work holds the
        database's write lock. Either way no other worker can claim the selected runs before
        this unit of work ends, so a run is never claimed twice. Members of a batch whose
        outcome is unknown are claimed together, all of them and nothing else
        (``resume_batches=False`` leaves them out).
        """
        scope = [_due(now)]
        if integration_ids:
            scope.append(RunRow.integration_id.in_(list(integration_ids)))
        batch_key = self._unsettled_batch(scope, run_ids) if resume_batches else None
        if not resume_batches:
            # Single sends must not take members of an unsettled batch: only the same batch,
            # with its key, can be sent again safely.
            scope.append(RunRow.batch_key.is_(None))
        candidates = select(RunRow.id).where(*scope)
        if batch_key is not None:
            candidates = candidates.where(RunRow.batch_key == batch_key)
        else:
            if run_ids is not None:
                candidates = candidates.where(RunRow.id.in_(list(run_ids)))
            candidates = candidates.order_by(RunRow.created_at, RunRow.id).limit(limit)
            # Runs claimed for a batch remember it until its outcome is known; single sends
            # carry their own idempotency keys and need none.
            batch_key = new_id() if resume_batches else None
        if self._postgres:
            candidates = candidates.with_for_update(skip_locked=True)
        ids = list(self.session.scalars(candidates))
        if not ids:
            return []
        # No second "still due?" test here: the rows cannot have changed since the SELECT above
        # (SQLite: this unit of work holds the write lock; PostgreSQL: they are locked FOR
        # UPDATE, and re-checked against the WHERE clause when the lock is taken). Repeating it
        # also led SQLite's planner to scan the status index instead of fetching by primary key.
        self.session.execute(
            update(RunRow)
            .where(RunRow.id.in_(ids))
            .values(
                status=RunStatus.STARTED.value,
                claimed_by=worker,
                claimed_until=lease_until,
                attempts=RunRow.attempts + 1,
                updated_at=now,
                batch_key=batch_key,
            ),
            execution_options={"synchronize_session": False},
        )
        rows = self.session.execute(
            select(RunRow)
            .where(
                RunRow.id.in_(ids), RunRow.claimed_by == worker, RunRow.claimed_until == lease_until
            )
            .order_by(RunRow.created_at, RunRow.id)
            .execution_options(populate_existing=True)
        ).scalars()
        return [_to_domain(row) for row in rows]

    def _unsettled_batch(self, scope: Sequence[Any], run_ids: Sequence[str] | None) -> str | None:
        # A batch whose outcome is unknown (lost answer, dead worker) goes again exactly as it
        # was, so that its idempotency key makes the destination answer instead of creating.
        unsettled = select(RunRow.batch_key).where(*scope, RunRow.batch_key.is_not(None))
        if run_ids is not None:
            unsettled = unsettled.where(RunRow.id.in_(list(run_ids)))
        return self.session.scalar(unsettled.order_by(RunRow.created_at).limit(1))

    def has_unsettled(self, integration_ids: Sequence[str], now: datetime) -> bool:
        """True when a due run of these integrations belongs to an unsettled batch."""
        found = self.session.scalar(
            select(RunRow.id)
            .where(
                _due(now),
                RunRow.integration_id.in_(list(integration_ids)),
                RunRow.batch_key.is_not(None),
            )
            .limit(1)
        )
        return found is not None

    def extend_claims(self, run_ids: Sequence[str], worker: str, until: datetime) -> None:
        """Keep runs claimed while a slow delivery is still in progress."""
        for chunk in chunks(list(run_ids)):
            self.session.execute(
                update(RunRow)
                .where(RunRow.id.in_(chunk), RunRow.claimed_by == worker)
                .values(claimed_until=until),
                execution_options={"synchronize_session": False},
            )

    def finish(self, runs: Sequence[Run], worker: str, *, unsettled: Iterable[str] = ()) -> int:
        """Write the outcome of claimed runs; only runs still claimed by ``worker`` change.

        :param unsettled: ids of runs whose batch's outcome is unknown (the request may have
            been carried out): they keep their batch, to be sent again with the same members.
        :returns: how many were written (a run whose claim lapsed and was taken by another
            worker is left to that worker).
        """
        if not runs:
            return 0
        keep = set(unsettled)
        result = self.session.connection().execute(
            _FINISH,
            [
                {
                    "rid": run.id,
                    "worker": worker,
                    "status": run.status.value,
                    "external_id": run.external_id,
                    "external_url": run.external_url,
                    "error": run.error,
                    "next_attempt_at": run.next_attempt_at,
                    "updated_at": run.updated_at,
                    "settled": run.id not in keep,
                }
                for run in runs
            ],
        )
        return int(result.rowcount)

    def set_status(
        self,
        *,
        integration_id: str,
        status: RunStatus,
        error: str | None,
        now: datetime,
        only_due: bool = True,
        next_attempt_at: datetime | None = None,
    ) -> int:
        """Move an integration's due (or all open) runs to ``status``; returns how many."""
        condition = _due(now) if only_due else RunRow.status.in_([s.value for s in DUE_STATUSES])
        result = self.session.execute(
            update(RunRow)
            .where(RunRow.integration_id == integration_id, condition)
            .values(
                status=status.value,
                error=error,
                updated_at=now,
                next_attempt_at=next_attempt_at,
                claimed_by=None,
                claimed_until=None,
            ),
            execution_options={"synchronize_session": False},
        )
        return rowcount(result)

    # -- attempts ---------------------------------------------------------------------------------

    def add_attempts(self, attempts: Sequence[RunAttempt]) -> None:
        """Record finished attempts."""
        insert_rows(
            self.session,
            RunAttemptRow,
            [
                {
                    "id": new_id(),
                    "run_id": a.run_id,
                    "number": a.number,
                    "worker": a.worker,
                    "started_at": a.started_at,
                    "finished_at": a.finished_at,
                    "status": a.status.value,
                    "error": a.error,
                }
                for a in attempts
            ],
        )

    def attempts(self, run_id: str) -> builtins.list[RunAttempt]:
        """A run's attempts, first first."""
        return [
            RunAttempt(
                run_id=row.run_id,
                number=row.number,
                worker=row.worker,
                started_at=row.started_at,
                finished_at=row.finished_at,
                status=RunStatus(row.status),
                error=row.error,
            )
            for row in self.session.scalars(
                select(RunAttemptRow)
                .where(RunAttemptRow.run_id == run_id)
                .order_by(RunAttemptRow.number, RunAttemptRow.started_at)
            )
        ]

    def attempts_finished(
        self,
        *,
        after: datetime,
        limit: int,
        worker: str | None = None,
    ) -> builtins.list[tuple[RunAttempt, Run]]:
        """Attempts that finished at or after ``after``, oldest first, each with its run.

        The activity feed (webhooks, the console's stream) and delivery metrics read delivery
        outcomes this way; ``worker`` keeps one worker's attempts only.
        """
        statement = (
            select(RunAttemptRow, RunRow)
            .join(RunRow, RunRow.id == RunAttemptRow.run_id)
            .where(RunAttemptRow.finished_at >= after)
            .order_by(RunAttemptRow.finished_at, RunAttemptRow.id)
            .limit(limit)
        )
        if worker is not None:
            statement = statement.where(RunAttemptRow.worker == worker)
        return [
            (
                RunAttempt(
                    run_id=attempt.run_id,
                    number=attempt.number,
                    worker=attempt.worker,
                    started_at=attempt.started_at,
                    finished_at=attempt.finished_at,
                    status=RunStatus(attempt.status),
                    error=attempt.error,
                ),
                _to_domain(run),
            )
            for attempt, run in self.session.execute(statement)
        ]
