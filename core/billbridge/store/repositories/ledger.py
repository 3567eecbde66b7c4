"""The delivery ledger: which external document each bill became, per integration.

One rule: **the ledger never moves backwards**. Recording an entry for an older bill version
than the one recorded changes nothing (a slow worker finishing an older version must not undo a
newer one); the same or a newer version replaces the entry.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from billbridge.domain.models import LedgerEntry, dumps, loads, thaw
from billbridge.store.common import chunks, is_postgres
from billbridge.store.tables import LedgerRow

__all__ = ["LedgerRepository"]

_CHANGING = (
    "bill_version",
    "external_id",
    "external_number",
    "external_url",
    "state",
    "updated_at",
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
        """Insert or replace entries in one statement; never for an older version."""
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
        dialect_insert = postgresql.insert if self._postgres else sqlite.insert
        statement = dialect_insert(LedgerRow)
        statement = statement.on_conflict_do_update(
            index_elements=[LedgerRow.integration_id, LedgerRow.bill_id],
            set_={k: statement.excluded[k] for k in _CHANGING},
            where=LedgerRow.bill_version <= statement.excluded.bill_version,
        )
        self.session.execute(statement, values)
