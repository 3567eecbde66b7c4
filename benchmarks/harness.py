"""What every benchmark shares: results and statistics, databases, clocks, timing, processes.

Conventions:

* Every figure a benchmark prints is measured in that run; nothing is estimated or copied.
* A benchmark repeats its measurement (three times in full mode) and reports the median and
  the spread (``(max - min) / median``), because the machines it runs on are shared and noisy.
* Each repetition runs in a fresh Python process (:func:`run_child`): no warm caches, threads
  or memory from a previous repetition, and a peak RSS that belongs to that repetition alone.
* A :class:`Row` is *broken* (``ok=False``) only when something is wrong that noise cannot
  explain: a crash, a duplicate invoice, a 429 received, a run that did not complete. Missing a
  ratio target on a busy machine is reported, never fatal.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import httpx

from billbridge.domain.models import Credential, RunStatus
from billbridge.engine import Engine
from billbridge.plugin.manager import PluginRegistry
from billbridge.store import atomically

__all__ = [
    "REDIRECT",
    "ROOT",
    "Chart",
    "Row",
    "Stat",
    "SyncedScaledClock",
    "database",
    "oauth_connect",
    "peak_rss_mb",
    "postgres_server_url",
    "run_child",
    "time_plugin_calls",
]

ROOT = Path(__file__).resolve().parents[1]
#: The redirect URI the benchmarks' OAuth app uses (loopback: the emulators accept it).
REDIRECT = "http://127.0.0.1:9/callback"
#: Where PostgreSQL benchmarks create their throw-away databases.
POSTGRES_URL_ENVS = ("BILLBRIDGE_BENCH_DATABASE_URL", "BILLBRIDGE_TEST_DATABASE_URL")
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


# --- results --------------------------------------------------------------------------------------


@attrs.frozen
class Stat:
    """Repeated measurements of one figure."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        """The median of the measurements."""
        return float(statistics.median(self.values))

    @property
    def spread(self) -> float:
        """``(max - min) / median``: how much the repetitions disagreed (0 for one value)."""
        if len(self.values) < 2 or self.median == 0:
            return 0.0
        return (max(self.values) - min(self.values)) / abs(self.median)

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        """A statistic over ``values`` (at least one)."""
        if not values:
            raise ValueError("no measurements")
        return cls(tuple(float(v) for v in values))


@attrs.frozen
class Chart:
    """What ``--plot`` draws for a row: named lines of (x, y) points on shared axes.

    :param name: the PNG's file name, without ``.png`` (``month-end-xero``).
    :param title: the chart's title.
    :param x_label: what x is, with its unit (``scaled minutes``).
    :param y_label: what y is, with its unit (``invoices per minute``).
    :param lines: label → points, drawn in order; a flat line (a limit bound) is two points.
    :param kind: ``line`` (over time), ``bar`` (one bar per point: tenants, databases).
    """

    name: str
    title: str
    x_label: str
    y_label: str
    lines: Mapping[str, Sequence[tuple[float, float]]]
    kind: str = "line"


@attrs.frozen
class Row:
    """One line of the results table.

    :param benchmark: which benchmark (``month-end``, ``overhead``...).
    :param metric: what was measured, with its conditions.
    :param value: the measurements (median shown, spread beside it).
    :param unit: the unit of ``value``.
    :param target: the target, as people read it (``">= 0.9"``), or ``""`` for report-only rows.
    :param ratio: the figure that is compared with the target, when it is not ``value`` itself.
    :param met: whether the target was met (``None`` for report-only rows).
    :param ok: False when something is broken (crash, duplicate, 429, incomplete run).
    :param note: one short line of context.
    :param chart: what ``--plot`` draws for this row, if anything.
    """

    benchmark: str
    metric: str
    value: Stat
    unit: str
    target: str = ""
    ratio: Stat | None = None
    met: bool | None = None
    ok: bool = True
    note: str = ""
    chart: Chart | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-able form (``--json``)."""
        return {
            "benchmark": self.benchmark,
            "metric": self.metric,
            "median": self.value.median,
            "values": list(self.value.values),
            "spread": self.value.spread,
            "unit": self.unit,
            "target": self.target,
            "ratio": None if self.ratio is None else self.ratio.median,
            "ratio_values": None if self.ratio is None else list(self.ratio.values),
            "met": self.met,
            "ok": self.ok,
            "note": self.note,
        }


def at_least(stat: Stat, target: float) -> bool:
    """The median meets a lower bound."""
    return stat.median >= target


def at_most(stat: Stat, target: float) -> bool:
    """The median meets an upper bound."""
    return stat.median <= target


# --- child processes ------------------------------------------------------------------------------


