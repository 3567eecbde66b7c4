"""``billbridge integrations …``: create, validate, list, show, update, enable, connect, delete."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import click
from rich.table import Table

from billbridge.cli.guard import fail, guard
from billbridge.cli.inputs import CONFIG_HELP, read_json_arg
from billbridge.cli.output import out, print_json, table
from billbridge.cli.state import State, pass_state
from billbridge.domain.models import thaw

__all__ = ["integrations"]


def _masked(integration: Any) -> dict[str, Any]:
    from billbridge.domain.schemas import REDACTED, SEALED

    shown: dict[str, Any] = thaw(integration.destination_config)
    for name, value in shown.items():
        if isinstance(value, dict) and set(value) == {SEALED}:
            shown[name] = REDACTED
    return shown


def _integration_dict(integration: Any, installed: Iterable[str]) -> dict[str, Any]:
    from billbridge.domain.models import converter

    return {
        "id": integration.id,
        "name": integration.name,
        "destination": integration.destination,
        "pluginInstalled": integration.destination in set(installed),
        "entityType": integration.entity_type,
        "enabled": integration.enabled,
        "connected": integration.connected,
        "credentialId": integration.credential_id,
        "version": integration.version,
        "consecutiveErrors": integration.consecutive_errors,
        "config": converter.unstructure(integration.config),
        "entityConfig": converter.unstructure(integration.entity_config),
        # Secrets are sealed at rest and shown masked: the CLI never prints one.
        "destinationConfig": _masked(integration),
        "createdAt": integration.created_at,
        "updatedAt": integration.updated_at,
    }


def _integrations_table(
    items: Sequence[Any], installed: Iterable[str], title: str = "Integrations"
) -> Table:
    known = set(installed)
    shown = table(title, ("id", "name", "destination", "enabled", "connected", "version"))
    for i in items:
        destination = (
            i.destination if i.destination in known else (f"{i.destination} (plugin not installed)")
        )
        shown.add_row(
            i.id,
            i.name,
            destination,
            "yes" if i.enabled else "no",
            "yes" if i.connected else "no",
            str(i.version),
        )
    return shown


def _show_integration(state: State, integration: Any, as_json: bool) -> None:
    installed = state.engine.plugins.destinations
    if as_json:
        print_json(_integration_dict(integration, installed))
    else:
        out.print(_integrations_table([integration], installed, title="Integration"))


@click.group()
def integrations() -> None:
    """Create, list, update and delete integrations."""


@integrations.command("list")
@click.option("--destination", help="Only this destination.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
@guard
def integrations_list(state: State, destination: str | None, as_json: bool) -> None:
    """List integrations."""
    items = state.engine.integrations.list(destination=destination)
    installed = state.engine.plugins.destinations
    if as_json:
        print_json([_integration_dict(i, installed) for i in items])
    else:
        out.print(_integrations_table(items, installed))


@integrations.command("show")
@click.argument("integration_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the default here).")
@pass_state
@guard
def integrations_show(state: State, integration_id: str, as_json: bool) -> None:
    """Show one integration with its whole configuration."""
    integration = state.engine.integrations.get(integration_id)
    print_json(_integration_dict(integration, state.engine.plugins.destinations))


@integrations.command("create")
@click.option("--name", required=True, help="The integration's name.")
@click.option("--destination", required=True, help="Destination key (see `billbridge plugins`).")
@click.option("--config", "config", help=f"Global configuration: {CONFIG_HELP}")
@click.option("--entity-config", help=f"Bill entity configuration: {CONFIG_HELP}")
@click.option("--destination-config", help=f"Destination configuration: {CONFIG_HELP}")
@click.option("--disabled", is_flag=True, help="Create it disabled.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
@guard
def integrations_create(
    state: State,
    name: str,
    destination: str,
    config: str | None,
    entity_config: str | None,
    destination_config: str | None,
    disabled: bool,
    as_json: bool,
) -> None:
    """Validate and create an integration (nothing is saved if anything is wrong)."""
    integration = state.engine.integrations.create(
        name=name,
        destination=destination,
        config=read_json_arg(config, "--config"),
        entity_config=read_json_arg(entity_config, "--entity-config"),
        destination_config=read_json_arg(destination_config, "--destination-config"),
        enabled=not disabled,
    )
    _show_integration(state, integration, as_json)


@integrations.command("validate")
@click.option("--destination", required=True, help="Destination key.")
@click.option("--name", help='The integration\'s name (or give it as "name" in --config).')
@click.option("--config", "config", help=f"Global configuration: {CONFIG_HELP}")
@click.option("--entity-config", help=f"Bill entity configuration: {CONFIG_HELP}")
@click.option("--destination-config", help=f"Destination configuration: {CONFIG_HELP}")
@pass_state
@guard
def integrations_validate(
    state: State,
    destination: str,
    name: str | None,
    config: str | None,
    entity_config: str | None,
    destination_config: str | None,
) -> None:
    """Check a configuration without saving it, exactly as `create` would check it.

    The name is checked too: give it with --name or as "name" in --config (a form's global
    part carries it there), not both with different values.
    """
    global_config = read_json_arg(config, "--config")
    if name is not None:
        given = global_config.get("name")
        if given is not None and given != name:
            fail(f"--name {name!r} and the name in --config ({given!r}) differ; give one")
        global_config["name"] = name
    state.engine.integrations.validate(
        destination=destination,
        config=global_config,
        entity_config=read_json_arg(entity_config, "--entity-config"),
        destination_config=read_json_arg(destination_config, "--destination-config"),
    )
    out.print("configuration is valid")


@integrations.command("update")
@click.argument("integration_id")
@click.option("--version", "version", type=int, required=True, help="The version you read.")
@click.option("--name", help="New name.")
@click.option("--config", "config", help=f"New global configuration: {CONFIG_HELP}")
@click.option("--entity-config", help=f"New Bill entity configuration: {CONFIG_HELP}")
@click.option("--destination-config", help=f"New destination configuration: {CONFIG_HELP}")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
@guard
def integrations_update(
    state: State,
    integration_id: str,
    version: int,
    name: str | None,
    config: str | None,
    entity_config: str | None,
    destination_config: str | None,
    as_json: bool,
) -> None:
    """Replace parts of an integration's configuration (optimistic locking on --version)."""
    integration = state.engine.integrations.update(
        integration_id,
        version=version,
        name=name,
        config=read_json_arg(config, "--config") if config is not None else None,
        entity_config=(
            read_json_arg(entity_config, "--entity-config") if entity_config is not None else None
        ),
        destination_config=(
            read_json_arg(destination_config, "--destination-config")
            if destination_config is not None
            else None
        ),
    )
    _show_integration(state, integration, as_json)


