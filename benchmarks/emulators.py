"""The QuickBooks and Xero emulators, each served from its own process, on a shared clock.

A real destination runs on someone else's machine; an emulator in the engine's process would
compete with it for the interpreter lock and make the engine look slower than it is. Each
emulator here therefore runs in a child process (``multiprocessing`` spawn) and talks over
loopback HTTP, exactly as in the tests. The parent controls it through a pipe: set-up facts come
back once (URL, tenant id, the ids of the customers/contacts made for the run), and counters
(429s, requests, documents, duplicates, token refreshes) on demand.

Both emulators and the engine follow one :class:`~benchmarks.harness.SyncedScaledClock`, so the
real per-minute limits hold on a clock that runs ``scale`` times faster.
"""

from __future__ import annotations

import collections
import contextlib
import multiprocessing
import time
from collections import Counter
from collections.abc import Mapping
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

import attrs

from benchmarks.harness import SyncedScaledClock

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "ITEM_CODES", "EmulatorProcess", "EmulatorSpec"]

CLIENT_ID = "billbridge-bench"
CLIENT_SECRET = "bench-client-secret-4e1b7c"  # the emulator's own app, not a real secret
#: Xero item codes (seeded by the emulator) that benchmark products map to.
ITEM_CODES = ("PLATFORM", "API-CALLS", "EVENTS", "SEATS", "STORAGE")


@attrs.frozen
class EmulatorSpec:
    """What to start.

    :param kind: ``quickbooks`` or ``xero``.
    :param customers: customers (QuickBooks) or contacts (Xero) to create, one per account.
    :param clock: :meth:`SyncedScaledClock.params`, or ``None`` for real time.
    :param limits: enforce the destination's real rate limits.
    """

    kind: str
    customers: int
    clock: Mapping[str, float] | None = None
    limits: bool = True
    #: QuickBooks only: check that every DocNumber is unique (6140). The emulator scans every
    #: stored document for each write, which grows quadratically over a long run; benchmarks
    #: that measure the engine's own cost turn it off.
    unique_numbers: bool = True


class _Busy:
    """ASGI middleware adding up the wall time the emulator spends answering (its load)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seconds = 0.0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.seconds += time.perf_counter() - started


def _serve(spec: EmulatorSpec, pipe: Connection) -> None:
    """The child process: build the emulator, serve it, answer the parent's requests."""
    from billbridge.domain.clock import Clock, SystemClock
    from billbridge.testing.emulation.server import serve

    clock: Clock = (
        SyncedScaledClock.from_params(spec.clock) if spec.clock is not None else SystemClock()
    )
    if spec.kind == "quickbooks":
        from billbridge_quickbooks.emulator import QuickBooksEmulator

        qbo = QuickBooksEmulator(clock, limits=spec.limits)
        company = qbo.add_company(name="Benchmark Company")
        company.custom_doc_numbers = spec.unique_numbers
        qbo.oauth.add_client(CLIENT_ID, CLIENT_SECRET)
        customers = [
            str(company.add_customer(f"Benchmark customer {n}")["Id"])
            for n in range(1, spec.customers + 1)
        ]
        items = [str(i["Id"]) for i in company.items.values() if i.get("Active")]
        timer = _Busy(qbo.app)
        server = serve(timer)
        pipe.send(
            {
                "url": server.url,
                "tenant_id": company.realm_id,
                "customers": customers,
                "items": items,
                "endpoints": qbo.endpoints(server.url),
            }
        )

        def stats() -> dict[str, Any]:
            documents = [*company.invoices.values(), *company.credit_memos.values()]
            numbers = Counter(str(d.get("DocNumber")) for d in documents)
            return {
                "throttled": dict(qbo.throttled),
                "calls": dict(qbo.calls),
                "documents": len(documents),
                "duplicates": sum(c - 1 for c in numbers.values() if c > 1),
                "oauth": dict(qbo.oauth.stats),
                "busy_seconds": timer.seconds,
            }

    elif spec.kind == "xero":
        from billbridge_xero.emulator import XeroEmulator

        xero = XeroEmulator(clock, limits=spec.limits)
        # Every write body is kept for schema checks in tests; a benchmark needs only the last
        # few, and keeping all of them would grow the emulator (not the engine) by ~100 MB.
        xero.captured = collections.deque(maxlen=50)  # type: ignore[assignment]
        org = xero.add_organisation("Benchmark Ltd", base_currency="GBP", filler_contacts=5)
        xero.oauth.add_client(CLIENT_ID, CLIENT_SECRET)
        customers = [
            str(org.add_contact(f"Benchmark contact {n}")["ContactID"])
            for n in range(1, spec.customers + 1)
        ]
        timer = _Busy(xero.app)
        server = serve(timer)
        pipe.send(
            {
                "url": server.url,
                "tenant_id": org.tenant_id,
                "customers": customers,
                "items": list(ITEM_CODES),
                "endpoints": xero.endpoints(server.url),
            }
        )

        def stats() -> dict[str, Any]:
            documents = list(org.documents.values())
            numbers = Counter(str(d.get("Number")) for d in documents)
            return {
                "throttled": dict(xero.rate_limited),
                "calls": dict(xero.requests),
                "documents": len(documents),
                "duplicates": sum(c - 1 for c in numbers.values() if c > 1),
                "oauth": dict(xero.oauth.stats),
                "peak_in_flight": xero._in_flight.peak,
                "busy_seconds": timer.seconds,
            }

    else:
        raise ValueError(f"unknown emulator {spec.kind!r}")
    try:
        while True:
            command = pipe.recv()
            if command == "stats":
                pipe.send(stats())
            elif command == "stop":
                break
    finally:
        server.stop()


class EmulatorProcess:
    """A running emulator in a child process; use as a context manager.

    Attributes after start: :attr:`url`, :attr:`tenant_id`, :attr:`customers` (external ids,
    one per account), :attr:`items` (external item ids or codes), :attr:`endpoints` (the URLs
    for :class:`~billbridge.settings.DestinationSettings`).
    """

    def __init__(self, spec: EmulatorSpec) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(spec, child), daemon=True)
        self._process.start()
        child.close()
        if not self._pipe.poll(120):
            self._process.kill()
            raise RuntimeError(f"the {spec.kind} emulator did not start")
        ready: dict[str, Any] = self._pipe.recv()
        self.url: str = ready["url"]
        self.tenant_id: str = ready["tenant_id"]
        self.customers: list[str] = ready["customers"]
        self.items: list[str] = ready["items"]
        self.endpoints: dict[str, str] = ready["endpoints"]

    def stats(self) -> dict[str, Any]:
        """The emulator's counters now."""
        self._pipe.send("stats")
        answer: dict[str, Any] = self._pipe.recv()
        return answer

    def stop(self) -> None:
        """Stop serving and end the process."""
        if self._process.is_alive():
            with contextlib.suppress(BrokenPipeError, OSError):
                self._pipe.send("stop")
            self._process.join(15)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
