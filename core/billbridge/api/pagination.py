"""Cursor pagination: ``?limit=&cursor=`` in, ``{items, total, nextCursor}`` out.

Cursors are opaque to clients (base64url JSON). Newest-first listings (runs, skips, events,
webhook deliveries) page by key, ``(createdAt, id)`` of the last item, so items arriving while
a client pages never shift a page; the short, oldest-first listings (integrations,
credentials, mappings) page by position. ``total`` is counted with the same filters.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from billbridge.api.endpoints import Call, Param
from billbridge.api.errors import ApiError
from billbridge.errors import FieldError

__all__ = ["PAGE_PARAMS", "keyset_page", "limit_of", "offset_page", "page_body"]

_T = TypeVar("_T")

PAGE_PARAMS = (
    Param(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": 500},
        "Items per page (default 50, at most 500).",
    ),
    Param(
        "cursor",
        {"type": "string", "minLength": 1},
        "The `nextCursor` of the previous page; absent for the first page.",
    ),
)


def limit_of(call: Call) -> int:
    """The page size asked for, within the service's bounds."""
    limit = call.query.get("limit", call.settings.page_size)
    return max(1, min(int(limit), call.settings.max_page_size))


def _encode(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _decode(call: Call) -> dict[str, Any] | None:
    text = call.query.get("cursor")
    if text is None:
        return None
    try:
        padded = text + "=" * (-len(text) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        value = None
    if not isinstance(value, dict):
        raise ApiError(
            422, "validation_failed", "query parameters refused",
            [FieldError("?cursor", "is not a cursor this listing gave out")],
        )  # fmt: skip
    return value


def keyset_page(
    call: Call,
    fetch: Callable[[tuple[datetime, str] | None, int], Sequence[_T]],
    key: Callable[[_T], tuple[datetime, str]],
) -> tuple[list[_T], str | None]:
    """One newest-first page: ``fetch(before, limit)`` is asked one item more than a page."""
    cursor = _decode(call)
    before: tuple[datetime, str] | None = None
    if cursor is not None:
        try:
            before = (datetime.fromisoformat(cursor["at"]), str(cursor["id"]))
        except (KeyError, TypeError, ValueError):
            raise ApiError(
                422, "validation_failed", "query parameters refused",
                [FieldError("?cursor", "is not a cursor this listing gave out")],
            ) from None  # fmt: skip
    limit = limit_of(call)
    items = list(fetch(before, limit + 1))
    if len(items) <= limit:
        return items, None
    at, last_id = key(items[limit - 1])
    return items[:limit], _encode({"at": at.isoformat(), "id": last_id})


def offset_page(
    call: Call, fetch: Callable[[int, int], Sequence[_T]]
) -> tuple[list[_T], str | None]:
    """One oldest-first page: ``fetch(offset, limit)`` is asked one item more than a page."""
    cursor = _decode(call)
    offset = cursor.get("offset", 0) if cursor is not None else 0
    if not isinstance(offset, int) or offset < 0:
        raise ApiError(
            422, "validation_failed", "query parameters refused",
            [FieldError("?cursor", "is not a cursor this listing gave out")],
        )  # fmt: skip
    limit = limit_of(call)
    items = list(fetch(offset, limit + 1))
    if len(items) <= limit:
        return items, None
    return items[:limit], _encode({"offset": offset + limit})


def page_body(items: Sequence[Any], total: int | None, next_cursor: str | None) -> dict[str, Any]:
    """The page shape: ``{items, total, nextCursor}`` (``nextCursor`` only when more follow)."""
    body: dict[str, Any] = {"items": list(items)}
    if total is not None:
        body["total"] = total
    if next_cursor is not None:
        body["nextCursor"] = next_cursor
    return body
