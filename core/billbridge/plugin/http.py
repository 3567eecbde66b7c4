"""What went wrong with an HTTP exchange, in words people read (never an exception's class)."""

from __future__ import annotations

import httpx

__all__ = ["transport_problem"]


def transport_problem(exc: httpx.HTTPError) -> str:
    """A short phrase for a failed request: what a person reading a run or event should see.

    The exception's own text is left out on purpose: it may quote URLs with query strings.
    """
    if isinstance(exc, httpx.ConnectTimeout):
        return "the connection timed out"
    if isinstance(exc, httpx.TimeoutException):
        return "no answer came in time"
    if isinstance(exc, httpx.ConnectError):
        return "the connection failed"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the connection closed before the answer came"
    if isinstance(exc, httpx.TransportError):
        return "the connection broke"
    return "the request failed"
