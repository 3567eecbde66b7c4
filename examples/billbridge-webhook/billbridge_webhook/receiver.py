"""A fake webhook receiver, for tests and for trying the destination out.

It does what a well-behaved receiver does: verifies every request's signature and timestamp
(401 otherwise), answers each ``Idempotency-Key`` once and repeats that answer afterwards,
stores invoices and updates them by id, and refuses to change an invoice it was told is
locked (409, as a paid invoice). Tests can script failures (:meth:`FakeReceiver.fail_next`).
Serve it on loopback with :func:`billbridge.testing.emulation.server.serve`::

    receiver = FakeReceiver(secret="0123456789abcdef")
    with serve(receiver.app) as server:
        ...  # an integration with {"url": server.url + "/bills", "secret": ...}
    receiver.invoices  # what was delivered
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from billbridge.domain.models import dumps, loads
from billbridge_webhook.client import IDEMPOTENCY_HEADER
from billbridge_webhook.signing import (
    DEFAULT_TOLERANCE,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    InvalidSignature,
    verify,
)

__all__ = ["FakeReceiver", "Received"]


@attrs.frozen
class Received:
    """One request as the receiver saw it, and what it answered."""

    path: str
    headers: Mapping[str, str]
    body: bytes
    status: int
    #: Why the signature check failed, or ``None`` when it passed.
    refused: str | None = None

    def json(self) -> Any:
        """The body as JSON (exact decimals)."""
        return loads(self.body)


@attrs.frozen
class _Answer:
    status: int
    body: dict[str, Any]
    headers: Mapping[str, str] = attrs.field(factory=dict)


class FakeReceiver:
    """An in-memory webhook receiver; its :attr:`app` is a Starlette application.

    :param secret: the signing secret (several, newest first, to test rotation).
    :param tolerance: seconds of clock difference accepted (replay window).
    :param clock: the receiver's time, for the timestamp check.
    """

    def __init__(
        self,
        secret: str | Sequence[str],
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.secret = secret
        self.tolerance = tolerance
        self.clock = clock
        #: Invoices by id: ``{"id", "revision", "invoice"}`` as last delivered.
        self.invoices: dict[str, dict[str, Any]] = {}
        #: Every request received, in order.
        self.received: list[Received] = []
        #: Invoices that can no longer change (updates answer 409).
        self.locked: set[str] = set()
        self._replies: dict[str, _Answer] = {}
        self._scripted: deque[_Answer] = deque()
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/{path:path}", self._receive, methods=["POST"])])

    def fail_next(
        self,
        status: int,
        error: str = "scripted failure",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next verified request with ``status`` (nothing is stored)."""
        with self._lock:
            self._scripted.append(_Answer(status, {"error": error}, dict(headers or {})))

    def invoices_for(self, bill_id: str) -> list[dict[str, Any]]:
        """The invoices stored for one bill (to check nothing was made twice)."""
        with self._lock:
            return [i for i in self.invoices.values() if i["invoice"]["billId"] == bill_id]

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            verify(
                self.secret,
                headers.get(TIMESTAMP_HEADER.lower(), ""),
                body,
                headers.get(SIGNATURE_HEADER.lower(), ""),
                self.tolerance,
                now=self.clock(),
            )
        except InvalidSignature as exc:
            return self._record(request, headers, body, _Answer(401, {"error": str(exc)}), exc)
        with self._lock:
            answer = self._answer(request, headers, body)
        return self._record(request, headers, body, answer)

    def _answer(self, request: Request, headers: Mapping[str, str], body: bytes) -> _Answer:
        """What to answer a verified request (called with the lock held)."""
        if self._scripted:
            return self._scripted.popleft()
        key = headers.get(IDEMPOTENCY_HEADER.lower())
        if key and key in self._replies:
            return self._replies[key]
        try:
            document = loads(body)
            invoice = document["invoice"]
        except (ValueError, KeyError, TypeError):
            return _Answer(400, {"error": "the body is not a billbridge invoice envelope"})
        existing = document.get("id")
        if existing is None:
            invoice_id = f"inv_{len(self.invoices) + 1}"
            self.invoices[invoice_id] = {"id": invoice_id, "revision": 1, "invoice": invoice}
        elif existing not in self.invoices:
            return _Answer(404, {"error": f"no invoice {existing}"})
        elif existing in self.locked:
            return _Answer(409, {"error": f"invoice {existing} is paid and cannot change"})
        else:
            invoice_id = str(existing)
            stored = self.invoices[invoice_id]
            stored.update(revision=stored["revision"] + 1, invoice=invoice)
        answer = _Answer(
            200,
            {
                "id": invoice_id,
                "number": invoice.get("number"),
                "url": f"{str(request.base_url).rstrip('/')}/invoices/{invoice_id}",
            },
        )
        if key:
            self._replies[key] = answer
        return answer

    def _record(
        self,
        request: Request,
        headers: Mapping[str, str],
        body: bytes,
        answer: _Answer,
        refused: InvalidSignature | None = None,
    ) -> Response:
        with self._lock:
            self.received.append(
                Received(
                    path=request.url.path,
                    headers=dict(headers),
                    body=body,
                    status=answer.status,
                    refused=str(refused) if refused else None,
                )
            )
        return Response(
            dumps(answer.body),
            status_code=answer.status,
            media_type="application/json",
            headers=dict(answer.headers),
        )
