"""Server-Sent Events: the activity feed as it happens (``GET /api/stream``), for the console.

Each feed item is one SSE event: ``event:`` its type (``run.complete``,
``integration.missingaccountmapping.error``...), ``id:`` a resume position, ``data:`` the JSON
``{key, type, at, data}``. A client reconnecting with ``Last-Event-ID`` (EventSource does it by
itself) continues from there; an item whose ``key`` it already saw may come again right after a
reconnect. A comment line is sent every 15 seconds when nothing happens (proxies close idle
connections), and the stream ends after ``stream_lifetime`` seconds with a ``retry:`` hint.

Browsers' EventSource cannot send an ``Authorization`` header: use a fetch-based client
(e.g. @microsoft/fetch-event-source) with the API key, as for every other route.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from billbridge.api.endpoints import READ, Call, Endpoints, Param, ok
from billbridge.api.errors import ApiError
from billbridge.domain.activity import FEED_TYPES, FeedItem
from billbridge.domain.models import dumps
from billbridge.errors import FieldError
from billbridge.services.activity import OVERLAP

__all__ = ["ROUTES"]

ROUTES = Endpoints("events")

_KEEP_ALIVE = 15.0


@ROUTES.route(
    "GET",
    "/api/stream",
    scope=READ,
    summary="Server-Sent Events: events and delivery outcomes as they happen",
    params=[
        Param(
            "types",
            {"type": "string", "enum": list(FEED_TYPES)},
            "Only these types (repeat it); default: all.",
            many=True,
        ),
        Param(
            "since",
            {"type": "string", "format": "date-time"},
            "Start from this time instead of now (ignored with Last-Event-ID).",
        ),
    ],
    raw=True,
    responses=[ok({"type": "string"}, "A text/event-stream of feed items")],
)
async def stream_activity(call: Call) -> Response:
    """Events (``integration.*.error``) and delivery outcomes (``run.<status>``) pushed as
    Server-Sent Events; each ``data`` is ``{key, type, at, data}``."""
    start = _resume_position(call) or call.query.get("since") or call.engine.clock.now()
    types = set(call.query.get("types") or ())
    return StreamingResponse(
        _events(call, start, types),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _resume_position(call: Call) -> datetime | None:
    given = call.request.headers.get("last-event-id")
    if not given:
        return None
    try:
        return datetime.fromisoformat(given)
    except ValueError:
        raise ApiError(
            422,
            "validation_failed",
            "Last-Event-ID refused",
            [FieldError("Last-Event-ID", "is not an id this stream gave out")],
        ) from None


async def _events(call: Call, start: datetime, types: set[str]) -> AsyncIterator[str]:
    settings, activity = call.settings, call.engine.activity
    position = start
    seen: dict[str, datetime] = {}
    ends = time.monotonic() + settings.stream_lifetime
    quiet_since = time.monotonic()
    yield "retry: 3000\n\n"
    while time.monotonic() < ends:
        if await call.request.is_disconnected():
            return
        items: list[FeedItem] = await run_in_threadpool(
            activity.since, position - OVERLAP, limit=500
        )
        for item in items:
            if item.key in seen or item.at < start:
                continue
            seen[item.key] = item.at
            if types and item.type not in types:
                continue
            quiet_since = time.monotonic()
            yield _event(item)
        if items:
            position = max(position, items[-1].at)
        _forget_older(seen, position - OVERLAP - timedelta(seconds=1))
        if time.monotonic() - quiet_since > _KEEP_ALIVE:
            quiet_since = time.monotonic()
            yield ": keep-alive\n\n"
        await anyio.sleep(settings.stream_interval)


def _event(item: FeedItem) -> str:
    body = dumps({"key": item.key, "type": item.type, "at": item.at, "data": item.data})
    return f"id: {item.at.isoformat()}\nevent: {item.type}\ndata: {body}\n\n"


def _forget_older(seen: dict[str, datetime], before: datetime) -> None:
    for key in [k for k, at in seen.items() if at < before]:
        del seen[key]
