"""Benchmark 4, translation: bills per second through each plugin's pure ``translate_bill``.

The floor is what any integration must do at least: write the translated payload as JSON
(``billbridge.domain.models.dumps``, exact decimals). Translation (line planning with exact money,
mapping look-ups, field checks) is reported as bills per second and as a ratio to that floor's
speed: 0.25 means translating a bill costs four times as much as serialising its payload.

Bills are parsed before timing (the engine parses once at submission); each timing takes the
best of a few passes over the same bills, the usual way to keep scheduler noise out of a CPU
micro-benchmark, and each repetition runs in a fresh process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from billbridge_quickbooks.translate import translate_bill as quickbooks_translate
from billbridge_xero.translate import translate_bill as xero_translate

from benchmarks.bills import PRODUCTS, bill_pairs, product_id
from benchmarks.emulators import ITEM_CODES
from benchmarks.harness import Row, Stat, child_main, run_child
from billbridge.domain.models import Account, Bill, dumps, parse_account, parse_bill
from billbridge.plugin.contract import ResolvedMappings

__all__ = ["child", "run"]

PASSES = 3


def _best(work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(PASSES):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def child(params: dict[str, Any]) -> dict[str, Any]:
    """Time translation and serialisation of ``bills`` bills for one destination."""
    count = int(params["bills"])
    destination = str(params["destination"])
    bills: list[tuple[Bill, Account]] = [
        (parse_bill(b), parse_account(a)) for b, a in bill_pairs("TR", count, lines=20)
    ]
    table = "Customer" if destination == "quickbooks" else "Contact"
    items = [str(i) for i in range(1, 9)] if destination == "quickbooks" else list(ITEM_CODES)
    mappings = [
        ResolvedMappings(
            {
                ("Account", account.id, table): f"ext-{n}",
                **{
                    ("Product", product_id(i), "Item"): items[i % len(items)]
                    for i in range(PRODUCTS)
                },
            }
        )
        for n, (_, account) in enumerate(bills)
    ]
    if destination == "quickbooks":

        def translate() -> list[dict[str, Any]]:
            return [
                quickbooks_translate(bill, account, {}, mapped).payload
                for (bill, account), mapped in zip(bills, mappings, strict=True)
            ]
    else:
        config = {"defaultAccountCode": "200", "invoiceStatus": "AUTHORISED"}

        def translate() -> list[dict[str, Any]]:
            return [
                xero_translate(bill, account, config, mapped).payload
                for (bill, account), mapped in zip(bills, mappings, strict=True)
            ]

    payloads = translate()
    translate_seconds = _best(translate)
    dumps_seconds = _best(lambda: [dumps(p) for p in payloads])
    return {
        "bills": count,
        "translate_seconds": translate_seconds,
        "dumps_seconds": dumps_seconds,
        "payload_bytes": sum(len(dumps(p)) for p in payloads) / count,
    }


def run(*, quick: bool, repeat: int) -> list[Row]:
    """The benchmark's rows (median of ``repeat`` fresh processes)."""
    count = 500 if quick else 2000
    rows: list[Row] = []
    for destination, title in (("quickbooks", "QuickBooks"), ("xero", "Xero")):
        runs = [
            run_child("translation", {"bills": count, "destination": destination})
            for _ in range(repeat)
        ]
        translate = Stat.of([count / r["translate_seconds"] for r in runs])
        floor = Stat.of([count / r["dumps_seconds"] for r in runs])
        rows.append(
            Row(
                "translation",
                f"{title}: translate_bill, bills/s (20 lines)",
                translate,
                "bills/s",
                ratio=Stat.of([r["dumps_seconds"] / r["translate_seconds"] for r in runs]),
                note="ratio: translate speed / JSON-serialise speed (the floor)",
            )
        )
        rows.append(
            Row(
                "translation",
                f"{title}: dumps(payload) (the floor), bills/s",
                floor,
                "bills/s",
                note=f"payload {runs[0]['payload_bytes'] / 1024:.1f} KiB per bill",
            )
        )
    return rows


if __name__ == "__main__":
    child_main(child)
