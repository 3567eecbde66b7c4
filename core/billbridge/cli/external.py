"""``billbridge external list``: a destination's own records, to map m3ter entities to them."""

from __future__ import annotations

from typing import Any

import click

from billbridge.cli.guard import fail, guard
from billbridge.cli.output import err, out, print_json, table
from billbridge.cli.state import State, pass_state
from billbridge.domain.models import dumps

__all__ = ["external"]

#: The most pages ``--all`` follows (a destination that never ends its cursor stops here).
MAX_PAGES = 100


@click.group()
def external() -> None:
    """The destinations' own records (customers, items, accounts...)."""


@external.command("list")
@click.argument("integration_id")
@click.argument("table_name", metavar="TABLE")
@click.option("--search", help="Only records whose name matches (as the destination searches).")
@click.option("--cursor", help="The page after the one that printed this cursor.")
@click.option("--all", "every_page", is_flag=True, help="Follow the pages to the end.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {items, nextCursor}.")
@pass_state
@guard
def external_list(
    state: State,
    integration_id: str,
    table_name: str,
    search: str | None,
    cursor: str | None,
    every_page: bool,
    as_json: bool,
) -> None:
    """List TABLE (Customer, Item, Contact...) of INTEGRATION's destination.

    The ids are what external mappings point at: `billbridge mappings create --entity Account
    --entity-id ID --table TABLE --external-id EXTERNAL_ID --integration INTEGRATION`. The
    tables a destination lists are in `billbridge plugins --json` (externalTables).
    """
    items: list[Any] = []
    pages = 0
    while True:
        page = state.engine.external.list(integration_id, table_name, search=search, cursor=cursor)
        items.extend(page.items)
        cursor = page.next_cursor
        pages += 1
        if not every_page or cursor is None:
            break
        if pages >= MAX_PAGES:
            fail(f"{table_name} still had more pages after {MAX_PAGES}; narrow it with --search")
    if as_json:
        print_json({"items": [item.to_dict() for item in items], "nextCursor": cursor})
        return
    shown = table(f"{table_name} records", ("id", "name", "details"))
    for item in items:
        details = dumps(dict(item.extra)) if item.extra else ""
        shown.add_row(item.id, item.name, details)
    out.print(shown)
    if cursor is not None:
        err.print(f"more records: add --cursor {cursor} (or --all)", markup=False)
