"""Delivery as tasks of your own Celery app (``pip install "billbridge[celery]"``).

For a platform that already runs Celery: instead of ``billbridge worker`` processes, its Celery
workers deliver, read invoice statuses back and send webhooks, on a beat schedule::

    from celery import Celery

    import billbridge
    from billbridge.contrib.celery import beat_schedule, install

    app = Celery("billing", broker="amqp://guest:guest@localhost//")
    tasks = install(app, lambda: billbridge.Engine("postgresql+psycopg://…"))
    app.conf.beat_schedule = {**app.conf.beat_schedule, **beat_schedule()}

The tasks (names under ``prefix``, ``billbridge`` by default):

* ``billbridge.deliver_due``: the fan-out. Finds the destination tenants with runs due and
  queues one ``deliver_tenant`` task for each.
* ``billbridge.deliver_tenant(key, integration_ids)``: delivers one tenant's due runs under
  the tenant's lease (:meth:`Engine.deliver_tenant <billbridge.engine.Engine.deliver_tenant>`),
  the lease ``billbridge worker`` takes: Celery workers and ``billbridge worker`` processes
  never deliver one tenant at the same time, its rate limits hold across all of them, and each
  run is claimed, so nothing is sent twice. A tenant being delivered elsewhere is left to the
  worker delivering it (the task returns ``{"busy": true}``).
* ``billbridge.poll_invoice_statuses``: status read-back (paid, voided...), within each
  tenant's lease too.
* ``billbridge.dispatch_webhooks``: queues and sends the webhook deliveries that are due.

The tasks do not retry: the beat schedule is their retry. A task that fails (the database
away) or a worker that dies mid-delivery leaves runs claimed and the tenant leased until
``worker_lease_seconds`` pass; the next fan-out after that hands the tenant to another worker,
which sends those runs again with the same idempotency keys, so the destination answers with
the invoice it already made.

The engine is built once per worker process, on the first task it runs there, by the factory
given to :func:`install` (never before a fork: a child sharing its parent's engine would share
its database connections and its identity as a lease holder).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs

try:
    from celery import signals
except ImportError as exc:
    raise ImportError(
        "billbridge.contrib.celery needs Celery, which is not installed: "
        'pip install "billbridge[celery]"'
    ) from exc

from billbridge.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Iterator

    from billbridge.engine import Engine

__all__ = ["BillbridgeTasks", "beat_schedule", "install"]

log = get_logger(__name__)

#: Seconds between beat entries, by default: delivery as often as ``billbridge worker`` polls;
#: status read-back is scheduled in minutes (``statusCheckMinutes``); webhook retries start at
#: 10 s.
DELIVERY_EVERY = 5.0
STATUSES_EVERY = 60.0
WEBHOOKS_EVERY = 10.0


@attrs.frozen
class BillbridgeTasks:
    """The tasks :func:`install` registered on an app (Celery ``Task`` objects)."""

    #: Queues one :attr:`deliver_tenant` task per tenant with runs due; returns their keys.
    deliver_due: Any
    #: ``(key, integration_ids)``: delivers one tenant's due runs under its lease.
    deliver_tenant: Any
    #: Reads back the statuses of delivered invoices that are due for it.
    poll_invoice_statuses: Any
    #: Queues and sends the webhook deliveries that are due; returns how many were attempted.
    dispatch_webhooks: Any


class _ProcessEngine:
    """One engine per process, built on first use by the application's factory."""

    def __init__(self, factory: Callable[[], Engine]) -> None:
        self._factory = factory
        self._engine: Engine | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        #: Jobs under way in this process that must not run twice at once in it.
        self._busy: set[str] = set()

    def get(self) -> Engine:
        with self._lock:
            if self._engine is None or self._pid != os.getpid():
                # Built here, in the process that runs the task: an engine inherited through a
                # fork would share its parent's connections and lease identity.
                self._engine = self._factory()
                self._pid = os.getpid()
            return self._engine

    def close(self, **_signal: object) -> None:
        """Release the engine's connections (a worker process shutting down)."""
        with self._lock:
            engine, self._engine = self._engine, None
            if engine is not None and self._pid == os.getpid():
                engine.close()

    @contextmanager
    def alone(self, job: str) -> Iterator[bool]:
        """Whether ``job`` may run: False while it already runs in this process.

        Tenant leases are held by an engine, so two threads of one worker process (Celery's
        ``threads`` pool) reading statuses back would both hold the same tenant's lease.
        (Delivery keeps such calls apart itself.)
        """
        with self._lock:
            free = job not in self._busy
            self._busy.add(job)
        try:
            yield free
        finally:
            if free:
                with self._lock:
                    self._busy.discard(job)


