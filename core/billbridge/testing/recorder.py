"""Record every request an emulator receives, to check what a plugin really sent.

Wrap any ASGI emulator and serve the wrapper instead::

    recorder = RecordingMiddleware(emulator.app)
    with serve(recorder) as server:
        ...  # run the plugin against server.url
    body = recorder.requests[-1].json()

The conformance kit uses it (through ``Harness.requests``) to check that ``preview_bill``
describes exactly the request ``send_bill`` sends.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import attrs

from billbridge.domain.models import loads

__all__ = ["RecordedRequest", "RecordingMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@attrs.frozen
class RecordedRequest:
    """One HTTP request as the emulator received it (header names in lower case)."""

    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)

    def json(self) -> Any:
        """The body parsed as JSON, numbers that are not integers as exact ``Decimal``."""
        return loads(self.body)


class RecordingMiddleware:
    """ASGI middleware that keeps every HTTP request (method, path, query, headers, body).

    The body is read in full before the wrapped application sees it and handed on unchanged,
    so the emulator behaves exactly as without the recorder. Thread-safe.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        """Forget the requests recorded so far."""
        with self._lock:
            self._requests.clear()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away before sending its whole body
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        recorded = RecordedRequest(
            method=str(scope["method"]).upper(),
            path=str(scope["path"]),
            query=bytes(scope.get("query_string", b"")).decode("latin-1"),
            headers=tuple(
                (bytes(k).decode("latin-1").lower(), bytes(v).decode("latin-1"))
                for k, v in scope.get("headers", [])
            ),
            body=body,
        )
        with self._lock:
            self._requests.append(recorded)
        replayed = False

        async def replay() -> Message:
            # The wrapped app reads the body we already consumed, once; after that it waits
            # on the real channel (which then reports a disconnect, as it would have).
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
