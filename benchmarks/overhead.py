"""Benchmark 2, engine overhead: bills per second from submit to COMPLETE, and who spends it.

Bills of 20 lines, one per account, are submitted with ``engine.submit_bills`` (parse, store,
route, queue) and delivered with ``engine.deliver_pending`` (claim, prepare, resolve mappings,
send, record runs, attempts and the ledger) until every run is COMPLETE. The clock starts at
the first submission and stops when the last run is COMPLETE.

Submission and delivery take turns, chunk by chunk (500 bills submitted, then what is due is
delivered), as a billing service submitting bills with a worker running beside it would see
them. The engine runs with its default settings: its bill cache (2,000 parsed bills) holds the
chunks in flight, not the whole month, which keeps memory bounded (see the backfill benchmark).

Two destinations show where the time goes:

* ``nullbooks`` (:mod:`benchmarks.nullplugin`): in process, no HTTP, no limits, batches of 50.
  Whatever time is left is the engine's own; the issue's target is ≥ 1,000 bills/s on SQLite.
* the real QuickBooks plugin against its emulator over loopback (emulator in its own process,
  limits off in the emulator and in the engine, batches of 30): translation, HTTP and the
  emulator's answer are inside the plugin; the rest is the engine.

Every delivery hook call is timed at the core/plugin boundary
(:func:`~benchmarks.harness.time_plugin_calls`), so the share of the time spent outside the
plugin is measured, not inferred. The bills are made before the clock starts (their JSON text is
what a billing service would receive). Each measurement runs on SQLite and on PostgreSQL (a fresh
database per repetition, dropped afterwards).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import attrs
from billbridge_quickbooks import hooks as quickbooks_hooks

from benchmarks import nullplugin
from benchmarks.bills import PRODUCTS, account_id, bill_pairs, product_id
from benchmarks.emulators import CLIENT_ID, CLIENT_SECRET, EmulatorProcess, EmulatorSpec
from benchmarks.harness import (
    REDIRECT,
    Row,
    Stat,
    at_least,
    child_main,
    completed_runs,
    database,
    gc_timer,
    oauth_connect,
    postgres_server_url,
    run_child,
    scratch_directory,
    time_plugin_calls,
)
from billbridge import hookimpl
from billbridge.domain.models import Secret
from billbridge.engine import Engine
from billbridge.plugin.contract import Destination, Limits
from billbridge.plugin.manager import load_plugins
from billbridge.secrets import SecretBox, generate_key
from billbridge.settings import DestinationSettings, Settings

__all__ = ["UnlimitedQuickBooks", "child", "run"]

TARGET = 1000.0


class UnlimitedQuickBooks:
    """The bundled QuickBooks plugin with its declared rate limits removed.

    Every hook is the plugin's own; only ``register_destinations`` is replaced so that the
    engine's limiter does not hold requests back (the emulator's limits are off too): this
    benchmark measures cost, not limits.
    """

    def __init__(self) -> None:
        self.authenticate = quickbooks_hooks.authenticate
        self.send_bill = quickbooks_hooks.send_bill
        self.send_bills = quickbooks_hooks.send_bills
        self.validate_config = quickbooks_hooks.validate_config

        @hookimpl
        def register_destinations() -> Sequence[Destination]:
            unlimited = Limits(batch_size=quickbooks_hooks.LIMITS.batch_size, concurrency=10)
            return [
                attrs.evolve(d, limits=unlimited) for d in quickbooks_hooks.register_destinations()
            ]

        self.register_destinations = register_destinations


def child(params: dict[str, Any]) -> dict[str, Any]:
    """One measurement (in a fresh process): submit and deliver ``bills`` bills."""
    count = int(params["bills"])
    lines = int(params.get("lines", 20))
    destination = str(params["destination"])
    with scratch_directory() as home, database(str(params["database"]), home) as url:
        emulator: EmulatorProcess | None = None
        if destination == "quickbooks":
            emulator = EmulatorProcess(
                EmulatorSpec("quickbooks", count, limits=False, unique_numbers=False)
            )
            key = "quickbooks"
            plugin: object = UnlimitedQuickBooks()
            destinations = {
                key: DestinationSettings(
                    client_id=CLIENT_ID,
                    client_secret=Secret(CLIENT_SECRET),
                    redirect_uri=REDIRECT,
                    **emulator.endpoints,
                )
            }
            customers, items = emulator.customers, emulator.items
        else:
            key = nullplugin.KEY
            plugin = nullplugin.plugin(batch=bool(params.get("batch", True)))
            destinations = {}
            customers = [f"customer-{n}" for n in range(1, count + 1)]
            items = [f"item-{i}" for i in range(PRODUCTS)]
        registry = load_plugins(entry_points=False, extra=[(key, plugin)], blocked=())
        plugin_time = time_plugin_calls(registry)
        engine = Engine(
            url,
            settings=Settings(home=home, destinations=destinations),
            plugins=registry,
            secret_box=SecretBox([generate_key()]),
        )
        try:
            integration = engine.integrations.create(name="Overhead", destination=key)
            if emulator is not None:
                credential = oauth_connect(engine, key, "Overhead")
                engine.integrations.connect(integration.id, credential.id)
            engine.mappings.create_many(
                [
                    {
                        "entity": "Account",
                        "entity_id": account_id("OV", n + 1),
                        "external_system": key,
                        "external_table": "Customer",
                        "external_id": customer,
                    }
                    for n, customer in enumerate(customers)
                ]
                + [
                    {
                        "entity": "Product",
                        "entity_id": product_id(i),
                        "external_system": key,
                        "external_table": "Item",
                        "external_id": items[i % len(items)],
                    }
                    for i in range(PRODUCTS)
                ]
            )
            pairs = list(bill_pairs("OV", count, lines=lines))

            with gc_timer() as collected:
                cpu_started, started = time.process_time(), time.perf_counter()
                submitting, delivering = 0.0, 0.0
                chunks = engine.submit_bills(pairs)
                while True:
                    mark = time.perf_counter()
                    more = next(chunks, None) is not None
                    submitted = time.perf_counter()
                    submitting += submitted - mark
                    # Deliver what is due now; after the last chunk, until nothing is left.
                    engine.deliver_pending()
                    while not more and engine.next_due_at() is not None:
                        engine.deliver_pending()
                    delivering += time.perf_counter() - submitted
                    if not more:
                        break
                finished = time.perf_counter()
            cpu = time.process_time() - cpu_started
            completed = completed_runs(engine)
            delivered = (
                emulator.stats()["documents"] if emulator is not None else plugin.invoices  # type: ignore[attr-defined]
            )
        finally:
            engine.close()
            if emulator is not None:
                emulator.stop()
    return {
        "bills": count,
        "submit_seconds": submitting,
        "deliver_seconds": delivering,
        "total_seconds": finished - started,
        "plugin_seconds": plugin_time.seconds,
        "plugin_summed_seconds": plugin_time.summed,
        "plugin_peak_calls": plugin_time.peak,
        "plugin_calls": plugin_time.calls,
        "gc_seconds": collected.total,
        "gc_full_collections": collected.collections[2],
        "gc_seconds_by_generation": collected.seconds,
        "cpu_seconds": cpu,
        "completed": completed,
        "delivered": delivered,
    }


def run(*, quick: bool, repeat: int) -> list[Row]:
    """The benchmark's rows (median of ``repeat`` runs each)."""
    count = 500 if quick else 10_000
    kinds = ["sqlite"] + (["postgresql"] if postgres_server_url() else [])
    rows: list[Row] = []
    for destination, title in (("null", "no-op plugin"), ("quickbooks", "QuickBooks emulator")):
        for kind in kinds:
            if quick and destination == "quickbooks" and kind != "sqlite":
                continue  # quick mode: the HTTP path once is enough to catch breakage
            runs = [
                run_child(
                    "overhead",
                    {"bills": count, "lines": 20, "destination": destination, "database": kind},
                )
                for _ in range(repeat)
            ]
            broken = [r for r in runs if r["completed"] != count or r["delivered"] != count]
            rate = Stat.of([count / r["total_seconds"] for r in runs])
            database_name = "SQLite" if kind == "sqlite" else "PostgreSQL"
            is_target = destination == "null" and kind == "sqlite"
            cpu = Stat.of([r["cpu_seconds"] / r["total_seconds"] for r in runs]).median
            rows.append(
                Row(
                    "overhead",
                    f"{title}, {database_name}: bills/s submit to COMPLETE ({count:,} x 20 lines)",
                    rate,
                    "bills/s",
                    target=f">= {TARGET:,.0f}" if is_target else "",
                    ratio=Stat.of([v / TARGET for v in rate.values]) if is_target else None,
                    met=at_least(rate, TARGET) if is_target else None,
                    ok=not broken,
                    note=(
                        f"{len(broken)} run(s) incomplete"
                        if broken
                        else "submit {:,.0f}/s, deliver {:,.0f}/s; CPU {:.2f} of a core; "
                        "GC {:.0%} of the time".format(
                            Stat.of([count / r["submit_seconds"] for r in runs]).median,
                            Stat.of([count / r["deliver_seconds"] for r in runs]).median,
                            cpu,
                            Stat.of([r["gc_seconds"] / r["total_seconds"] for r in runs]).median,
                        )
                    ),
                )
            )
            outside = Stat.of([1 - r["plugin_seconds"] / r["total_seconds"] for r in runs])
            delivery_outside = Stat.of(
                [1 - r["plugin_seconds"] / r["deliver_seconds"] for r in runs]
            )
            rows.append(
                Row(
                    "overhead",
                    f"{title}, {database_name}: share of the time outside the plugin",
                    outside,
                    "share",
                    note=f"of delivery alone: {delivery_outside.median:.2f}; at most "
                    f"{max(r['plugin_peak_calls'] for r in runs)} hook call(s) at once",
                )
            )
    return rows


if __name__ == "__main__":
    child_main(child)
