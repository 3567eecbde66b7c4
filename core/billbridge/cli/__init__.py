"""The ``billbridge`` command line.

Every command prints a readable table by default and JSON with ``--json``. Errors are one clear
line (plus one line per field for refused input) on stderr and a non-zero exit, never a
traceback (set ``BILLBRIDGE_DEBUG=1`` to see one).

One module per command group; each imports what it needs when it runs, so that starting the
command line stays quick:

* :mod:`~billbridge.cli.plugins`: ``plugins``, ``schema``, ``schemas export``
* :mod:`~billbridge.cli.integrations`: ``integrations …``
* :mod:`~billbridge.cli.mappings`: ``mappings …``
* :mod:`~billbridge.cli.external`: ``external list`` (a destination's records, to map to)
* :mod:`~billbridge.cli.credentials`: ``credentials …`` (consent through
  :mod:`~billbridge.cli.consent`, a loopback listener)
* :mod:`~billbridge.cli.bills`: ``bills submit``, ``preview``
* :mod:`~billbridge.cli.runs`: ``runs …``, ``skips list``, ``events …``
* :mod:`~billbridge.cli.worker`: ``worker``
* :mod:`~billbridge.cli.serve`: ``serve`` (the HTTP API, :mod:`billbridge.api`)
* :mod:`~billbridge.cli.api_keys`: ``api-keys …``
* :mod:`~billbridge.cli.secrets`: ``secrets …``
* :mod:`~billbridge.cli.db`: ``db upgrade``
* :mod:`~billbridge.cli.emulator`: ``emulator NAME``
* :mod:`~billbridge.cli.demo`: ``demo``

Shared by all of them: :mod:`~billbridge.cli.state` (the database URL and the engine),
:mod:`~billbridge.cli.guard` (errors as one line and an exit code),
:mod:`~billbridge.cli.output` (JSON, tables, progress) and :mod:`~billbridge.cli.inputs`
(JSON given on the command line).
"""

from __future__ import annotations

import click

from billbridge import __version__
from billbridge.cli.api_keys import api_keys
from billbridge.cli.bills import bills, preview
from billbridge.cli.credentials import credentials
from billbridge.cli.db import db
from billbridge.cli.demo import demo
from billbridge.cli.emulator import emulator
from billbridge.cli.external import external
from billbridge.cli.integrations import integrations
from billbridge.cli.mappings import mappings
from billbridge.cli.plugins import plugins, schema, schemas
from billbridge.cli.runs import events, runs, skips
from billbridge.cli.secrets import secrets
from billbridge.cli.serve import serve
from billbridge.cli.state import State
from billbridge.cli.worker import worker

__all__ = ["main"]

#: The name embedding programs and tests use to hand in their own engine:
#: ``state = _State(None); state._engine = engine; main.main(args, obj=state)``.
_State = State


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--database-url",
    envvar="BILLBRIDGE_DATABASE_URL",
    help="Database URL (default: SQLite in $BILLBRIDGE_HOME, ~/.billbridge).",
)
@click.version_option(__version__, prog_name="billbridge")
@click.pass_context
def main(ctx: click.Context, database_url: str | None) -> None:
    """billbridge: deliver m3ter bills into accounting systems as invoices."""
    if isinstance(ctx.obj, State):
        # An embedding program (or a test) handed in its own engine.
        return
    state = State(database_url)
    ctx.obj = state
    ctx.call_on_close(state.close)


for _command in (
    plugins,
    schema,
    schemas,
    integrations,
    mappings,
    external,
    credentials,
    bills,
    preview,
    worker,
    serve,
    api_keys,
    runs,
    events,
    skips,
    secrets,
    demo,
    emulator,
    db,
):
    main.add_command(_command)
