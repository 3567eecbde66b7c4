"""The record a finance team audits: runs (with attempts), routing skips, and events.

``engine.runs``, ``engine.skips`` and ``engine.events``.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from billbridge.domain.models import Event, EventType, Run, RunAttempt, RunStatus, Skip
from billbridge.errors import Conflict
from billbridge.store import EventRepository, RunRepository, new_id
from billbridge.store.queue import DeliveryQueue

if TYPE_CHECKING:
    from billbridge.engine import Engine

__all__ = ["Events", "Runs", "Skips"]


class Runs:
    """``engine.runs``: list, show, and replay delivery runs."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

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
    ) -> builtins.list[Run]:
        """Runs matching every filter, newest first (``since`` inclusive, ``until`` not)."""
        statuses: Any = None
        if status is not None:
            statuses = (
                [RunStatus(status)] if isinstance(status, str) else [RunStatus(s) for s in status]
            )
        return self._engine._unit_of_work(
            lambda s: RunRepository(s).list(
                integration_id=integration_id,
                bill_id=bill_id,
                status=statuses,
                since=since,
                until=until,
                limit=limit,
                offset=offset,
            )
        )

    def get(self, run_id: str) -> Run:
        """One run; raises :class:`~billbridge.errors.NotFound`."""
        return self._engine._unit_of_work(lambda s: RunRepository(s).get(run_id))

    def attempts(self, run_id: str) -> builtins.list[RunAttempt]:
        """The run's attempts, in order."""
        self.get(run_id)
        return self._engine._unit_of_work(lambda s: DeliveryQueue(s).attempts(run_id))

    def replay(self, run_id: str) -> Run:
        """A new WAITING run for the same bill version and integration, pointing to this one.

        Refused while the run (or another run for the same bill version) is still open.
        """
        engine = self._engine
        original = self.get(run_id)
        if not original.status.is_final:
            raise Conflict(
                f"run {run_id} is still {original.status.value}: it cannot be replayed yet"
            )
        now = engine.clock()

        def work(session: Any) -> Run:
            queue = DeliveryQueue(session)
            queued = queue.queued_versions([original.bill_id]).get(
                (original.integration_id, original.bill_id), set()
            )
            if original.bill_version in queued:
                raise Conflict(
                    f"bill {original.bill_id} v{original.bill_version} already has an open run "
                    "for this integration"
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
            return RunRepository(session).add(replay)

        return engine._unit_of_work(work)


class Skips:
    """``engine.skips``: routing decisions not to send, with their reasons."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def list(
        self,
        *,
        integration_id: str | None = None,
        bill_id: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> builtins.list[Skip]:
        """Skips, newest first."""
        return self._engine._unit_of_work(
            lambda s: DeliveryQueue(s).skips(
                integration_id=integration_id, bill_id=bill_id, limit=limit, offset=offset
            )
        )


class Events:
    """``engine.events``: what people must act on."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def list(
        self,
        *,
        integration_id: str | None = None,
        type: EventType | str | None = None,
        actioned: bool | None = None,
        since: datetime | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> builtins.list[Event]:
        """Events, newest first, filtered by integration, type, actioned and time."""
        kind = EventType(type) if type is not None else None
        return self._engine._unit_of_work(
            lambda s: EventRepository(s).list(
                integration_id=integration_id,
                type=kind,
                actioned=actioned,
                since=since,
                limit=limit,
                offset=offset,
            )
        )

    def get(self, event_id: str) -> Event:
        """One event."""
        return self._engine._unit_of_work(lambda s: EventRepository(s).get(event_id))

    def mark_actioned(self, event_id: str, by: str = "") -> Event:
        """Mark an event as dealt with (by whom); marking twice keeps the first."""
        now = self._engine.clock()
        return self._engine._unit_of_work(
            lambda s: EventRepository(s).mark_actioned(event_id, by, now)
        )

    def raise_event(
        self, type: EventType, message: str, *, integration_id: str | None = None
    ) -> Event:
        """Record an event (for embedding services with their own checks)."""
        event = Event(
            id=new_id(),
            type=type,
            message=message,
            created_at=self._engine.clock(),
            integration_id=integration_id,
        )
        return self._engine._unit_of_work(lambda s: EventRepository(s).add(event))
