"""Benchmark 3, scale: flat memory for a long backfill, and how cost grows with the workload.

**Backfill.** 100,000 bills (quick: 10,000) of 20 lines are streamed from a generator through
``engine.submit_bills`` (chunks of 500) and delivered to the no-op destination
(:mod:`benchmarks.nullplugin`) on SQLite, in a fresh process. The process's peak resident
memory (``VmHWM``) is the figure (target < 300 MB); its resident memory is also sampled every
tenth of the way, so that growth (a leak, an unbounded list) shows even under the ceiling. The
backfill runs with the default settings and with a small bill cache (``bill_cache_size=1000``):
parsed bills are kept between submission and delivery, and at about 50 KB per 20-line bill the
cache's size, not the backfill's, decides the memory.

**Growth.** The same submit-and-deliver is timed while one factor changes:

* integrations per bill: 1, 2, 4, 8 (every integration takes every bill);
* mappings stored: 10², 10³, 10⁴ (the bills need 70 of them; the rest belong to other
  accounts and products, as in a real deployment);
* lines per bill: 5, 20, 80.

For each factor the cost per unit (per run, per bill, per line) and the growth exponent (the
log-log slope of total time against the factor; 1 is linear) are reported; any step steeper
than 1.1 is flagged.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks import nullplugin
from benchmarks.bills import PRODUCTS, account_id, bill_pairs, product_id
from benchmarks.harness import (
    Row,
    Stat,
    at_most,
    child_main,
    completed_runs,
    current_rss_mb,
    database,
    peak_rss_mb,
    reset_peak_rss,
    run_child,
    scratch_directory,
)
from billbridge.domain.models import Run, RunStatus
from billbridge.engine import Engine
from billbridge.plugin.manager import load_plugins
from billbridge.secrets import SecretBox, generate_key
from billbridge.settings import Settings
from billbridge.store import atomically

__all__ = ["child", "growth_exponents", "run"]

MEMORY_TARGET_MB = 300.0
#: Accounts the growth runs' bills cycle over (so the mapping count can start at 10²).
ACCOUNTS = 50


def _engine(url: str, home: Any, plugin: object, **settings: Any) -> Engine:
    return Engine(
        url,
        settings=Settings(home=home, **settings),
        plugins=load_plugins(entry_points=False, extra=[(nullplugin.KEY, plugin)], blocked=()),
        secret_box=SecretBox([generate_key()]),
    )


def _mappings(accounts: Sequence[str], filler: int = 0) -> Iterator[dict[str, Any]]:
    for n, account in enumerate(accounts):
        yield {
            "entity": "Account",
            "entity_id": account,
            "external_system": nullplugin.KEY,
            "external_table": "Customer",
            "external_id": f"customer-{n}",
        }
    for i in range(PRODUCTS):
        yield {
            "entity": "Product",
            "entity_id": product_id(i),
            "external_system": nullplugin.KEY,
            "external_table": "Item",
            "external_id": f"item-{i}",
        }
    for n in range(filler):
        # Other customers' mappings: stored, never needed by these bills.
        yield {
            "entity": "Account" if n % 2 else "Product",
            "entity_id": f"other-{n}",
            "external_system": nullplugin.KEY,
            "external_table": "Customer" if n % 2 else "Item",
            "external_id": f"other-{n}",
        }


def backfill(params: dict[str, Any]) -> dict[str, Any]:
    """Stream ``bills`` bills through submission and delivery; memory samples as JSON."""
    count = int(params["bills"])
    settings: dict[str, Any] = {}
    if params.get("bill_cache_size") is not None:
        settings["bill_cache_size"] = int(params["bill_cache_size"])
    step = max(count // 10, 1)
    clock = time.perf_counter
    samples: list[tuple[str, int, float, float]] = [("start", 0, current_rss_mb(), clock())]
    deliveries: list[tuple[int, float]] = []
    with scratch_directory() as home, database("sqlite", home) as url:
        plugin = nullplugin.plugin()
        engine = _engine(url, home, plugin, **settings)
        try:
            engine.integrations.create(name="Backfill", destination=nullplugin.KEY)
            accounts = [account_id("BF", n) for n in range(1, count + 1)]
            wanted = list(_mappings(accounts))
            for start in range(0, len(wanted), 5000):
                engine.mappings.create_many(wanted[start : start + 5000])
            del wanted, accounts
            samples.append(("set up", 0, current_rss_mb(), clock()))
            # The figure is the backfill's own peak: the set-up above (100,000 account
            # mappings, made once in a real deployment, long before) is not part of it.
            setup_peak = peak_rss_mb()
            reset_peak_rss()
            started = clock()
            submitted = 0
            for counts in engine.submit_bills(bill_pairs("BF", count, lines=20), chunk=500):
                submitted += counts.bills
                if submitted % step == 0:
                    samples.append(("submitted", submitted, current_rss_mb(), clock()))
            submit_seconds = clock() - started
            delivered = 0
            mark_every = max(count // 200, 50)

            def progress(done: int, _total: int) -> None:
                now = delivered + done
                if not deliveries or now - deliveries[-1][0] >= mark_every:
                    deliveries.append((now, clock()))
                    if now // step > (deliveries[-2][0] if len(deliveries) > 1 else 0) // step:
                        samples.append(("delivered", now, current_rss_mb(), clock()))

            budget = params.get("deliver_budget")
            limit = None if budget is None else clock() + float(budget)
            deliveries.append((0, clock()))
            while engine.next_due_at() is not None:
                if limit is not None and clock() > limit:
                    break
                # Slices of 500 runs when time-boxed, so that the budget is kept.
                report = engine.deliver_pending(
                    progress=progress, max_runs=None if limit is None else 500
                )
                delivered += report.attempted
            deliveries.append((delivered, clock()))
            samples.append(("end", delivered, current_rss_mb(), clock()))
            deliver_seconds = clock() - started - submit_seconds
            # The backfill's peak, taken before the check below: counting is the benchmark's
            # work, not the engine's (listing 100,000 runs to count them once cost 50 MB).
            peak = peak_rss_mb()
            completed = completed_runs(engine)
        finally:
            engine.close()
    return {
        "bills": count,
        "completed": completed,
        "delivered": plugin.invoices,
        "submit_seconds": submit_seconds,
        "deliver_seconds": deliver_seconds,
        "samples": samples,
        "deliveries": deliveries,
        "setup_peak_rss_mb": setup_peak,
        "peak_rss_mb": peak,
    }


def growth(params: dict[str, Any]) -> dict[str, Any]:
    """Submit and deliver ``bills`` bills with one factor set; seconds as JSON."""
    count = int(params["bills"])
    integrations = int(params.get("integrations", 1))
    mappings = int(params.get("mappings", ACCOUNTS + PRODUCTS))
    lines = int(params.get("lines", 20))
    history = int(params.get("history", 0))
    with scratch_directory() as home, database("sqlite", home) as url:
        plugin = nullplugin.plugin()
        engine = _engine(url, home, plugin, worker_threads=4)
        try:
            made = [
                engine.integrations.create(name=f"Integration {n + 1}", destination=nullplugin.KEY)
                for n in range(integrations)
            ]
            if history:
                _add_history(engine, made[0].id, history)
            accounts = [account_id("GR", n) for n in range(1, ACCOUNTS + 1)]
            engine.mappings.create_many(
                list(_mappings(accounts, max(mappings - ACCOUNTS - PRODUCTS, 0)))
            )
            pairs = list(bill_pairs("GR", count, lines=lines, accounts=ACCOUNTS))
            # The set-up's garbage is collected now, not during the measured work.
            gc.collect()
            started = time.perf_counter()
            for _ in engine.submit_bills(pairs):
                pass
            submitted = time.perf_counter()
            while engine.next_due_at() is not None:
                engine.deliver_pending()
            finished = time.perf_counter()
        finally:
            engine.close()
    runs = count * integrations
    return {
        "bills": count,
        "runs": runs,
        "delivered": plugin.invoices,
        "submit_seconds": submitted - started,
        "deliver_seconds": finished - submitted,
        "seconds": finished - started,
    }


def _add_history(engine: Engine, integration_id: str, runs: int) -> None:
    """``runs`` COMPLETE runs of earlier months, as a deployment accumulates them."""
    now = datetime.now(UTC) - timedelta(days=60)
    for start in range(0, runs, 5000):
        batch = [
            Run(
                id=f"history-{n}",
                integration_id=integration_id,
                bill_id=f"old-bill-{n}",
                bill_version=1,
                account_id=f"old-account-{n % 1000}",
                status=RunStatus.COMPLETE,
                attempts=1,
                external_id=f"old-{n}",
                created_at=now,
                updated_at=now,
            )
            for n in range(start, min(start + 5000, runs))
        ]
        atomically(engine.uow, lambda uow, batch=batch: uow.runs.add_many(batch))
    # The history was written months ago in a real deployment: SQLite has long since copied it
    # from the write-ahead log into the database. Without this, the first commit measured
    # would pay for checkpointing the set-up's writes.
    raw = engine.db.engine.raw_connection()  # outside any transaction, as a checkpoint must be
    try:
        raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()


def child(params: dict[str, Any]) -> dict[str, Any]:
    """Dispatch to :func:`backfill`, :func:`growth`, or several growth points in a row."""
    if params["kind"] == "backfill":
        return backfill(params)
    if params["kind"] == "growth-points":
        # Quick mode: every point in one process (a fresh engine and database each), to save
        # the interpreter's start-up per point.
        return {"points": [growth(p) for p in params["points"]]}
    return growth(params)


def growth_exponents(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, list[float]]:
    """The least-squares log-log slope of ``ys`` against ``xs``, and each step's own slope."""
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    slope = sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sum(
        (a - mx) ** 2 for a in lx
    )
    steps = [(ly[i + 1] - ly[i]) / (lx[i + 1] - lx[i]) for i in range(len(lx) - 1)]
    return slope, steps


