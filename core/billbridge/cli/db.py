"""``billbridge db upgrade``: apply the database migrations."""

from __future__ import annotations

import click

from billbridge.cli.guard import guard
from billbridge.cli.output import out
from billbridge.cli.state import State, pass_state

__all__ = ["db"]


@click.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@pass_state
@guard
def db_upgrade(state: State) -> None:
    """Apply every pending migration (also done automatically on first use)."""
    from billbridge.settings import Settings
    from billbridge.store import Database

    url = state.database_url or Settings().resolved_database_url
    database = Database(url)
    try:
        before = database.current_revision()
        database.upgrade()
        after = database.current_revision()
    finally:
        database.dispose()
    if before == after:
        out.print(f"{database.display_url}: already at {after}", markup=False)
    else:
        out.print(f"{database.display_url}: upgraded {before or '(empty)'} → {after}", markup=False)
