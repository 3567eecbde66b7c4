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
@click.option(
    "--serve",
    "serve",
    is_flag=True,
    help="Then keep the emulators running and serve the API and the web console on the demo's "
    "data, printing the URL that signs in (Ctrl-C stops).",
)
@click.option(
    "--empty",
    is_flag=True,
    help="With --serve: skip the scenario, leaving an empty database to try the console's "
    "flows from the start (connect, configure, map, deliver).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="With --serve: address.")
@click.option("--port", type=int, default=8000, show_default=True, help="With --serve: port.")
@guard
def demo(home: Path | None, serve: bool, empty: bool, host: str, port: int) -> None:
    """Run the main job end to end against the QuickBooks and Xero emulators.

    Starts both emulators on loopback, connects credentials through the OAuth flow, creates
    three integrations with mappings, delivers the sample bills, then a regenerated bill, and
    shows what happened. With --serve, the console then shows it all in a browser.
    """
    from billbridge.cli.demo.scenario import Serving, run_demo

    if empty and not serve:
        raise click.UsageError("--empty goes with --serve")
    if home is not None:
        home.mkdir(parents=True, exist_ok=True)
    run_demo(
        home,
        console=out,
        serve=Serving(host=host, port=port) if serve else None,
        scenario=not empty,
    )
