"""Benchmark 1, month-end against real limits: how close to the destinations' ceilings?

One engine delivers a month-end's bills (20 lines each, one bill per account) to one QuickBooks
company and one Xero organisation in parallel (``worker_threads=2``). Both emulators run in
their own processes and enforce the documented limits on a clock ``scale`` times faster than
real time (the engine follows the same clock), so several minutes of limits pass in seconds.

The limits and the ceilings they imply (REFERENCE.md):

* Xero: 60 requests a minute, 5 in flight, 5,000 a day; 50 invoices a request →
  **3,000 invoices a minute**.
* QuickBooks: 500 requests a minute, 10 a second, 40 batch requests a minute of 30 invoices →
  30 × 40 + (500 − 40) single creates = **1,660 invoices a minute**.

Reported per destination, from the engine's own run attempts (in scaled time):

* invoices per scaled minute from the first attempt to the last outcome, and that rate as a
  ratio of the ceiling (the issue's target: ≥ 0.9);
* the same run against a perfect client (no latency, exact limits, empty windows at the start,
  :func:`ideal_seconds`): a rate over a few minutes can exceed the per-minute ceiling by the
  first window's burst, the perfect client shows how much;
* the speed-up over one invoice per request (the usual integration), by the same perfect-client
  arithmetic for single requests;
* 429s the emulators answered (target: none), duplicates, runs not COMPLETE (must be none).

``scale`` must leave the engine idle most of the time, or the benchmark measures the engine and
not the limits: the engine's CPU share of the delivery's wall time is reported as a check.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
from sqlalchemy import func, select

from benchmarks.bills import PRODUCTS, account_id, bill_pairs, product_id
from benchmarks.emulators import CLIENT_ID, CLIENT_SECRET, EmulatorProcess, EmulatorSpec
from benchmarks.harness import (
    REDIRECT,
    Row,
    Stat,
    SyncedScaledClock,
    at_least,
    child_main,
    database,
    oauth_connect,
    run_child,
    scratch_directory,
    time_plugin_calls,
)
from billbridge.domain.models import RunStatus, Secret
from billbridge.engine import Engine
from billbridge.plugin.manager import load_plugins
from billbridge.secrets import SecretBox, generate_key
from billbridge.settings import DestinationSettings, Settings
from billbridge.store.tables import RunAttemptRow, RunRow

__all__ = ["LIMITS", "Window", "child", "ideal_seconds", "run"]

#: How much faster than real time the month-end clock runs. At x2 the engine process is busy
#: about a quarter of the time on a 2-core machine (the row "engine CPU share" checks it), so
#: the limits, not the engine, set the pace; x4 made the engine the bottleneck for Xero.
SCALE = 2.0
#: Start of the scaled clock: the day after the bills' date.
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@attrs.frozen
class Window:
    """A sliding-window limit: ``limit`` requests per ``seconds`` (batch requests only if set)."""

    limit: int
    seconds: float
    batch_only: bool = False


@attrs.frozen
class DestinationLimits:
    """A destination's documented limits, as the emulator enforces them."""

    batch_size: int
    windows: tuple[Window, ...]
    #: Whether single creates may use the general allowance left over by batch calls.
    singles_too: bool
    #: The steady-state ceiling in invoices per minute (the issue's bound).
    ceiling: float
    #: Invoices per minute at one invoice per request.
    naive_ceiling: float


LIMITS = {
    "xero": DestinationLimits(
        batch_size=50,
        windows=(Window(60, 60.0),),
        singles_too=False,
        ceiling=50 * 60,
        naive_ceiling=60,
    ),
    "quickbooks": DestinationLimits(
        batch_size=30,
        windows=(Window(500, 60.0), Window(10, 1.0), Window(40, 60.0, batch_only=True)),
        singles_too=True,
        ceiling=30 * 40 + (500 - 40),
        naive_ceiling=500,
    ),
}


def ideal_seconds(
    invoices: int, batch_size: int, windows: Sequence[Window], *, singles_too: bool
) -> float:
    """When a perfect client sends its last request: zero latency, exact limits, empty start.

    At each instant it sends a full batch if every window allows one, else (``singles_too``) a
    single create if the general windows allow it, else it waits for the first window to free
    a slot. The emulators count a request at ``t`` until ``t + seconds``, and so does this.
    """
    stamps = [deque[float]() for _ in windows]

    def room(batch: bool) -> bool:
        return all(
            len(sent) < window.limit
            for window, sent in zip(windows, stamps, strict=True)
            if batch or not window.batch_only
        )

    now, left, last = 0.0, invoices, 0.0
    while left > 0:
        for window, sent in zip(windows, stamps, strict=True):
            while sent and sent[0] <= now - window.seconds:
                sent.popleft()
        if batch_size > 1 and room(True):
            size, batch = min(batch_size, left), True
        elif (singles_too or batch_size == 1) and room(False):
            size, batch = 1, False
        else:
            now = min(
                sent[0] + window.seconds
                for window, sent in zip(windows, stamps, strict=True)
                if sent and len(sent) >= window.limit
            )
            continue
        for window, sent in zip(windows, stamps, strict=True):
            if batch or not window.batch_only:
                sent.append(now)
        left -= size
        last = now
    return last


