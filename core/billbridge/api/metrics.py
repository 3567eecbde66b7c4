"""Prometheus metrics (``GET /metrics``), in a registry of the app's own.

Gauges are read from the database when scraped, so every replica sharing it reports the same:

* ``billbridge_runs{status}``: runs by status;
* ``billbridge_queue_depth{tenant}``: runs due now per destination tenant.

Counters and histograms count what this process did:

* ``billbridge_http_requests_total{method,route,status}`` and
  ``billbridge_http_request_duration_seconds{method,route}``: API requests;
* ``billbridge_deliveries_total{destination,outcome}``: delivery attempts by the run status
  they ended with (COMPLETE, ERROR, RATE_LIMIT_RETRY...);
* ``billbridge_delivery_latency_seconds{destination}``: from a bill's submission to the end of
  each delivery attempt;
* ``billbridge_rate_limited_total{destination}``: attempts a destination answered with 429.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from billbridge.domain.models import RunStatus
from billbridge.services.monitoring import AttemptOutcome

if TYPE_CHECKING:
    from billbridge.api.endpoints import Endpoint
    from billbridge.engine import Engine

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.5, 1, 5, 15, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)


class _DatabaseGauges(Collector):
    """Runs by status and queue depth per tenant, read when scraped."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[Metric]:
        runs = GaugeMetricFamily("billbridge_runs", "Runs by status.", labels=["status"])
        for status, count in self._engine.monitoring.run_statuses().items():
            runs.add_metric([status.value], count)
        yield runs
        depth = GaugeMetricFamily(
            "billbridge_queue_depth",
            "Runs due now, per destination tenant (destination:tenant).",
            labels=["tenant"],
        )
        for tenant, count in sorted(self._engine.monitoring.queue_depths().items()):
            depth.add_metric([tenant], count)
        yield depth

    def describe(self) -> Iterable[Metric]:
        return []  # collected on demand only: registering must not query the database


class Metrics:
    """The app's metrics: register requests and delivery outcomes, render for Prometheus."""

    def __init__(self, engine: Engine) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "billbridge_http_requests",
            "API requests by method, route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "billbridge_http_request_duration_seconds",
            "API request durations.",
            ["method", "route"],
            registry=self.registry,
        )
        self.deliveries = Counter(
            "billbridge_deliveries",
            "Delivery attempts by destination and outcome (the run status they ended with).",
            ["destination", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "billbridge_delivery_latency_seconds",
            "From a bill's submission to the end of a delivery attempt.",
            ["destination"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "billbridge_rate_limited",
            "Delivery attempts the destination answered with 429 (too many requests).",
            ["destination"],
            registry=self.registry,
        )
        self.registry.register(_DatabaseGauges(engine))

    @staticmethod
    def clock() -> float:
        """A monotonic time for durations."""
        return time.perf_counter()

    def observe_request(self, endpoint: Endpoint, status: int, started: float) -> None:
        """Count one API request (the route template keeps the label set small)."""
        self.requests.labels(endpoint.method, endpoint.path, str(status)).inc()
        self.request_seconds.labels(endpoint.method, endpoint.path).observe(
            time.perf_counter() - started
        )

    def observe_unrouted(self, method: str, status: int) -> None:
        """Count a request no route took (404, 405)."""
        self.requests.labels(method, "<unrouted>", str(status)).inc()

    def observe_outcomes(self, outcomes: Iterable[tuple[datetime, AttemptOutcome]]) -> None:
        """Count finished delivery attempts (from this process's worker)."""
        for _, outcome in outcomes:
            self.deliveries.labels(outcome.destination, outcome.status.value).inc()
            self.latency.labels(outcome.destination).observe(max(outcome.since_submission, 0.0))
            if outcome.status is RunStatus.RATE_LIMIT_RETRY:
                self.rate_limited.labels(outcome.destination).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
