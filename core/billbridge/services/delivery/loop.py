"""The worker's loop: deliver what is due, wait until more is, and survive the database.

``billbridge worker`` and ``billbridge serve``'s background worker both run this loop. A pass
that fails because the database went away (a restarted PostgreSQL, a connection cut, SQLite
busy past its timeout) is retried with a growing backoff, and delivery carries on once the
database answers again; runs claimed by the failed pass are taken up again when their claims
lapse. Only configuration errors stop the loop: a schema newer than this billbridge, a secret
key that cannot be used.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from datetime import datetime

import attrs
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError

from billbridge.domain.clock import Clock
from billbridge.errors import SecretKeyError
from billbridge.logs import get_logger
from billbridge.services.delivery.worker import Deliverer, DeliveryReport
from billbridge.store.database import SchemaTooNew

__all__ = ["LoopSettings", "WorkerLoop", "database_unavailable"]

log = get_logger(__name__)

#: Errors that stop the loop: they will not go away by waiting.
FATAL = (SchemaTooNew, SecretKeyError)


def database_unavailable(exc: BaseException) -> bool:
    """True for a database that cannot be reached or is busy: worth waiting for."""
    if isinstance(exc, OperationalError | DisconnectionError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


@attrs.frozen
class LoopSettings:
    """How the loop paces itself."""

    #: Seconds between looks for due runs when nothing is due sooner.
    poll: float = 5.0
    #: First and longest wait after a failed pass (doubling in between, with jitter).
    backoff: float = 1.0
    max_backoff: float = 60.0


class WorkerLoop:
    """Runs delivery passes until :meth:`stop` (or a configuration error)."""

    def __init__(
        self,
        deliverer: Deliverer | None,
        clock: Clock,
        *,
        settings: LoopSettings | None = None,
        passes: Sequence[Callable[[], object]] = (),
        due: Sequence[Callable[[], datetime | None]] = (),
        report: Callable[[DeliveryReport], None] | None = None,
        starting: Callable[[], object] | None = None,
    ) -> None:
        """
        :param deliverer: delivers due runs each pass; ``None``: only ``passes`` run (an API
            replica that leaves delivery to separate workers but sends webhooks).
        :param passes: more work done after each delivery pass (sending webhooks, reading
            invoice statuses back), each retried like delivery when the database is away.
        :param due: when the passes' own next work is due (the next status read-back): the
            loop wakes for the earliest of these and the next due run, at most ``poll`` apart.
        :param report: told what each delivery pass did.
        :param starting: called as each pass starts.
        """
        self._deliverer = deliverer
        self._clock = clock
        self.settings = settings or LoopSettings()
        self._passes = tuple(passes)
        self._due = tuple(due)
        self._report = report
        self._starting = starting
        self._stop = threading.Event()
        self._rng = random.Random()
        #: Failed passes in a row (0 while all is well).
        self.failures = 0

    def stop(self) -> None:
        """Stop after the pass under way."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stop.is_set()

    def run(self) -> None:
        """Deliver until stopped; raises only for configuration errors."""
        while not self._stop.is_set():
            self._wait(self.run_once())

    def run_once(self) -> float:
        """One pass; returns how long to wait before the next one."""
        try:
            if self._starting is not None:
                self._starting()
            if self._deliverer is not None:
                report = self._deliverer.deliver_pending()
                if self._report is not None:
                    self._report(report)
            for work in self._passes:
                work()
            wait = self._next_wait()
        except FATAL:
            raise
        except Exception as exc:
            self.failures += 1
            wait = self._backoff()
            if database_unavailable(exc):
                log.warning(
                    "the database is unavailable (%s); trying again in %.1f s",
                    _first_line(exc),
                    wait,
                )
            else:
                # Kept alive: the next pass may well succeed. The type and first line only: an
                # exception's text may quote data.
                log.error("a worker pass failed; trying again in %.1f s", wait, exc_info=exc)
            return wait
        self.failures = 0
        return wait

    def _next_wait(self) -> float:
        sources = list(self._due)
        if self._deliverer is not None:
            sources.append(self._deliverer.next_due_at)
        times = [t for t in (source() for source in sources) if t is not None]
        if not times:
            return self.settings.poll
        seconds = (min(times) - self._clock.now()).total_seconds()
        return max(0.0, min(self.settings.poll, seconds))

    def _backoff(self) -> float:
        growth = float(2 ** min(self.failures - 1, 30))
        ceiling = min(self.settings.max_backoff, self.settings.backoff * growth)
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def _wait(self, seconds: float) -> None:
        # The stop event wakes the wait at once; the clock paces it (tests pass faster ones).
        remaining = seconds
        while remaining > 0 and not self._stop.is_set():
            step = min(remaining, 0.5)
            self._clock.sleep(step)
            remaining -= step


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else "no detail"
