"""Events people must act on: ``engine.events``."""

from __future__ import annotations

import builtins
from datetime import datetime

from billbridge.domain.clock import Clock
from billbridge.domain.models import Event, EventType
from billbridge.store import UnitOfWorkFactory, atomically, new_id

__all__ = ["Events"]


class Events:
    """``engine.events``: what people must act on."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def list(
        self,
        *,
        integration_id: str | None = None,
        type: EventType | str | None = None,
        actioned: bool | None = None,
        since: datetime | None = None,
        limit: int | None = 100,
        offset: int = 0,
        before: tuple[datetime, str] | None = None,
    ) -> builtins.list[Event]:
        """Events, newest first, filtered by integration, type, actioned and time.

        :param before: keyset paging: events older than this ``(created_at, id)`` only.
        """
        kind = EventType(type) if type is not None else None
        return atomically(
            self._uow,
            lambda uow: uow.events.list(
                integration_id=integration_id,
                type=kind,
                actioned=actioned,
                since=since,
                limit=limit,
                offset=offset,
                before=before,
            ),
        )

    def count(
        self,
        *,
        integration_id: str | None = None,
        type: EventType | str | None = None,
        actioned: bool | None = None,
        since: datetime | None = None,
    ) -> int:
        """How many events :meth:`list` would return without paging."""
        kind = EventType(type) if type is not None else None
        return atomically(
            self._uow,
            lambda uow: uow.events.count(
                integration_id=integration_id, type=kind, actioned=actioned, since=since
            ),
        )

    def get(self, event_id: str) -> Event:
        """One event."""
        return atomically(self._uow, lambda uow: uow.events.get(event_id))

    def mark_actioned(self, event_id: str, by: str = "") -> Event:
        """Mark an event as dealt with (by whom); marking twice keeps the first."""
        now = self._clock.now()
        return atomically(self._uow, lambda uow: uow.events.mark_actioned(event_id, by, now))

    def raise_event(
        self, type: EventType, message: str, *, integration_id: str | None = None
    ) -> Event:
        """Record an event (for embedding services with their own checks)."""
        event = Event(
            id=new_id(),
            type=type,
            message=message,
            created_at=self._clock.now(),
            integration_id=integration_id,
        )
        return atomically(self._uow, lambda uow: uow.events.add(event))
