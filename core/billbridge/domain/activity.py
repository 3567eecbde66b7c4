"""The activity feed: events and delivery outcomes in time order, and webhooks that carry them.

The feed is what the HTTP service pushes: to webhook endpoints (signed, retried, logged) and to
the console's Server-Sent Events stream. Its items are built from stored events and run
attempts, so every process sharing the database sees the same feed.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from billbridge.domain.models import Event, EventType, Run, RunAttempt, RunStatus, frozen_map, thaw

__all__ = [
    "FEED_TYPES",
    "FeedItem",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookStatus",
    "attempt_item",
    "event_item",
    "run_outcome_type",
]


def run_outcome_type(status: RunStatus | str) -> str:
    """The feed type of a delivery attempt that ended with ``status`` (``run.complete``...)."""
    return f"run.{RunStatus(status).value.lower()}"


FEED_TYPES: tuple[str, ...] = (
    *(t.value for t in EventType),
    *(run_outcome_type(s) for s in RunStatus if s not in (RunStatus.WAITING, RunStatus.STARTED)),
)
"""Every type the feed carries: the event types, then ``run.<status>`` for attempt outcomes."""


@attrs.frozen
class FeedItem:
    """One thing that happened: an event was raised, or a delivery attempt ended.

    ``key`` identifies the item across readings of the feed (``event:<id>``,
    ``attempt:<run id>:<number>``); ``data`` is its JSON body (camelCase).
    """

    key: str
    type: str
    at: datetime
    data: Mapping[str, Any] = attrs.field(converter=frozen_map)


class WebhookStatus(enum.StrEnum):
    """Where a webhook delivery is."""

    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


@attrs.frozen
class WebhookEndpoint:
    """A URL told about feed items of the given types (all types when empty)."""

    id: str
    url: str
    created_at: datetime
    updated_at: datetime
    description: str = ""
    event_types: tuple[str, ...] = ()
    enabled: bool = True

    def wants(self, item_type: str) -> bool:
        """True when this endpoint is to be told about items of ``item_type``."""
        return self.enabled and (not self.event_types or item_type in self.event_types)


@attrs.frozen
class WebhookDelivery:
    """One feed item sent (or to be sent) to one endpoint, with how it went."""

    id: str
    endpoint_id: str
    dedupe_key: str
    event_type: str
    payload: str
    status: WebhookStatus
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None = None
    response_status: int | None = None
    error: str | None = None
    delivered_at: datetime | None = None


def _present(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def event_item(event: Event) -> FeedItem:
    """The feed item of a raised event (its type is the event's type)."""
    return FeedItem(
        key=f"event:{event.id}",
        type=event.type.value,
        at=event.created_at,
        data=_present(
            {
                "id": event.id,
                "type": event.type.value,
                "message": event.message,
                "integrationId": event.integration_id,
                "runId": event.run_id,
                "details": thaw(event.details),
                "createdAt": event.created_at,
            }
        ),
    )


def attempt_item(attempt: RunAttempt, run: Run) -> FeedItem:
    """The feed item of a finished delivery attempt (``run.<status it ended with>``)."""
    at = attempt.finished_at or attempt.started_at
    return FeedItem(
        key=f"attempt:{run.id}:{attempt.number}",
        type=run_outcome_type(attempt.status),
        at=at,
        data=_present(
            {
                "runId": run.id,
                "attempt": attempt.number,
                "status": attempt.status.value,
                "error": attempt.error,
                "integrationId": run.integration_id,
                "billId": run.bill_id,
                "billVersion": run.bill_version,
                "accountId": run.account_id,
                "externalId": run.external_id if attempt.status is RunStatus.COMPLETE else None,
                "externalUrl": run.external_url if attempt.status is RunStatus.COMPLETE else None,
                "startedAt": attempt.started_at,
                "finishedAt": at,
            }
        ),
    )
