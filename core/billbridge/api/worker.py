"""The background loop of ``billbridge serve``: deliver due runs, send webhooks, count outcomes.

It runs in one daemon thread beside the web server and reuses what ``billbridge worker`` does
(``engine.deliver_pending()``, then a wait until ``engine.next_due_at()`` or the poll interval).
Stopping lets the pass under way finish (runs claimed by a pass cut short would otherwise wait
for their claim to lapse before another worker resumes them) and waits at most ``timeout``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from billbridge.logs import get_logger

if TYPE_CHECKING:
    from billbridge.api.metrics import Metrics
    from billbridge.engine import Engine

__all__ = ["BackgroundWorker"]

log = get_logger(__name__)


class BackgroundWorker:
    """Delivers runs (unless ``deliver=False``) and webhooks (unless ``webhooks=False``)."""

    def __init__(
        self,
        engine: Engine,
        *,
        deliver: bool = True,
        webhooks: bool = True,
        poll: float = 5.0,
        metrics: Metrics | None = None,
    ) -> None:
        self.engine = engine
        self.deliver = deliver
        self.webhooks = webhooks
        self.poll = poll
        self.metrics = metrics
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """True while the loop's thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the loop in a daemon thread (nothing to do when there is nothing to run)."""
        if not (self.deliver or self.webhooks) or self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="billbridge-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 120.0) -> bool:
        """Ask the loop to stop after its current pass; True when it stopped in time."""
        self._stop.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def run_once(self) -> None:
        """One pass: deliver what is due, count its outcomes, send due webhooks."""
        engine = self.engine
        if self.deliver:
            started = engine.clock.now()
            engine.deliver_pending()
            if self.metrics is not None:
                mine = engine.deliverer.worker_id
                self.metrics.observe_outcomes(engine.monitoring.outcomes(started, worker=mine))
        if self.webhooks:
            engine.webhooks.dispatch()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:
                # Kept alive: the next pass may well succeed (a database restart, a network
                # blip). The type only: an exception's text may quote data.
                log.error("background worker pass failed: %s", type(exc).__name__, exc_info=exc)
            self._stop.wait(self._wait())

    def _wait(self) -> float:
        if not self.deliver:
            return self.poll
        try:
            due = self.engine.next_due_at()
        except Exception:
            return self.poll
        if due is None:
            return self.poll
        return max(0.0, min(self.poll, (due - self.engine.clock.now()).total_seconds()))
