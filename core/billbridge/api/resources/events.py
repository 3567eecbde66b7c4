"""Events people must act on: list with filters, read, mark actioned."""

from __future__ import annotations

from typing import Any

from billbridge.api import serializers
from billbridge.api.endpoints import ADMIN, READ, Call, Endpoints, Param, Reply, ok
from billbridge.api.pagination import PAGE_PARAMS, keyset_page, page_body
from billbridge.api.schemas import REQUESTS
from billbridge.domain.models import EventType

__all__ = ["ROUTES"]

ROUTES = Endpoints("events")


@ROUTES.route(
    "GET",
    "/api/events",
    scope=READ,
    summary="List events",
    params=[
        Param("integrationId", {"type": "string"}, "Only this integration's events."),
        Param("type", {"type": "string", "enum": [t.value for t in EventType]}, "Only this type."),
        Param("actioned", {"type": "boolean"}, "false: open events only; true: dealt with."),
        Param("since", {"type": "string", "format": "date-time"}, "Raised at or after."),
        *PAGE_PARAMS,
    ],
    responses=[ok("EventPage", "Events, newest first, with the total")],
)
def list_events(call: Call) -> Reply:
    """Each event says what to do: map what, reconnect which credential, replay which run."""
    q, events = call.query, call.engine.events
    filters: dict[str, Any] = {
        "integration_id": q.get("integrationId"),
        "type": q.get("type"),
        "actioned": q.get("actioned"),
        "since": q.get("since"),
    }
    items, cursor = keyset_page(
        call,
        lambda before, limit: events.list(**filters, limit=limit, before=before),
        lambda event: (event.created_at, event.id),
    )
    return Reply(page_body([serializers.event(e) for e in items], events.count(**filters), cursor))


@ROUTES.route(
    "GET",
    "/api/events/{eventId}",
    scope=READ,
    summary="One event",
    responses=[ok("Event", "The event")],
    errors=[404],
)
def get_event(call: Call) -> Reply:
    """One event."""
    return Reply(serializers.event(call.engine.events.get(call.path["eventId"])))


@ROUTES.route(
    "POST",
    "/api/events/{eventId}/action",
    scope=ADMIN,
    summary="Mark an event actioned",
    body=REQUESTS["EventAction"],
    body_example={"by": "ops@example.com"},
    responses=[ok("Event", "The event, actioned (marking twice keeps the first)")],
    errors=[404],
)
def action_event(call: Call) -> Reply:
    """Records who dealt with the event (default: the API key's name)."""
    by = call.body.get("by") or call.caller
    return Reply(serializers.event(call.engine.events.mark_actioned(call.path["eventId"], by)))
