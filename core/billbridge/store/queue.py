"""The delivery queue: set-based operations on runs, skips, attempts, the ledger and tenants.

The repositories in :mod:`billbridge.store.repositories` read and write one object at a time;
delivery moves thousands of runs at month-end, so this module does the same work in bulk (one
statement for many rows) and adds what only delivery needs: claiming runs so that no two
workers deliver the same one, and leasing a destination tenant to one worker at a time so that
its rate limits are kept in one place.
"""

from __future__ import annotations

import builtins
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs
from sqlalchemy import and_, bindparam, case, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from billbridge.domain.models import (
    Account,
    Bill,
    LedgerEntry,
    Run,
    RunAttempt,
    RunStatus,
    Skip,
    dumps,
    loads,
    parse_account,
    parse_bill,
    thaw,
)
from billbridge.store.repositories import RunRepository
from billbridge.store.tables import (
    OPEN_RUN_STATUSES,
    BillRow,
    LedgerRow,
    RunAttemptRow,
    RunRow,
    SkipRow,
    TenantStateRow,
    new_id,
    open_runs,
)

__all__ = ["DUE_STATUSES", "OPEN_STATUSES", "DeliveryQueue", "TenantState"]

#: Statuses of runs waiting to be (re)tried when their time comes.
DUE_STATUSES = (RunStatus.WAITING, RunStatus.AWAITING_RETRY, RunStatus.RATE_LIMIT_RETRY)
#: Statuses of runs that are not finished (the schema's partial index spells them out).
OPEN_STATUSES = tuple(RunStatus(value) for value in OPEN_RUN_STATUSES)

_CHUNK = 500  # rows per IN (...) list: well inside every database's parameter limit


