"""``billbridge emulator NAME``: serve a destination's emulator in the foreground.

The emulators belong to the testing kit (:mod:`billbridge.testing.emulation`), which the
runtime never imports: :func:`load_emulator` imports it when a command needs it, and says what to
install when that fails.
"""

from __future__ import annotations

from types import ModuleType

import click

from billbridge.cli.guard import fail, guard

__all__ = ["EMULATOR_REQUIREMENTS", "emulator", "load_emulator"]

#: What the emulators need beyond the runtime (today both are runtime dependencies too, so this
#: only matters where they were left out).
EMULATOR_REQUIREMENTS = ("starlette", "uvicorn")


def load_emulator(name: str) -> ModuleType:
    """The emulator module registered as ``name`` in the ``billbridge.emulators`` entry points.

    :raises KeyError: no emulator has that name (the message names the installed ones).
    """
    try:
        from billbridge.testing.emulation.emulators import emulator_module

        return emulator_module(name)
    except ImportError as exc:
        missing = (exc.name or "").partition(".")[0] or "missing"
        fail(
            f"the emulators need the {missing!r} package, which is not installed: "
            f"pip install {' '.join(EMULATOR_REQUIREMENTS)}"
        )


@click.command()
@click.argument("name")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, required=True, help="Port to listen on.")
@guard
def emulator(name: str, host: str, port: int) -> None:
    """Run a destination's emulator (QuickBooks, Xero) in the foreground, for demos and tests."""
    try:
        module = load_emulator(name)
    except KeyError as exc:
        fail(str(exc.args[0]))
    module.main(host=host, port=port)
