"""The activity feed (``engine.activity``): events and delivery outcomes in time order.

Read from the stored events and run attempts, so every process sharing the database sees the
same feed; webhooks and the console's event stream are fed from it. Transactions commit a
moment after their timestamps, so readers re-read a short overlap and skip items whose ``key``
they have seen.
"""

from __future__ import annotations

import builtins
from datetime import datetime, timedelta

from billbridge.domain.activity import FeedItem, attempt_item, event_item
from billbridge.store import UnitOfWork, UnitOfWorkFactory

__all__ = ["OVERLAP", "Activity", "feed_since"]

OVERLAP = timedelta(seconds=30)
"""How far back readers re-read: longer than any transaction between its timestamp and its
commit (a delivery's outcome is written in one short transaction)."""


def feed_since(
    uow: UnitOfWork, after: datetime, *, limit: int = 500, worker: str | None = None
) -> builtins.list[FeedItem]:
    """Items at or after ``after``, oldest first, at most ``limit``, read in ``uow``.

    :param worker: attempts of this worker only, and no events (delivery metrics).
    """
    items = [
        attempt_item(attempt, run)
        for attempt, run in uow.runs.attempts_finished(after=after, limit=limit, worker=worker)
    ]
    if worker is None:
        items += [event_item(e) for e in uow.events.created_after(after, limit)]
    items.sort(key=lambda item: (item.at, item.key))
    return items[:limit]


class Activity:
    """``engine.activity``: what happened since a moment."""

    def __init__(self, *, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def since(
        self, after: datetime, *, limit: int = 500, worker: str | None = None
    ) -> builtins.list[FeedItem]:
        """Items at or after ``after``, oldest first, at most ``limit`` (see :func:`feed_since`)."""
        with self._uow() as uow:  # read only: nothing to commit
            return feed_since(uow, after, limit=limit, worker=worker)