def _chunks(values: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


@attrs.frozen
class TenantState:
    """What a worker holding a tenant's lease knows about the tenant's limits."""

    key: str
    blocked_until: datetime | None
    blocked_reason: str | None
    counters: Mapping[str, Any]


def _bill_versions(keys: Sequence[tuple[str, int]]) -> Any:
    """Rows of these ``(bill id, version)`` keys, through the primary key, plus possibly others.

    ``bill_id IN (...) AND version IN (...)``: SQLite answers a row-value ``(bill_id, version)
    IN (...)`` by reading the whole table (every stored document), so each chunk of a backfill
    cost more than the last. This form uses the key on both databases; it can also match another
    asked version of an asked bill, which callers filter out.
    """
    return and_(
        BillRow.bill_id.in_(sorted({bill_id for bill_id, _ in keys})),
        BillRow.version.in_(sorted({version for _, version in keys})),
    )


def _insert_rows(session: Session, row_class: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    # A Core executemany: the ORM's bulk path builds per-row state these plain inserts never
    # use, and cost more than the insert itself for a chunk of bills, runs or attempts.
    session.connection().execute(insert(row_class.__table__), rows)


def _run_values(run: Run) -> dict[str, Any]:
    return {"id": run.id, "created_at": run.created_at, **RunRepository._values(run)}


def _run(row: Any) -> Run:
    return RunRepository._to_domain(row)


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


class DeliveryQueue:
    """Bulk queue operations inside one unit of work (``session``)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._postgres = session.get_bind().dialect.name == "postgresql"

    # -- bills ---------------------------------------------------------------------------------

    def save_bills(
        self, items: Sequence[tuple[Bill, Account, str, str]], *, received_at: datetime
    ) -> builtins.list[tuple[Bill, Account]]:
        """Store bill versions not stored yet, as received; returns the ones that were new.

        ``items`` are ``(bill, account, bill document, account document)``: the documents are
        the JSON text to keep. A version received again is kept as first received (m3ter does
        not change a version once issued; a changed bill gets a new version).
        """
        if not items:
            return []
        keys = list(dict.fromkeys((bill.id, bill.version) for bill, *_ in items))
        known: set[tuple[str, int]] = set()
        for chunk in _chunks(keys):
            known.update(
                (row.bill_id, row.version)
                for row in self.session.execute(
                    select(BillRow.bill_id, BillRow.version).where(_bill_versions(chunk))
                )
            )
        fresh: dict[tuple[str, int], tuple[Bill, Account, str, str]] = {}
        for item in items:
            key = (item[0].id, item[0].version)
            if key not in known:
                fresh.setdefault(key, item)
        if fresh:
            _insert_rows(
                self.session,
                BillRow,
                [
                    {
                        "bill_id": bill.id,
                        "version": bill.version,
                        "account_id": bill.account_id,
                        "document": bill_document,
                        "account_document": account_document,
                        "received_at": received_at,
                    }
                    for bill, _account, bill_document, account_document in fresh.values()
                ],
            )
        return [(bill, account) for bill, account, *_ in fresh.values()]

    def bills(self, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], tuple[Bill, Account]]:
        """Stored bill versions (with their accounts) by ``(bill id, version)``."""
        wanted = list(dict.fromkeys(keys))
        found: dict[tuple[str, int], tuple[Bill, Account]] = {}
        for chunk in _chunks(wanted):
            asked = set(chunk)
            for row in self.session.execute(
                select(
                    BillRow.bill_id, BillRow.version, BillRow.document, BillRow.account_document
                ).where(_bill_versions(chunk))
            ):
                if (row.bill_id, row.version) not in asked:
                    continue  # another version of an asked bill (see _bill_versions)
                found[(row.bill_id, row.version)] = (
                    parse_bill(row.document),
                    parse_account(row.account_document),
                )
        return found

    # -- routing ----------------------------------------------------------------------------------

    def delivered_versions(self, bill_ids: Sequence[str]) -> dict[tuple[str, str], int]:
        """The ledger's version per ``(integration id, bill id)``."""
        result: dict[tuple[str, str], int] = {}
        for chunk in _chunks(list(dict.fromkeys(bill_ids))):
            for row in self.session.execute(
                select(LedgerRow.integration_id, LedgerRow.bill_id, LedgerRow.bill_version).where(
                    LedgerRow.bill_id.in_(chunk)
                )
            ):
                result[(row.integration_id, row.bill_id)] = row.bill_version
        return result

    def queued_versions(self, bill_ids: Sequence[str]) -> dict[tuple[str, str], set[int]]:
        """Versions with an open run per ``(integration id, bill id)``."""
        result: dict[tuple[str, str], set[int]] = defaultdict(set)
        for chunk in _chunks(list(dict.fromkeys(bill_ids))):
            for row in self.session.execute(
                select(RunRow.integration_id, RunRow.bill_id, RunRow.bill_version).where(
                    RunRow.bill_id.in_(chunk),
                    open_runs(),
                )
            ):
                result[(row.integration_id, row.bill_id)].add(row.bill_version)
        return result

    def add_runs(self, runs: Sequence[Run]) -> None:
        """Insert new runs."""
        if runs:
            _insert_rows(self.session, RunRow, [_run_values(r) for r in runs])

    def add_skips(self, skips: Sequence[Skip]) -> None:
        """Record routing decisions not to send."""
        if skips:
            _insert_rows(
                self.session,
                SkipRow,
                [
                    {
                        "id": s.id,
                        "integration_id": s.integration_id,
                        "bill_id": s.bill_id,
                        "bill_version": s.bill_version,
                        "account_id": s.account_id,
                        "reason": s.reason,
                        "created_at": s.created_at,
                    }
                    for s in skips
                ],
            )

    def skips(
        self,
        *,
        integration_id: str | None = None,
        bill_id: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> builtins.list[Skip]:
        """Routing skips, newest first."""
        statement = select(SkipRow)
        if integration_id is not None:
            statement = statement.where(SkipRow.integration_id == integration_id)
        if bill_id is not None:
            statement = statement.where(SkipRow.bill_id == bill_id)
        statement = statement.order_by(SkipRow.created_at.desc(), SkipRow.id.desc()).offset(offset)
        if limit is not None:
            statement = statement.limit(limit)
        return [
            Skip(
                id=row.id,
                integration_id=row.integration_id,
                bill_id=row.bill_id,
                bill_version=row.bill_version,
                account_id=row.account_id,
                reason=row.reason,
                created_at=row.created_at,
            )
            for row in self.session.scalars(statement)
        ]

    # -- claiming ---------------------------------------------------------------------------------

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
                RunRow.status.in_([s.value for s in DUE_STATUSES])
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
        # A batch whose outcome is unknown (lost answer, dead worker) goes again exactly as it
        # was, so that its idempotency key makes the destination answer instead of creating.
        unsettled = select(RunRow.batch_key).where(*scope, RunRow.batch_key.is_not(None))
        if run_ids is not None:
            unsettled = unsettled.where(RunRow.id.in_(list(run_ids)))
        batch_key = (
            self.session.scalar(unsettled.order_by(RunRow.created_at).limit(1))
            if resume_batches
            else None
        )
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
        return [_run(row) for row in rows]

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
        for chunk in _chunks(list(run_ids)):
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
        return int(getattr(result, "rowcount", 0))

    # -- attempts ---------------------------------------------------------------------------------

    def add_attempts(self, attempts: Sequence[RunAttempt]) -> None:
        """Record finished attempts."""
        if attempts:
            _insert_rows(
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

    # -- the ledger ------------------------------------------------------------------------------

    def ledger(self, integration_id: str, bill_ids: Sequence[str]) -> dict[str, LedgerEntry]:
        """Ledger entries of one integration by bill id."""
        found: dict[str, LedgerEntry] = {}
        for chunk in _chunks(list(dict.fromkeys(bill_ids))):
            for row in self.session.scalars(
                select(LedgerRow).where(
                    LedgerRow.integration_id == integration_id, LedgerRow.bill_id.in_(chunk)
                )
            ):
                found[row.bill_id] = LedgerEntry(
                    integration_id=row.integration_id,
                    bill_id=row.bill_id,
                    bill_version=row.bill_version,
                    external_id=row.external_id,
                    external_number=row.external_number,
                    external_url=row.external_url,
                    state=loads(row.state),
                    updated_at=row.updated_at,
                )
        return found

    def record_ledger(self, entries: Sequence[LedgerEntry]) -> None:
        """Upsert ledger entries; an entry never goes back to an older bill version."""
        if not entries:
            return
        values = [
            {
                "integration_id": e.integration_id,
                "bill_id": e.bill_id,
                "bill_version": e.bill_version,
                "external_id": e.external_id,
                "external_number": e.external_number,
                "external_url": e.external_url,
                "state": dumps(thaw(e.state)),
                "updated_at": e.updated_at,
            }
            for e in entries
        ]
        changing = [
            "bill_version",
            "external_id",
            "external_number",
            "external_url",
            "state",
            "updated_at",
        ]
        dialect_insert = postgresql.insert if self._postgres else sqlite.insert
        statement = dialect_insert(LedgerRow)
        statement = statement.on_conflict_do_update(
            index_elements=[LedgerRow.integration_id, LedgerRow.bill_id],
            set_={k: statement.excluded[k] for k in changing},
            # A slow worker finishing an older version must not undo a newer one.
            where=LedgerRow.bill_version <= statement.excluded.bill_version,
        )
        self.session.execute(statement, values)

    # -- tenants ---------------------------------------------------------------------------------

    def acquire_tenant(
        self, key: str, *, worker: str, now: datetime, until: datetime
    ) -> TenantState | None:
        """Lease tenant ``key`` to ``worker`` until ``until``; ``None`` if another holds it."""
        row = self.session.scalar(
            select(TenantStateRow)
            .where(TenantStateRow.key == key)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if row is None:
            dialect_insert = postgresql.insert if self._postgres else sqlite.insert
            self.session.execute(
                dialect_insert(TenantStateRow)
                .values(key=key, counters={}, updated_at=now)
                .on_conflict_do_nothing(index_elements=[TenantStateRow.key])
            )
            row = self.session.scalar(
                select(TenantStateRow)
                .where(TenantStateRow.key == key)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
            assert row is not None
        if (
            row.lease_owner not in (None, worker)
            and row.lease_until is not None
            and row.lease_until > now
        ):
            return None
        row.lease_owner = worker
        row.lease_until = until
        row.updated_at = now
        self.session.flush()
        return TenantState(
            key=key,
            blocked_until=row.blocked_until,
            blocked_reason=row.blocked_reason,
            counters=dict(row.counters or {}),
        )

    def renew_tenant(self, key: str, *, worker: str, until: datetime) -> bool:
        """Extend a lease this worker holds; False if it lost it."""
        result = self.session.execute(
            update(TenantStateRow)
            .where(TenantStateRow.key == key, TenantStateRow.lease_owner == worker)
            .values(lease_until=until),
            execution_options={"synchronize_session": False},
        )
        return bool(getattr(result, "rowcount", 0))

    def release_tenant(
        self,
        key: str,
        *,
        worker: str,
        now: datetime,
        counters: Mapping[str, Any],
        blocked_until: datetime | None,
        blocked_reason: str | None,
    ) -> None:
        """Give the lease back, saving the tenant's usage and any block."""
        self.session.execute(
            update(TenantStateRow)
            .where(TenantStateRow.key == key, TenantStateRow.lease_owner == worker)
            .values(
                lease_owner=None,
                lease_until=None,
                counters=dict(counters),
                blocked_until=blocked_until,
                blocked_reason=blocked_reason,
                updated_at=now,
            ),
            execution_options={"synchronize_session": False},
        )

    def tenant_states(self) -> builtins.list[tuple[str, datetime | None, str | None]]:
        """Every tenant's ``(key, blocked until, why)``."""
        return [
            (row.key, row.blocked_until, row.blocked_reason)
            for row in self.session.execute(
                select(
                    TenantStateRow.key, TenantStateRow.blocked_until, TenantStateRow.blocked_reason
                ).order_by(TenantStateRow.key)
            )
        ]

    def forget_skips_before(self, when: datetime) -> int:
        """Delete skips older than ``when`` (housekeeping)."""
        result = self.session.execute(
            delete(SkipRow).where(SkipRow.created_at < when),
            execution_options={"synchronize_session": False},
        )
        return int(getattr(result, "rowcount", 0))
