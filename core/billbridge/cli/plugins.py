"""``billbridge plugins``, ``billbridge schema KEY`` and ``billbridge schemas export DIR``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.table import Table

from billbridge.cli.guard import fail, guard
from billbridge.cli.output import err, out, print_json
from billbridge.domain.models import dumps, thaw

__all__ = ["plugins", "schema", "schemas"]


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@guard
def plugins(as_json: bool) -> None:
    """List installed destination plugins, their destinations and hooks.

    Exits with 1 when a plugin could not be loaded (after listing the others, which work),
    saying why: its module does not import, its hooks do not match the contract, or its
    register_destinations failed.
    """
    from billbridge.plugin.manager import load_plugins

    registry = load_plugins()
    if as_json:
        print_json(_plugins_dict(registry))
    else:
        _print_table(registry)
    if registry.failures:
        _explain_failures(registry.failures)


def _print_table(registry: Any) -> None:
    destinations = registry.destinations
    table = Table(title="Installed destinations")
    for column in ("destination", "title", "plugin", "version", "hooks"):
        table.add_column(column)
    for info in registry.plugins():
        for key in info.destinations:
            table.add_row(
                key, destinations[key].title, info.name, info.version or "-", ", ".join(info.hooks)
            )
    out.print(table)


def _explain_failures(failures: Sequence[Any]) -> NoReturn:
    from billbridge.plugin.manager import DISABLED_PLUGINS_ENV

    for failure in failures:
        err.print(f"plugin {failure.name!r} not loaded: {failure.error}", markup=False)
    names = ", ".join(repr(f.name) for f in failures)
    fail(
        f"{len(failures)} plugin(s) could not be loaded ({names}); the others work. Fix or "
        f"reinstall it, uninstall it, or leave it out with {DISABLED_PLUGINS_ENV}="
        + ",".join(f.name for f in failures)
    )


def _plugins_dict(registry: Any) -> dict[str, Any]:
    destinations = registry.destinations
    return {
        "plugins": [
            {
                "name": info.name,
                "version": info.version,
                "hooks": list(info.hooks),
                "destinations": [
                    {
                        **destinations[key].describe(),
                        "schema": thaw(destinations[key].schema),
                    }
                    for key in info.destinations
                ],
            }
            for info in registry.plugins()
        ],
        "failures": [{"name": f.name, "error": f.error} for f in registry.failures],
    }


@click.command()
@click.argument("key")
@guard
def schema(key: str) -> None:
    """Print a destination's configuration panel schema (JSON Schema draft-07)."""
    from billbridge.plugin.manager import load_plugins

    print_json(thaw(load_plugins().destination(key).schema))


@click.group()
def schemas() -> None:
    """The published JSON Schemas, for UI builders."""


@schemas.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@guard
def schemas_export(directory: Path) -> None:
    """Write every core and destination schema into DIRECTORY."""
    from billbridge.domain.schemas import published_schemas
    from billbridge.plugin.manager import load_plugins

    panels = {key: d.schema for key, d in load_plugins().destinations.items()}
    written = []
    # The same documents the HTTP API publishes: each destination's panel with an $id of its
    # own (QuickBooks and its sandbox share a schema) and secrets that accept the sentinel.
    for name, schema in published_schemas(panels).items():
        path = directory / f"{name}.schema.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dumps(schema, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    for path in written:
        out.print(str(path), markup=False)