def run_child(module: str, params: Mapping[str, Any], *, timeout: float = 1800) -> dict[str, Any]:
    """Run ``benchmarks.<module>``'s ``child(params)`` in a fresh interpreter; its JSON result.

    The child prints one JSON object on its last line of standard output. Its standard error
    passes through (warnings, a traceback when it fails).

    :raises RuntimeError: the child failed (its exit code and the end of its output).
    """
    command = [sys.executable, "-m", f"benchmarks.{module}", json.dumps(dict(params))]
    completed = subprocess.run(  # noqa: S603 - our own interpreter and module, no shell
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    if completed.returncode != 0:
        tail = (completed.stderr or completed.stdout)[-3000:]
        raise RuntimeError(f"benchmarks.{module} {dict(params)} failed:\n{tail}")
    lines = [line for line in completed.stdout.splitlines() if line.strip()]
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def child_main(child: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """The ``__main__`` of a benchmark module: read params from argv, print the JSON result."""
    params: dict[str, Any] = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    result = child(params)
    result.setdefault("peak_rss_mb", peak_rss_mb())
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def peak_rss_mb() -> float:
    """This process's peak resident memory (``VmHWM``) in MiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def current_rss_mb() -> float:
    """This process's resident memory now (``VmRSS``) in MiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


# --- databases ------------------------------------------------------------------------------------


def completed_runs(engine: Engine) -> int:
    """How many runs are COMPLETE, counted in SQL (listing them would cost memory and time)."""
    counts = atomically(engine.uow, lambda uow: uow.runs.status_counts())
    return counts.get(RunStatus.COMPLETE, 0)


def postgres_server_url() -> str | None:
    """The PostgreSQL server to create benchmark databases on, or ``None`` if unreachable."""
    import psycopg

    url = next((os.environ[e] for e in POSTGRES_URL_ENVS if os.environ.get(e)), None)
    url = url or DEFAULT_POSTGRES_URL
    try:
        with psycopg.connect(_libpq(url), connect_timeout=3, autocommit=True):
            pass
    except psycopg.OperationalError:
        return None
    return url


def _libpq(url: str) -> str:
    from billbridge.store import normalise_url

    return normalise_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def database(kind: str, directory: Path) -> Iterator[str]:
    """A fresh, empty database URL of ``kind`` (``sqlite`` or ``postgresql``), removed after.

    PostgreSQL databases are created on :func:`postgres_server_url` as conftest.py does for
    tests (``CREATE DATABASE``; ``DROP ... WITH (FORCE)`` afterwards).
    """
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'billbridge.db'}"
        return
    if kind != "postgresql":
        raise ValueError(f"unknown database kind {kind!r}")
    import psycopg
    from psycopg import sql

    from billbridge.store import normalise_url

    server = postgres_server_url()
    if server is None:
        raise RuntimeError("PostgreSQL is not reachable (set BILLBRIDGE_BENCH_DATABASE_URL)")
    name = f"bb_bench_{uuid.uuid4().hex}"
    with psycopg.connect(_libpq(server), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield normalise_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(server), autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextmanager
def scratch_directory() -> Iterator[Path]:
    """A temporary directory (billbridge home, SQLite file), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="billbridge-bench-") as name:
        yield Path(name)


# --- clocks ---------------------------------------------------------------------------------------


class SyncedScaledClock:
    """:class:`billbridge.testing.emulation.clock.ScaledClock` that several processes can share.

    ``ScaledClock`` starts counting when it is made, so two processes would disagree. This one
    is anchored to an explicit point: ``origin`` scaled seconds at monotonic time
    ``origin_monotonic``. Linux's monotonic clock is system-wide, so the engine and the
    emulators in their own processes see exactly the same scaled time.
    """

    def __init__(self, scale: float, *, origin: float, origin_monotonic: float) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.scale = scale
        self.origin = origin
        self.origin_monotonic = origin_monotonic

    @classmethod
    def starting(cls, scale: float, at: datetime) -> SyncedScaledClock:
        """A clock showing ``at`` now and running ``scale`` times faster than real time."""
        return cls(scale, origin=at.timestamp(), origin_monotonic=time.monotonic())

    def params(self) -> dict[str, float]:
        """What another process needs to make the same clock (:meth:`from_params`)."""
        return {
            "scale": self.scale,
            "origin": self.origin,
            "origin_monotonic": self.origin_monotonic,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, float]) -> SyncedScaledClock:
        """The clock another process described with :meth:`params`."""
        return cls(
            params["scale"], origin=params["origin"], origin_monotonic=params["origin_monotonic"]
        )

    def time(self) -> float:
        """Scaled seconds since the epoch."""
        return self.origin + (time.monotonic() - self.origin_monotonic) * self.scale

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of scaled time."""
        if seconds > 0:
            time.sleep(seconds / self.scale)

    def now(self) -> datetime:
        """The scaled time as an aware UTC datetime (what the engine's clock returns)."""
        return datetime.fromtimestamp(self.time(), UTC)


# --- timing the plugin ----------------------------------------------------------------------------


@attrs.define
class PluginTime:
    """Wall time spent inside delivery hooks (``send_bill``/``send_bills``).

    Calls may overlap (single sends run on several threads), so the time inside the plugin is
    the length of the *union* of the calls' intervals, not their sum: a share of wall time
    must stay between 0 and 1. :attr:`peak` is the most calls that were in progress at once.
    """

    intervals: list[tuple[float, float]] = attrs.field(factory=list)
    lock: threading.Lock = attrs.field(factory=threading.Lock)

    @property
    def calls(self) -> int:
        """Delivery hook calls made."""
        return len(self.intervals)

    @property
    def seconds(self) -> float:
        """Wall seconds during which at least one delivery hook call was in progress."""
        total, end = 0.0, float("-inf")
        for start, stop in sorted(self.intervals):
            if stop <= end:
                continue
            total += stop - max(start, end)
            end = stop
        return total

    @property
    def summed(self) -> float:
        """The calls' durations added up (larger than :attr:`seconds` when calls overlap)."""
        return sum(stop - start for start, stop in self.intervals)

    @property
    def peak(self) -> int:
        """The most delivery hook calls in progress at the same time."""
        events = sorted([(s, 1) for s, _ in self.intervals] + [(e, -1) for _, e in self.intervals])
        most = current = 0
        for _, step in events:
            current += step
            most = max(most, current)
        return most


def time_plugin_calls(registry: PluginRegistry) -> PluginTime:
    """Wrap ``registry.call`` so that every delivery hook call's wall time is recorded.

    The wrapper sits exactly at the boundary the core crosses: what is inside is the plugin's
    (translation, its HTTP, the destination's answer); everything else is the engine's.
    """
    spent = PluginTime()
    original = registry.call

    def timed(hook: str, key: str, **kwargs: Any) -> Any:
        if hook not in ("send_bill", "send_bills"):
            return original(hook, key, **kwargs)
        started = time.perf_counter()
        try:
            return original(hook, key, **kwargs)
        finally:
            finished = time.perf_counter()
            with spent.lock:
                spent.intervals.append((started, finished))

    registry.call = timed  # type: ignore[method-assign]
    return spent


@attrs.define
class GcTime:
    """Wall time spent in the garbage collector, by generation (``gc.callbacks``)."""

    seconds: dict[int, float] = attrs.field(factory=lambda: {0: 0.0, 1: 0.0, 2: 0.0})
    collections: dict[int, int] = attrs.field(factory=lambda: {0: 0, 1: 0, 2: 0})
    _started: float = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            generation = info["generation"]
            self.seconds[generation] += time.perf_counter() - self._started
            self.collections[generation] += 1

    @property
    def total(self) -> float:
        """Seconds in every collection."""
        return sum(self.seconds.values())


@contextmanager
def gc_timer() -> Iterator[GcTime]:
    """Record garbage-collection time while the block runs."""
    timer = GcTime()
    gc.callbacks.append(timer)
    try:
        yield timer
    finally:
        gc.callbacks.remove(timer)


def reset_peak_rss() -> None:
    """Start a new peak-RSS measurement from here (Linux: ``clear_refs`` 5 resets VmHWM)."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
        refs.write("5")


# --- OAuth ---------------------------------------------------------------------------------------


def oauth_connect(
    engine: Engine, destination: str, name: str, *, tenant_id: str | None = None
) -> Credential:
    """Connect a credential through the real consent flow against an emulator.

    As a person would: create the credential, open the consent URL (the emulator approves at
    once and redirects), then hand the callback's parameters to ``credentials.complete``.
    """
    credential = engine.credentials.create(name, destination)
    url = engine.credentials.authorization_url(credential.id, REDIRECT)
    # This request is the person's browser, not billbridge: its HTTP debug logs (which show
    # the redirect with the authorization code) are not billbridge's and are kept out of the
    # logs a secrets scan reads.
    logging.disable(logging.CRITICAL)
    try:
        response = httpx.get(url, follow_redirects=False, timeout=10)
    finally:
        logging.disable(logging.NOTSET)
    if response.status_code != 302:
        raise RuntimeError(f"consent for {destination} answered {response.status_code}")
    query = parse_qs(urlsplit(response.headers["location"]).query)
    params = {k: v[0] for k, v in query.items()}
    return engine.credentials.complete(
        params["state"],
        params.get("code"),
        realm_id=params.get("realmId"),
        tenant_id=tenant_id,
        params=params,
    )
