"""What the demo prints: its steps as they happen, then runs, invoices and events as tables."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from billbridge.domain.models import Integration

if TYPE_CHECKING:
    from billbridge.engine import Engine

__all__ = ["Story", "report"]


class Story:
    """Steps as they happen (with the seconds since the start), then tables."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.started = time.monotonic()

    def step(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        self.console.print(f"[dim]{elapsed:5.1f}s[/] {text}")

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*row)
        self.console.print(table)


def report(
    engine: Engine,
    story: Story,
    integrations: Sequence[Integration],
    before: Mapping[str, list[Any]],
    after: Mapping[str, list[Any]],
    acme_bill: str,
) -> None:
    """Runs, the invoices at the destinations, whether Acme's were updated, and the events."""
    names = {i.id: i.name for i in integrations}
    runs = engine.runs.list(limit=None)
    story.table(
        "Runs",
        ("integration", "bill", "v", "status", "invoice", "note"),
        [
            (
                names.get(r.integration_id, r.integration_id),
                r.bill_id[:8],
                str(r.bill_version),
                r.status.value,
                r.external_id or "-",
                (r.error or "")[:70],
            )
            for r in sorted(runs, key=lambda r: (names.get(r.integration_id, ""), r.created_at))
        ],
    )
    story.table(
        "Invoices at the destinations",
        ("where", "kind", "number", "customer", "total", "after v4"),
        _invoice_rows(before, after),
    )
    acme_runs = [r for r in runs if r.bill_id == acme_bill]
    same = all(
        len({r.external_id for r in acme_runs if r.integration_id == i.id}) <= 1
        for i in integrations
    )
    story.step(
        f"Acme's invoices were updated in place, not duplicated: {'yes' if same else 'NO'} "
        f"({sum(len(v) for v in before.values())} documents before, "
        f"{sum(len(v) for v in after.values())} after)"
    )
    events = engine.events.list(limit=None)
    story.table(
        "Events to act on",
        ("type", "message"),
        [(e.type.value, e.message) for e in events],
    )


def _invoice_rows(
    before: Mapping[str, list[Any]], after: Mapping[str, list[Any]]
) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for where, documents in after.items():
        earlier = {d.id: d for d in before.get(where, [])}
        for doc in documents:
            old = earlier.get(doc.id)
            change = (
                "new" if old is None else ("updated" if old.total != doc.total else "unchanged")
            )
            if old is not None and old.total != doc.total:
                change = f"updated {old.total} → {doc.total}"
            rows.append((where, doc.kind, doc.number or "-", doc.customer, str(doc.total), change))
    return rows
