"""Events people must act on."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from billbridge.domain.models import Event, EventType
from billbridge.store.common import before as before_key
from billbridge.store.common import count_of, insert_or_conflict, page, plain, require_row
from billbridge.store.tables import EventRow, IntegrationRow

__all__ = ["EventRepository"]


def _one_or_many(value: str | Iterable[str]) -> builtins.list[str]:
    # StrEnum members are strings: a single status must not be iterated character by character.
    if isinstance(value, str):
        return [str(value)]
    return [str(v) for v in value]


class EventRepository:
    """Events people must act on."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, event: Event) -> Event:
        """Save a new event. Raises ``NotFound`` if its integration does not exist."""
        if event.integration_id is not None:
            require_row(self.session, IntegrationRow, event.integration_id, "integration")
        row = EventRow(
            id=event.id,
            type=event.type.value,
            message=event.message,
            integration_id=event.integration_id,
            run_id=event.run_id,
            details=plain(event.details),
            created_at=event.created_at,
            actioned_at=event.actioned_at,
            actioned_by=event.actioned_by,
        )
        insert_or_conflict(self.session, row, f"event {event.id} already exists")
        return self.get(event.id)

    def get(self, event_id: str) -> Event:
        """The event with this id, or ``NotFound``."""
        return self._to_domain(require_row(self.session, EventRow, event_id, "event"))

    def list(
        self,
        *,
        integration_id: str | None = None,
        type: EventType | Iterable[EventType] | None = None,  # the domain's word for it
        actioned: bool | None = None,
        since: datetime | None = None,
        limit: int | None = None,
        offset: int = 0,
        before: tuple[datetime, str] | None = None,
    ) -> builtins.list[Event]:
        """Events matching every filter, newest first. ``since`` is inclusive.

        :param before: keyset paging: only events older than this ``(created_at, id)``.
        """
        statement = self._listing(integration_id, type, actioned, since)
        older = before_key(EventRow.created_at, EventRow.id, before)
        if older is not None:
            statement = statement.where(older)
        statement = statement.order_by(EventRow.created_at.desc(), EventRow.id.desc())
        statement = page(statement, limit, offset).execution_options(populate_existing=True)
        return [self._to_domain(row) for row in self.session.scalars(statement)]

    def count(
        self,
        *,
        integration_id: str | None = None,
        type: EventType | Iterable[EventType] | None = None,
        actioned: bool | None = None,
        since: datetime | None = None,
    ) -> int:
        """How many events :meth:`list` would return without paging."""
        statement = self._listing(integration_id, type, actioned, since)
        return count_of(self.session, statement.with_only_columns(EventRow.id))

    def created_after(self, after: datetime, limit: int) -> builtins.list[Event]:
        """Events created at or after ``after``, oldest first (the activity feed)."""
        statement = (
            select(EventRow)
            .where(EventRow.created_at >= after)
            .order_by(EventRow.created_at, EventRow.id)
            .limit(limit)
            .execution_options(populate_existing=True)
        )
        return [self._to_domain(row) for row in self.session.scalars(statement)]

    @staticmethod
    def _listing(
        integration_id: str | None,
        type: EventType | Iterable[EventType] | None,
        actioned: bool | None,
        since: datetime | None,
    ) -> Select[EventRow]:
        statement = select(EventRow)
        if integration_id is not None:
            statement = statement.where(EventRow.integration_id == integration_id)
        if type is not None:
            statement = statement.where(EventRow.type.in_(_one_or_many(type)))
        if actioned is not None:
            statement = statement.where(
                EventRow.actioned_at.is_not(None) if actioned else EventRow.actioned_at.is_(None)
            )
        if since is not None:
            statement = statement.where(EventRow.created_at >= since)
        return statement

    def mark_actioned(self, event_id: str, by: str, at: datetime) -> Event:
        """Record that ``by`` dealt with the event at ``at``; returns the event.

        Marking an event that is already actioned keeps the first record (who dealt with it
        first is what a person reading the history wants).
        """
        self.session.execute(
            update(EventRow)
            .where(EventRow.id == event_id, EventRow.actioned_at.is_(None))
            .values(actioned_at=at, actioned_by=by),
            execution_options={"synchronize_session": False},
        )
        return self.get(event_id)

    @staticmethod
    def _to_domain(row: EventRow) -> Event:
        return Event(
            id=row.id,
            type=EventType(row.type),
            message=row.message,
            integration_id=row.integration_id,
            run_id=row.run_id,
            details=row.details,
            created_at=row.created_at,
            actioned_at=row.actioned_at,
            actioned_by=row.actioned_by,
        )
