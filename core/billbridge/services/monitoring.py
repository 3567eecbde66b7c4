"""What operators watch (``engine.monitoring``): runs by status, queue depth per tenant,
delivery outcomes. Read from the database, so every process reports the same gauges."""

from __future__ import annotations

import builtins
from collections import Counter
from datetime import datetime

import attrs

from billbridge.domain.clock import Clock
from billbridge.domain.models import Integration, Run, RunAttempt, RunStatus
from billbridge.plugin.manager import PluginRegistry
from billbridge.store import UnitOfWork, UnitOfWorkFactory

__all__ = ["AttemptOutcome", "Monitoring"]


@attrs.frozen
class AttemptOutcome:
    """A finished delivery attempt, for delivery metrics."""

    destination: str
    status: RunStatus
    #: Seconds from the bill's submission (the run's creation) to the end of this attempt.
    since_submission: float
    #: Seconds the attempt took.
    duration: float


class Monitoring:
    """``engine.monitoring``: gauges and outcomes for metrics."""

    def __init__(self, *, uow: UnitOfWorkFactory, plugins: PluginRegistry, clock: Clock) -> None:
        self._uow = uow
        self._plugins = plugins
        self._clock = clock

    def run_statuses(self) -> dict[RunStatus, int]:
        """How many runs have each status (every status, zero included)."""
        with self._uow() as uow:  # read only
            counts = uow.runs.status_counts()
        return {status: counts.get(status, 0) for status in RunStatus}

    def queue_depths(self) -> dict[str, int]:
        """Runs due now per destination tenant (``destination:tenant``), as workers group them.

        A run whose integration has no usable credential counts under
        ``destination:unconnected``; workers park such runs when they next look.
        """
        now = self._clock.now()

        def read(uow: UnitOfWork) -> Counter[str]:
            due = uow.runs.due_counts(now)
            depths: Counter[str] = Counter()
            if not due:
                return depths
            tenants = {c.id: c.tenant_id for c in uow.credentials.list()}
            for integration in uow.integrations.list():
                if integration.id not in due:
                    continue
                key = f"{integration.destination}:{self._tenant(integration, tenants)}"
                depths[key] += due[integration.id]
            return depths

        with self._uow() as uow:
            return dict(read(uow))

    def _tenant(self, integration: Integration, tenants: dict[str, str | None]) -> str:
        # As workers group runs: per tenant, or per integration for destinations without OAuth.
        installed = self._plugins.destinations.get(integration.destination)
        if installed is not None and installed.oauth is None:
            return integration.id
        return tenants.get(integration.credential_id or "") or "unconnected"

    def outcomes(
        self, after: datetime, *, worker: str | None = None, limit: int = 5000
    ) -> builtins.list[tuple[datetime, AttemptOutcome]]:
        """Attempts finished at or after ``after`` (by ``worker``), oldest first, with when."""

        def read(uow: UnitOfWork) -> list[tuple[RunAttempt, Run]]:
            return uow.runs.attempts_finished(after=after, limit=limit, worker=worker)

        with self._uow() as uow:
            found = read(uow)
            destinations = {i.id: i.destination for i in uow.integrations.list()}
        outcomes = []
        for attempt, run in found:
            finished = attempt.finished_at or attempt.started_at
            outcomes.append(
                (
                    finished,
                    AttemptOutcome(
                        destination=destinations.get(run.integration_id, "unknown"),
                        status=attempt.status,
                        since_submission=(finished - run.created_at).total_seconds(),
                        duration=(finished - attempt.started_at).total_seconds(),
                    ),
                )
            )
        return outcomes
