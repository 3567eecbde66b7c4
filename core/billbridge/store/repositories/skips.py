"""Routing skips: decisions not to send a bill version through an integration, with why."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from billbridge.domain.models import Skip
from billbridge.store.common import before as before_key
from billbridge.store.common import count_of, insert_rows, page, rowcount
from billbridge.store.tables import SkipRow

__all__ = ["SkipRepository"]


class SkipRepository:
    """Skips, written in bulk at submission and read newest first."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add_many(self, skips: Sequence[Skip]) -> None:
        """Record routing decisions not to send."""
        insert_rows(
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

    def list(
        self,
        *,
        integration_id: str | None = None,
        bill_id: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
        before: tuple[datetime, str] | None = None,
    ) -> builtins.list[Skip]:
        """Routing skips, newest first (``before``: keyset paging, as for runs)."""
        statement = self._listing(integration_id, bill_id)
        older = before_key(SkipRow.created_at, SkipRow.id, before)
        if older is not None:
            statement = statement.where(older)
        statement = statement.order_by(SkipRow.created_at.desc(), SkipRow.id.desc())
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
            for row in self.session.scalars(page(statement, limit, offset))
        ]

    def count(self, *, integration_id: str | None = None, bill_id: str | None = None) -> int:
        """How many skips :meth:`list` would return without paging."""
        statement = self._listing(integration_id, bill_id).with_only_columns(SkipRow.id)
        return count_of(self.session, statement)

    @staticmethod
    def _listing(integration_id: str | None, bill_id: str | None) -> Select[SkipRow]:
        statement = select(SkipRow)
        if integration_id is not None:
            statement = statement.where(SkipRow.integration_id == integration_id)
        if bill_id is not None:
            statement = statement.where(SkipRow.bill_id == bill_id)
        return statement

    def forget_before(self, when: datetime) -> int:
        """Delete skips older than ``when`` (housekeeping); returns how many."""
        result = self.session.execute(
            delete(SkipRow).where(SkipRow.created_at < when),
            execution_options={"synchronize_session": False},
        )
        return rowcount(result)