def run(*, quick: bool, repeat: int) -> list[Row]:
    """The benchmark's rows."""
    rows: list[Row] = []
    count = 3_000 if quick else 100_000
    # Memory is the figure here, and it is the same run to run: one backfill per setting.
    # Delivery is time-boxed in full mode (see the claim-cost row for why it slows down).
    budget = None if quick else 120.0
    settings: list[tuple[int | None, str]] = [(1000, "bill_cache_size=1000")]
    if not quick:
        settings.insert(0, (None, "default settings"))
    for cache, label in settings:
        result = run_child(
            "scale",
            {
                "kind": "backfill",
                "bills": count,
                "bill_cache_size": cache,
                "deliver_budget": budget,
            },
            timeout=3600,
        )
        peak = Stat.of([result["peak_rss_mb"]])
        delivered = int(result["delivered"])
        broken = result["completed"] != delivered or (budget is None and delivered != count)
        first, last = _delivery_rates(result["deliveries"])
        rows.append(
            Row(
                "scale",
                f"backfill {count:,} bills x 20 lines, {label}: peak RSS",
                peak,
                "MB",
                target=f"< {MEMORY_TARGET_MB:.0f}",
                met=at_most(peak, MEMORY_TARGET_MB),
                ok=not broken,
                note=(
                    "delivered runs not COMPLETE"
                    if broken
                    else f"RSS drift in the 2nd half of submission {_drift(result['samples']):+.0f}"
                    f" MB; submit {count / result['submit_seconds']:,.0f} bills/s; set-up "
                    f"(mappings) peak {result['setup_peak_rss_mb']:,.0f} MB, not counted"
                ),
            )
        )
        rows.append(
            Row(
                "scale",
                f"backfill {count:,}, {label}: delivery bills/s, first vs last tenth",
                Stat.of([last]),
                "bills/s",
                note=f"first tenth {first:,.0f}/s; delivered {delivered:,} in "
                f"{result['deliver_seconds']:.0f} s" + (" (time-boxed)" if budget else ""),
            )
        )
    bills = 100 if quick else 1000
    factors: list[tuple[str, str, list[int], str, float]] = [
        ("integrations", "integrations per bill", [1, 2, 4, 8], "us/run", 1.1),
        ("mappings", "mappings stored", [100, 1000, 10_000], "us/bill", 1.1),
        ("lines", "lines per bill", [5, 20, 80], "us/line", 1.1),
        ("history", "completed runs already stored", [1000, 10_000, 100_000], "us/bill", 0.1),
    ]
    if quick:
        # Quick mode checks that every point runs; two points per factor, small ones.
        factors = [(f, t, [v[0], v[-1]], u, c) for f, t, v, u, c in factors]
        factors[-1] = (*factors[-1][:2], [1000, 20_000], *factors[-1][3:])
    quick_points: list[dict[str, Any]] = []
    if quick:
        points = [{"bills": bills, f: v} for f, _, values, _, _ in factors for v in values]
        quick_points = run_child("scale", {"kind": "growth-points", "points": points})["points"]
    for factor, title, values, unit, ceiling in factors:
        seconds: list[Stat] = []
        broken_runs = 0
        for value in values:
            if quick:
                runs = [quick_points.pop(0)]
            else:
                runs = [
                    run_child("scale", {"kind": "growth", "bills": bills, factor: value})
                    for _ in range(repeat)
                ]
            broken_runs += sum(1 for r in runs if r["delivered"] != r["runs"])
            seconds.append(Stat.of([r["seconds"] for r in runs]))
        medians = [s.median for s in seconds]
        slope, steps = growth_exponents(values, medians)
        units = {
            "integrations": [bills * v for v in values],
            "lines": [bills * v for v in values],
        }.get(factor, [bills] * len(values))
        per_unit = [m / u * 1e6 for m, u in zip(medians, units, strict=True)]
        worst = max(steps)
        rows.append(
            Row(
                "scale",
                f"cost vs {title} ({', '.join(f'{v:,}' for v in values)}): growth exponent",
                Stat.of([slope]),
                "slope",
                target=f"<= {ceiling:g} per step",
                met=worst <= ceiling,
                ok=broken_runs == 0,
                note=(
                    f"{unit}: "
                    + ", ".join(f"{u:,.0f}" for u in per_unit)
                    + "; per step "
                    + ", ".join(f"{s:.2f}" for s in steps)
                    + (" FLAG" if worst > ceiling else "")
                ),
            )
        )
    return rows


def _delivery_rates(marks: Sequence[Sequence[float]]) -> tuple[float, float]:
    """Bills per second over the first and the last tenth of the runs delivered."""
    if len(marks) < 3 or marks[-1][0] <= 0:
        return 0.0, 0.0
    total = marks[-1][0]
    head = next(m for m in marks if m[0] >= total / 10)
    tail = [m for m in marks if m[0] <= total * 9 / 10][-1]

    def rate(a: Sequence[float], b: Sequence[float]) -> float:
        return (b[0] - a[0]) / (b[1] - a[1]) if b[1] > a[1] else 0.0

    return rate(marks[0], head), rate(tail, marks[-1])


def _drift(samples: Sequence[Sequence[Any]]) -> float:
    submitted = [float(s[2]) for s in samples if s[0] == "submitted"]
    if len(submitted) < 2:
        return 0.0
    half = len(submitted) // 2
    return submitted[-1] - submitted[half - 1] if half else 0.0


if __name__ == "__main__":
    child_main(child)
