"""Fault injection for emulators: latency, 5xx answers, hangs, and responses lost after commit.

A :class:`FaultPlan` is shared between a test and the emulator's :class:`FaultMiddleware`. Faults
are drawn at random at the configured rates (seeded, so runs repeat), or scripted one by one for
deterministic tests (``plan.script("lost")`` makes the next matching request lose its answer).

The four faults and what a client sees:

* ``error``: the request is refused before anything happens; an HTTP 500 or 503 with the
  provider's error body. Nothing was written.
* ``timeout``: the request hangs (nothing written) for ``hang_seconds``; the client times out.
* ``lost``: the request is processed and **committed**, then the connection is cut in the middle
  of the response; the client sees a protocol error and cannot know whether it worked. This is
  the case idempotency keys exist for.
* latency: every matching request is delayed by ``latency`` seconds.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter, deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Literal

import attrs
from starlette.responses import JSONResponse, Response

__all__ = ["Fault", "FaultMiddleware", "FaultPlan"]

Fault = Literal["error", "timeout", "lost"]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _default_error(status: int) -> Response:
    return JSONResponse({"error": "injected fault", "status": status}, status_code=status)


@attrs.define
class FaultPlan:
    """What to break, how often. Change it while the emulator runs; it is thread-safe."""

    error_rate: float = 0.0
    timeout_rate: float = 0.0
    lost_response_rate: float = 0.0
    latency: float = 0.0
    hang_seconds: float = 30.0
    error_statuses: tuple[int, ...] = (500, 503)
    #: Only requests whose path starts with one of these are affected (empty: all requests).
    path_prefixes: tuple[str, ...] = ()
    #: Only these HTTP methods (empty: all). E.g. ("POST", "PUT") to break writes only.
    methods: tuple[str, ...] = ()
    seed: int | None = 0
    #: Builds the provider-shaped body for an injected error status.
    error_response: Callable[[int], Response] = _default_error
    injected: Counter[str] = attrs.field(factory=Counter)
    _scripted: deque[Fault] = attrs.field(factory=deque)
    _random: random.Random = attrs.field(init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock)

    def __attrs_post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def script(self, *faults: Fault) -> None:
        """Make the next matching requests suffer these faults, in order."""
        with self._lock:
            self._scripted.extend(faults)

    def clear(self) -> None:
        """No more faults (rates to zero, script emptied)."""
        with self._lock:
            self.error_rate = self.timeout_rate = self.lost_response_rate = self.latency = 0.0
            self._scripted.clear()

    def applies(self, method: str, path: str) -> bool:
        """True when a request with this method and path is subject to the plan."""
        if self.methods and method.upper() not in self.methods:
            return False
        return not self.path_prefixes or path.startswith(self.path_prefixes)

    def draw(self) -> Fault | None:
        """The fault for the next matching request, or ``None``."""
        with self._lock:
            if self._scripted:
                fault: Fault | None = self._scripted.popleft()
            else:
                roll = self._random.random()
                fault = None
                for name, rate in (
                    ("error", self.error_rate),
                    ("timeout", self.timeout_rate),
                    ("lost", self.lost_response_rate),
                ):
                    if roll < rate:
                        fault = name  # type: ignore[assignment]
                        break
                    roll -= rate
            if fault is not None:
                self.injected[fault] += 1
            return fault

    def error_status(self) -> int:
        """One of the configured error statuses."""
        with self._lock:
            return self._random.choice(self.error_statuses)


class _CutConnection(Exception):
    """Raised after a response started: the server closes the connection mid-response."""


class FaultMiddleware:
    """ASGI middleware applying a :class:`FaultPlan` to an emulator."""

    def __init__(self, app: ASGIApp, plan: FaultPlan) -> None:
        self.app = app
        self.plan = plan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        plan = self.plan
        if scope["type"] != "http" or not plan.applies(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        if plan.latency:
            await asyncio.sleep(plan.latency)
        fault = plan.draw()
        if fault == "error":
            await plan.error_response(plan.error_status())(scope, receive, send)
            return
        if fault == "timeout":
            await asyncio.sleep(plan.hang_seconds)
            await plan.error_response(504)(scope, receive, send)
            return
        if fault == "lost":
            await self._lose_response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _lose_response(self, scope: Scope, receive: Receive, send: Send) -> None:
        started: list[Message] = []

        async def swallow(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.append(message)

        # The application runs to completion: whatever it writes is committed.
        await self.app(scope, receive, swallow)
        start: Message = started[0] if started else {"type": "http.response.start", "status": 200}
        original: list[tuple[bytes, bytes]] = list(start.get("headers", []))
        headers = [(k, v) for k, v in original if k.lower() != b"content-length"]
        # Promise a body, send none, then fail: the server drops the connection and the client
        # sees an incomplete response, as when a network path dies after the provider committed.
        await send(
            {
                "type": "http.response.start",
                "status": start.get("status", 200),
                "headers": [*headers, (b"content-length", b"100000")],
            }
        )
        raise _CutConnection("response deliberately lost after commit (fault injection)")