def _interleaved(*streams: Iterator[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    # Month-end bills of different customers arrive mixed, not destination by destination.
    for group in itertools.zip_longest(*streams):
        yield from (pair for pair in group if pair is not None)


def child(params: dict[str, Any]) -> dict[str, Any]:
    """One month-end run (in a fresh process); measurements as JSON."""
    counts = {"quickbooks": int(params["quickbooks"]), "xero": int(params["xero"])}
    scale = float(params["scale"])
    lines = int(params.get("lines", 20))
    prefixes = {"quickbooks": "QB", "xero": "XE"}
    clock = SyncedScaledClock.starting(scale, START)
    with (
        scratch_directory() as home,
        database(str(params.get("database", "sqlite")), home) as url,
        EmulatorProcess(EmulatorSpec("quickbooks", counts["quickbooks"], clock.params())) as qbo,
        EmulatorProcess(EmulatorSpec("xero", counts["xero"], clock.params())) as xero,
    ):
        emulators = {"quickbooks": qbo, "xero": xero}
        registry = load_plugins()
        plugin_time = time_plugin_calls(registry)
        engine = Engine(
            url,
            settings=Settings(
                home=home,
                worker_threads=2,
                bill_cache_size=sum(counts.values()) + 100,
                destinations={
                    key: DestinationSettings(
                        client_id=CLIENT_ID,
                        client_secret=Secret(CLIENT_SECRET),
                        redirect_uri=REDIRECT,
                        **emulator.endpoints,
                    )
                    for key, emulator in emulators.items()
                },
            ),
            plugins=registry,
            clock=clock,
            secret_box=SecretBox([generate_key()]),
        )
        try:
            integrations = {}
            for key, country, config in (
                ("quickbooks", "US", {}),
                ("xero", "GB", {"defaultAccountCode": "200", "invoiceStatus": "AUTHORISED"}),
            ):
                integration = engine.integrations.create(
                    name=f"{key} month-end",
                    destination=key,
                    config={"accountFilter": f"address.country == {country}"},
                    destination_config=config,
                )
                credential = oauth_connect(engine, key, f"{key} benchmark")
                engine.integrations.connect(integration.id, credential.id)
                integrations[key] = integration.id
                emulator = emulators[key]
                engine.mappings.create_many(
                    [
                        {
                            "entity": "Account",
                            "entity_id": account_id(prefixes[key], n + 1),
                            "external_system": key,
                            "external_table": "Customer" if key == "quickbooks" else "Contact",
                            "external_id": customer,
                        }
                        for n, customer in enumerate(emulator.customers)
                    ]
                    + [
                        {
                            "entity": "Product",
                            "entity_id": product_id(i),
                            "external_system": key,
                            "external_table": "Item",
                            "external_id": emulator.items[i % len(emulator.items)],
                        }
                        for i in range(PRODUCTS)
                    ]
                )
            submitted = time.perf_counter()
            for _ in engine.submit_bills(
                _interleaved(
                    bill_pairs("QB", counts["quickbooks"], lines=lines, currency="USD"),
                    bill_pairs("XE", counts["xero"], lines=lines, currency="GBP", country="GB"),
                )
            ):
                pass
            submit_seconds = time.perf_counter() - submitted

            real_started, cpu_started = time.perf_counter(), time.process_time()
            deadline = real_started + float(params.get("timeout", 1200))
            while True:
                engine.deliver_pending()
                due = engine.next_due_at()
                if due is None:
                    break
                if time.perf_counter() > deadline:
                    raise RuntimeError("month-end did not finish in time")
                clock.sleep(max((due - clock.now()).total_seconds(), 0.0) + 0.01)
            real_seconds = time.perf_counter() - real_started
            cpu_seconds = time.process_time() - cpu_started

            results: dict[str, Any] = {
                "scale": scale,
                "submit_seconds": submit_seconds,
                "deliver_real_seconds": real_seconds,
                "engine_cpu_share": cpu_seconds / real_seconds,
                "plugin_seconds": plugin_time.seconds,
            }
            with engine.uow() as uow:
                session = uow.session
                for key, integration_id in integrations.items():
                    statuses = dict(
                        session.execute(
                            select(RunRow.status, func.count())
                            .where(RunRow.integration_id == integration_id)
                            .group_by(RunRow.status)
                        ).all()
                    )
                    first, last, attempts = session.execute(
                        select(
                            func.min(RunAttemptRow.started_at),
                            func.max(RunAttemptRow.finished_at),
                            func.count(),
                        )
                        .join(RunRow, RunRow.id == RunAttemptRow.run_id)
                        .where(RunRow.integration_id == integration_id)
                    ).one()
                    stats = emulators[key].stats()
                    results[key] = {
                        "bills": counts[key],
                        "statuses": {str(k): int(v) for k, v in statuses.items()},
                        "attempts": int(attempts),
                        "seconds": _seconds(last) - _seconds(first),
                        "emulator": stats,
                    }
        finally:
            engine.close()
    return results


def _seconds(value: datetime | None) -> float:
    # SQLite hands back naive datetimes (stored as UTC); PostgreSQL aware ones.
    if value is None:
        raise RuntimeError("no run attempt was recorded")
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def run(*, quick: bool, repeat: int, scale: float | None = None) -> list[Row]:
    """The benchmark's rows (median of ``repeat`` runs)."""
    # Quick: just over one minute of each destination's allowance (both paths of QuickBooks,
    # two Xero windows), on the same clock as the full run, whose timing margins it keeps; it
    # is there to catch 429s and duplicates, its ratios are dominated by the first burst.
    counts = {"quickbooks": 1700, "xero": 3100} if quick else {"quickbooks": 10_000, "xero": 10_000}
    scale = scale or SCALE
    runs = [
        run_child("month_end", {**counts, "scale": scale, "lines": 20}, timeout=1800)
        for _ in range(repeat)
    ]
    rows: list[Row] = []
    for key, title in (("xero", "Xero"), ("quickbooks", "QuickBooks")):
        limits = LIMITS[key]
        n = counts[key]
        ideal = ideal_seconds(n, limits.batch_size, limits.windows, singles_too=limits.singles_too)
        naive = ideal_seconds(
            n, 1, [w for w in limits.windows if not w.batch_only], singles_too=True
        )
        seconds = [r[key]["seconds"] for r in runs]
        per_minute = Stat.of([n / (s / 60) for s in seconds])
        to_ceiling = Stat.of([v / limits.ceiling for v in per_minute.values])
        throttled = Stat.of([sum(r[key]["emulator"]["throttled"].values()) for r in runs])
        duplicates = sum(r[key]["emulator"]["duplicates"] for r in runs)
        incomplete = sum(
            n - r[key]["statuses"].get(RunStatus.COMPLETE.value, 0) for r in runs
        ) + sum(abs(r[key]["emulator"]["documents"] - n) for r in runs)
        broken = duplicates > 0 or incomplete > 0
        where = f"{n:,} bills x 20 lines, 1 tenant, clock x{scale:g}"
        requests = Stat.of(
            [
                sum(v for k, v in r[key]["emulator"]["calls"].items() if not k.startswith("read"))
                for r in runs
            ]
        ).median
        busy = Stat.of([r[key]["emulator"]["busy_seconds"] for r in runs]).median
        rows.append(
            Row(
                "month-end",
                f"{title}: invoices per scaled minute ({where})",
                per_minute,
                "inv/min",
                target=f">= 0.9 x {limits.ceiling:,.0f}",
                ratio=to_ceiling,
                met=at_least(to_ceiling, 0.9),
                ok=not broken,
                note=(
                    f"{duplicates} duplicates, {incomplete} not delivered"
                    if broken
                    else f"ceiling {limits.ceiling:,.0f}/min from the documented limits; "
                    f"emulator busy {busy:.0f} real s for {requests:,.0f} counted calls"
                ),
            )
        )
        if ideal > 0:
            efficiency = Stat.of([ideal / s for s in seconds])
            rows.append(
                Row(
                    "month-end",
                    f"{title}: time of a perfect client / time taken",
                    efficiency,
                    "ratio",
                    note=f"perfect client (no latency, exact limits) needs {ideal:.0f} scaled s",
                )
            )
        rows.append(
            Row(
                "month-end",
                f"{title}: speed-up over one invoice per request",
                Stat.of([naive / s for s in seconds]),
                "x",
                note=(
                    f"one per request: {limits.naive_ceiling:,.0f}/min at best, "
                    f"{naive / 60:.0f} scaled min for {n:,}"
                ),
            )
        )
        rows.append(
            Row(
                "month-end",
                f"{title}: 429s received",
                throttled,
                "429s",
                target="0",
                ratio=None,
                met=throttled.median == 0,
                ok=max(throttled.values) == 0,
                note="counted by the emulator",
            )
        )
    rows.append(
        Row(
            "month-end",
            "engine CPU share of the delivery's wall time (headroom check)",
            Stat.of([r["engine_cpu_share"] for r in runs]),
            "share",
            note=f"clock x{scale:g}; well below 1.0 means the limits, not the engine, set the pace",
        )
    )
    return rows


if __name__ == "__main__":
    child_main(child)
