"""``billbridge emulator NAME``: serve a destination's emulator in the foreground."""

from __future__ import annotations

import click

from billbridge.cli.guard import fail, guard

__all__ = ["emulator"]


@click.command()
@click.argument("name")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, required=True, help="Port to listen on.")
@guard
def emulator(name: str, host: str, port: int) -> None:
    """Run a destination's emulator (QuickBooks, Xero) in the foreground, for demos and tests."""
    from billbridge.testing.emulation.emulators import emulator_module

    try:
        module = emulator_module(name)
    except KeyError as exc:
        fail(str(exc.args[0]))
    module.main(host=host, port=port)
