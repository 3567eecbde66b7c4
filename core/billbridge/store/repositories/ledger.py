"""The delivery ledger: which external document each bill became, per integration.

One rule: **the ledger never moves backwards**. Recording an entry for an older bill version
than the one recorded changes nothing (a slow worker finishing an older version must not undo a
newer one); the same or a newer version replaces the entry.

Each entry also keeps what the destination last said the document has become (status
read-back): recording a delivery schedules its next read; :meth:`LedgerRepository.due_for_status`
and :meth:`LedgerRepository.record_status` are the read-back's bulk operations.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from billbridge.domain.models import DocumentStatus, InvoiceState, LedgerEntry, dumps, loads, thaw
from billbridge.store.common import chunks, is_postgres, rowcount
from billbridge.store.tables import LedgerRow

__all__ = ["LedgerRepository"]

_CHANGING = (
    "bill_version",
    "external_id",
    "external_number",
    "external_url",
    "state",
    "updated_at",
    # A new version was written over the document: read it back at the next check.
    "status_next_check_at",
)

#: Writes one document's read-back (executed with many parameter sets).
_STATUS = (
    update(LedgerRow)
    .where(
        LedgerRow.integration_id == bindparam("iid"),
        LedgerRow.bill_id == bindparam("bid"),
        # Only the document that was read: a newer delivery may have replaced it meanwhile.
        LedgerRow.external_id == bindparam("eid"),
    )
    .values(
        invoice_state=bindparam("invoice_state"),
        invoice_total=bindparam("invoice_total"),
        amount_due=bindparam("amount_due"),
        amount_paid=bindparam("amount_paid"),
        amount_credited=bindparam("amount_credited"),
        invoice_currency=bindparam("invoice_currency"),
        paid_on=bindparam("paid_on"),
        payments=bindparam("payments"),
        status_checked_at=bindparam("status_checked_at"),
        status_next_check_at=bindparam("status_next_check_at"),
        status_error=bindparam("status_error"),
    )
)

#: Records a failed read-back: the error and the next try, the last good answer kept.
_STATUS_FAILED = (
    update(LedgerRow)
    .where(
        LedgerRow.integration_id == bindparam("iid"),
        LedgerRow.bill_id == bindparam("bid"),
        LedgerRow.external_id == bindparam("eid"),
    )
    .values(
        status_checked_at=bindparam("status_checked_at"),
        status_next_check_at=bindparam("status_next_check_at"),
        status_error=bindparam("status_error"),
    )
)


def _status(row: LedgerRow) -> DocumentStatus:
    return DocumentStatus(
        state=InvoiceState(row.invoice_state) if row.invoice_state else None,
        total=row.invoice_total,
        amount_due=row.amount_due,
        amount_paid=row.amount_paid,
        amount_credited=row.amount_credited,
        currency=row.invoice_currency,
        paid_on=row.paid_on,
        payments=loads(row.payments) if row.payments else (),
        checked_at=row.status_checked_at,
        next_check_at=row.status_next_check_at,
        error=row.status_error,
    )


def _to_domain(row: LedgerRow) -> LedgerEntry:
    return LedgerEntry(
        integration_id=row.integration_id,
        bill_id=row.bill_id,
        bill_version=row.bill_version,
        external_id=row.external_id,
        external_number=row.external_number,
        external_url=row.external_url,
        state=loads(row.state),
        updated_at=row.updated_at,
        status=_status(row),
    )


class LedgerRepository:
    """Ledger entries (see the module's rule)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._postgres = is_postgres(session)

    def get(self, integration_id: str, bill_id: str) -> LedgerEntry | None:
        """The entry for this bill through this integration, or ``None`` if never delivered."""
        return self.get_many(integration_id, [bill_id]).get(bill_id)

    def get_many(self, integration_id: str, bill_ids: Sequence[str]) -> dict[str, LedgerEntry]:
        """Entries of one integration, by bill id."""
        found: dict[str, LedgerEntry] = {}
        for chunk in chunks(list(dict.fromkeys(bill_ids))):
            for row in self.session.scalars(
                select(LedgerRow)
                .where(LedgerRow.integration_id == integration_id, LedgerRow.bill_id.in_(chunk))
                .execution_options(populate_existing=True)
            ):
                found[row.bill_id] = _to_domain(row)
        return found

    def get_pairs(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], LedgerEntry]:
        """Entries by ``(integration id, bill id)``, for listings that show several."""
        wanted = list(dict.fromkeys(pairs))
        found: dict[tuple[str, str], LedgerEntry] = {}
        for chunk in chunks(wanted):
            bills = sorted({bill for _, bill in chunk})
            integrations = sorted({integration for integration, _ in chunk})
            # Two IN lists instead of a row-value IN: SQLite reads the whole table for those.
            for row in self.session.scalars(
                select(LedgerRow)
                .where(LedgerRow.bill_id.in_(bills), LedgerRow.integration_id.in_(integrations))
                .execution_options(populate_existing=True)
            ):
                key = (row.integration_id, row.bill_id)
                if key in found or key not in chunk:
                    continue
                found[key] = _to_domain(row)
        return found

    def delivered_versions(self, bill_ids: Sequence[str]) -> dict[tuple[str, str], int]:
        """The recorded version per ``(integration id, bill id)``, for every integration."""
        result: dict[tuple[str, str], int] = {}
        for chunk in chunks(list(dict.fromkeys(bill_ids))):
            for row in self.session.execute(
                select(LedgerRow.integration_id, LedgerRow.bill_id, LedgerRow.bill_version).where(
                    LedgerRow.bill_id.in_(chunk)
                )
            ):
                result[(row.integration_id, row.bill_id)] = row.bill_version
        return result

    def record(self, entries: Sequence[LedgerEntry]) -> None:
        """Insert or replace entries in one statement; never for an older version.

        Each entry's ``status.next_check_at`` schedules its first (or next) read-back; the rest
        of what was read back stays until the next read replaces it.
        """
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
                "status_next_check_at": e.status.next_check_at,
            }
            for e in entries
        ]
        dialect_insert = postgresql.insert if self._postgres else sqlite.insert
        statement = dialect_insert(LedgerRow)
        statement = statement.on_conflict_do_update(
            index_elements=[LedgerRow.integration_id, LedgerRow.bill_id],
            set_={k: statement.excluded[k] for k in _CHANGING},
            where=LedgerRow.bill_version <= statement.excluded.bill_version,
        )
        self.session.execute(statement, values)

    # -- status read-back ------------------------------------------------------------------------

    def due_for_status(self, now: datetime, *, limit: int = 500) -> list[LedgerEntry]:
        """Entries whose next read-back is due, earliest first (at most ``limit``)."""
        statement = (
            select(LedgerRow)
            .where(LedgerRow.status_next_check_at <= now)
            .order_by(LedgerRow.status_next_check_at, LedgerRow.integration_id, LedgerRow.bill_id)
            .limit(limit)
            .execution_options(populate_existing=True)
        )
        return [_to_domain(row) for row in self.session.scalars(statement)]

    def next_status_check_at(self) -> datetime | None:
        """When the earliest read-back is due (``None``: none is scheduled)."""
        earliest: datetime | None = self.session.scalar(
            select(LedgerRow.status_next_check_at)
            .where(LedgerRow.status_next_check_at.is_not(None))
            .order_by(LedgerRow.status_next_check_at)
            .limit(1)
        )
        return earliest

    def record_status(self, entries: Sequence[LedgerEntry]) -> int:
        """Write what was read back for each entry (its ``status``); returns the rows changed.

        An entry whose document was replaced meanwhile (another external id) is left alone.
        """
        if not entries:
            return 0
        values: list[dict[str, Any]] = []
        for entry in entries:
            status = entry.status
            values.append(
                {
                    "iid": entry.integration_id,
                    "bid": entry.bill_id,
                    "eid": entry.external_id,
                    "invoice_state": status.state.value if status.state is not None else None,
                    "invoice_total": status.total,
                    "amount_due": status.amount_due,
                    "amount_paid": status.amount_paid,
                    "amount_credited": status.amount_credited,
                    "invoice_currency": status.currency,
                    "paid_on": status.paid_on,
                    "payments": dumps([thaw(p) for p in status.payments])
                    if status.payments
                    else None,
                    "status_checked_at": status.checked_at,
                    "status_next_check_at": status.next_check_at,
                    "status_error": status.error,
                }
            )
        # Core, not the ORM: the ORM would take a list of parameters for an update by primary key.
        return int(self.session.connection().execute(_STATUS, values).rowcount)

    def record_status_failure(
        self,
        entries: Sequence[LedgerEntry],
        *,
        error: str,
        checked_at: datetime,
        next_check_at: datetime | None,
    ) -> None:
        """A read-back failed for these entries: keep what was read before, say why, retry at
        ``next_check_at``."""
        if not entries:
            return
        self.session.connection().execute(
            _STATUS_FAILED,
            [
                {
                    "iid": e.integration_id,
                    "bid": e.bill_id,
                    "eid": e.external_id,
                    "status_checked_at": checked_at,
                    "status_next_check_at": next_check_at,
                    "status_error": error,
                }
                for e in entries
            ],
        )

    def reschedule_status(
        self, keys: Sequence[tuple[str, str]], next_check_at: datetime | None
    ) -> None:
        """Move the next read-back of these ``(integration id, bill id)`` entries (``None``:
        never), without reading anything (e.g. the destination cannot read statuses)."""
        for chunk in chunks(list(dict.fromkeys(keys))):
            bills = sorted({bill for _, bill in chunk})
            integrations = sorted({integration for integration, _ in chunk})
            self.session.execute(
                update(LedgerRow)
                .where(
                    and_(
                        LedgerRow.bill_id.in_(bills),
                        LedgerRow.integration_id.in_(integrations),
                        tuple_(LedgerRow.integration_id, LedgerRow.bill_id).in_(chunk),
                    )
                )
                .values(status_next_check_at=next_check_at)
                .execution_options(synchronize_session=False)
            )

    def resume_status_checks(self, integration_id: str, at: datetime) -> int:
        """Schedule a read-back at ``at`` for every document of the integration that is not
        settled and has none scheduled (reading was off); returns how many."""
        settled = [s.value for s in InvoiceState if s.settled]
        result = self.session.execute(
            update(LedgerRow)
            .where(
                LedgerRow.integration_id == integration_id,
                LedgerRow.status_next_check_at.is_(None),
                or_(LedgerRow.invoice_state.is_(None), LedgerRow.invoice_state.not_in(settled)),
            )
            .values(status_next_check_at=at)
            .execution_options(synchronize_session=False)
        )
        return rowcount(result)
