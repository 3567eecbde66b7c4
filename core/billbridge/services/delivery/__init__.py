"""Delivering runs: tenant groups, leases, preparation, sending and recording outcomes.

:class:`Deliverer` is the entry point (``engine.deliver_pending()``, ``engine.deliver(run_id)``,
``billbridge worker``); each module below it does one part of the job.
"""

from billbridge.services.delivery.worker import Deliverer, DeliveryReport, ProgressCallback

__all__ = ["Deliverer", "DeliveryReport", "ProgressCallback"]
