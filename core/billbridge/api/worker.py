"""The background loop of ``billbridge serve``: deliver due runs, read invoice statuses back,
send webhooks, count outcomes.

It runs in one daemon thread beside the web server and runs the loop ``billbridge worker`` runs
(delivery, then ``engine.poll_invoice_statuses()``, then webhooks; then a wait until the next
run or read-back is due, or the poll interval).
Stopping lets the pass under way finish (runs claimed by a pass cut short would otherwise wait
for their claim to lapse before another worker resumes them) and waits at most ``timeout``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from billbridge.logs import get_logger
from billbridge.services.delivery.loop import LoopSettings, WorkerLoop

if TYPE_CHECKING:
    from billbridge.api.metrics import Metrics
    from billbridge.engine import Engine

__all__ = ["BackgroundWorker"]

log = get_logger(__name__)


class BackgroundWorker:
    """Delivers runs (unless ``deliver=False``) and webhooks (unless ``webhooks=False``).

    The loop is :class:`~billbridge.services.delivery.loop.WorkerLoop`, the one ``billbridge
    worker`` runs: it survives the database going away and stops only on configuration errors.
    """

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
        self._thread: threading.Thread | None = None
        self._loop: WorkerLoop | None = None
        self._pass_started = engine.clock.now()

    @property
    def running(self) -> bool:
        """True while the loop's thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the loop in a daemon thread (nothing to do when there is nothing to run)."""
        if not (self.deliver or self.webhooks) or self.running:
            return
        self._loop = self._make_loop()
        self._thread = threading.Thread(target=self._run, name="billbridge-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 120.0) -> bool:
        """Ask the loop to stop after its current pass; True when it stopped in time."""
        if self._loop is not None:
            self._loop.stop()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def run_once(self) -> float:
        """One pass: deliver what is due, count its outcomes, read invoice statuses back, send
        due webhooks; returns the seconds the loop would wait before the next pass."""
        return self._make_loop().run_once()

    def _make_loop(self) -> WorkerLoop:
        engine = self.engine
        # Statuses before webhooks: a payment read back reaches subscribers in the same pass.
        passes: list[Callable[[], object]] = []
        due: list[Callable[[], datetime | None]] = []
        if self.deliver:
            passes.append(engine.poll_invoice_statuses)
            due.append(engine.next_status_check_at)
        if self.webhooks:
            passes.append(engine.webhooks.dispatch)
        return WorkerLoop(
            engine.deliverer if self.deliver else None,
            engine.clock,
            settings=LoopSettings(poll=self.poll),
            passes=passes,
            due=due,
            report=self._observe,
            starting=self._mark,
        )

    def _mark(self) -> None:
        self._pass_started = self.engine.clock.now()

    def _observe(self, _report: object) -> None:
        if self.metrics is None:
            return
        engine = self.engine
        mine = engine.deliverer.worker_id
        self.metrics.observe_outcomes(engine.monitoring.outcomes(self._pass_started, worker=mine))

    def _run(self) -> None:
        assert self._loop is not None  # made by start()
        try:
            self._loop.run()
        except Exception as exc:
            # A configuration error (a schema too new, an unusable key): said once, loudly.
            log.error("the background worker stopped: %s", exc, exc_info=exc)
