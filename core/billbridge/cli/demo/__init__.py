"""``billbridge demo``: the whole main job, end to end, against the bundled emulators.

The command stays light to import; the scenario (:mod:`billbridge.cli.demo.scenario`) and what
it prints (:mod:`billbridge.cli.demo.story`) are loaded when the demo runs.
"""

from __future__ import annotations

from pathlib import Path

import click

from billbridge.cli.guard import guard
from billbridge.cli.output import out

__all__ = ["demo"]


@click.command()
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the demo's SQLite database here (default: a temporary directory).",
)
@guard
def demo(home: Path | None) -> None:
    """Run the main job end to end against the QuickBooks and Xero emulators.

    Starts both emulators on loopback, connects credentials through the OAuth flow, creates
    three integrations with mappings, delivers the sample bills, then a regenerated bill, and
    shows what happened.
    """
    from billbridge.cli.demo.scenario import run_demo

    if home is not None:
        home.mkdir(parents=True, exist_ok=True)
    run_demo(home, console=out)