@integrations.command("delete")
@click.argument("integration_id")
@pass_state
@guard
def integrations_delete(state: State, integration_id: str) -> None:
    """Delete an integration with its linked mappings, runs and events."""
    state.engine.integrations.delete(integration_id)
    out.print(f"deleted integration {integration_id}", markup=False)


@integrations.command("enable")
@click.argument("integration_id")
@pass_state
@guard
def integrations_enable(state: State, integration_id: str) -> None:
    """Enable an integration (resets its successive-error count)."""
    integration = state.engine.integrations.enable(integration_id)
    out.print(f"enabled {integration.name} ({integration.id})", markup=False)


@integrations.command("disable")
@click.argument("integration_id")
@pass_state
@guard
def integrations_disable(state: State, integration_id: str) -> None:
    """Disable an integration."""
    integration = state.engine.integrations.disable(integration_id)
    out.print(f"disabled {integration.name} ({integration.id})", markup=False)


@integrations.command("connect")
@click.argument("integration_id")
@click.argument("credential_id")
@pass_state
@guard
def integrations_connect(state: State, integration_id: str, credential_id: str) -> None:
    """Connect a COMPLETE credential to an integration (replaces any connected one)."""
    integration = state.engine.integrations.connect(integration_id, credential_id)
    out.print(f"connected {integration.name} to credential {credential_id}", markup=False)


@integrations.command("disconnect")
@click.argument("integration_id")
@pass_state
@guard
def integrations_disconnect(state: State, integration_id: str) -> None:
    """Disconnect the integration's credential."""
    integration = state.engine.integrations.disconnect(integration_id)
    out.print(f"disconnected {integration.name}", markup=False)