def install(
    app: Any,
    engine_factory: Callable[[], Engine],
    *,
    prefix: str = "billbridge",
    max_runs: int | None = None,
    expires: float | None = 60.0,
) -> BillbridgeTasks:
    """Register billbridge's tasks on ``app`` (your ``celery.Celery``); returns them.

    :param engine_factory: builds the engine, once in each worker process that runs a task
        (and never in a process that only sends them).
    :param prefix: the tasks' names are ``{prefix}.deliver_due`` and so on; route them to a
        queue of their own with ``task_routes`` (``{"billbridge.*": {"queue": "billing"}}``).
    :param max_runs: the most runs one ``deliver_tenant`` task delivers (the rest go in the
        next one), so that a tenant's month-end backlog does not hold a worker slot for long;
        ``None``: everything due.
    :param expires: seconds after which a queued ``deliver_tenant`` task is dropped instead of
        run (a later fan-out queues the tenant again), so that busy workers do not gather
        stale copies; ``None``: never.
    """
    engines = _ProcessEngine(engine_factory)
    # Weak references to a bound method: the handlers go with the app's tasks.
    signals.worker_process_shutdown.connect(engines.close)
    signals.worker_shutdown.connect(engines.close)

    def register(function: Callable[..., Any]) -> Any:
        # Not shared: a shared task is added to every app created afterwards, and these hold
        # this app's engine factory.
        return app.task(name=f"{prefix}.{function.__name__}", shared=False)(function)

    def deliver_tenant(key: str, integration_ids: list[str]) -> dict[str, Any]:
        report = engines.get().deliver_tenant(key, integration_ids, max_runs=max_runs)
        if report is None:
            return {"tenant": key, "busy": True}
        if report.attempted:
            log.info("%s: delivered %d run(s): %s", key, report.attempted, dict(report.statuses))
        return {
            "tenant": key,
            "busy": False,
            "attempted": report.attempted,
            "statuses": dict(report.statuses),
            "requests": report.requests,
            "throttled": report.throttled,
            "seconds": report.seconds,
        }

    deliver_tenant_task = register(deliver_tenant)

    def deliver_due() -> list[str]:
        tenants = engines.get().due_tenants()
        for tenant in tenants:
            deliver_tenant_task.apply_async(
                args=(tenant.key, tenant.integration_ids), expires=expires
            )
        return [tenant.key for tenant in tenants]

    def poll_invoice_statuses() -> dict[str, Any]:
        with engines.alone("statuses") as free:
            if not free:
                return {"busy": True}
            report = engines.get().poll_invoice_statuses()
        return {"busy": False, **attrs.asdict(report)}

    def dispatch_webhooks() -> int:
        # Deliveries are claimed in the database: any number of these may run at once.
        return engines.get().webhooks.dispatch()

    return BillbridgeTasks(
        deliver_due=register(deliver_due),
        deliver_tenant=deliver_tenant_task,
        poll_invoice_statuses=register(poll_invoice_statuses),
        dispatch_webhooks=register(dispatch_webhooks),
    )


def beat_schedule(
    *,
    prefix: str = "billbridge",
    delivery: float = DELIVERY_EVERY,
    statuses: float | None = STATUSES_EVERY,
    webhooks: float | None = WEBHOOKS_EVERY,
) -> dict[str, dict[str, Any]]:
    """Beat entries for the tasks, to merge into the app's ``beat_schedule``.

    Seconds between runs of each; ``None`` leaves an entry out (for instance ``webhooks=None``
    when ``billbridge serve`` replicas send them). Each entry expires after its own interval:
    a fan-out no worker picked up in time is replaced by the next one.
    """
    every = {
        "deliver_due": delivery,
        "poll_invoice_statuses": statuses,
        "dispatch_webhooks": webhooks,
    }
    return {
        f"{prefix}.{task}": {
            "task": f"{prefix}.{task}",
            "schedule": seconds,
            "options": {"expires": seconds},
        }
        for task, seconds in every.items()
        if seconds is not None
    }
