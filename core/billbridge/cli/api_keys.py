"""``billbridge api-keys``: keys for the HTTP API (create, shown once; list; revoke)."""

from __future__ import annotations

import click

from billbridge.cli.guard import guard
from billbridge.cli.state import State, pass_state
from billbridge.domain.access import Scope
from billbridge.domain.models import dumps

__all__ = ["api_keys"]


@click.group("api-keys")
def api_keys() -> None:
    """Keys for the HTTP API: create (shown once), list, revoke."""


@api_keys.command("create")
@click.option("--name", required=True, help="Who or what the key is for.")
@click.option(
    "--scope",
    type=click.Choice([s.value for s in Scope]),
    default=Scope.READ.value,
    show_default=True,
    help="read: every GET (and checks that change nothing); admin: everything.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
@guard
def api_keys_create(state: State, name: str, scope: str, as_json: bool) -> None:
    """Create a key and print it: it is shown this once (only its hash is stored)."""
    from billbridge.api import serializers

    key, text = state.engine.api_keys.create(name, scope)
    if as_json:
        click.echo(dumps({"apiKey": serializers.api_key(key), "key": text}, indent=2))
        return
    click.echo(text)
    click.echo(
        f"API key {key.name!r} ({key.scope.value}, id {key.id}): store it now, it is not shown "
        "again",
        err=True,
    )


@api_keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
@guard
def api_keys_list(state: State, as_json: bool) -> None:
    """List keys (never the keys themselves: their first characters)."""
    from billbridge.api import serializers

    keys = state.engine.api_keys.list()
    if as_json:
        click.echo(dumps([serializers.api_key(k) for k in keys], indent=2))
        return
    for key in keys:
        shown = "active" if key.active else f"revoked {key.revoked_at:%Y-%m-%d %H:%M}"
        click.echo(f"{key.id}  {key.prefix}…  {key.scope.value:<5}  {shown:<24}  {key.name}")


@api_keys.command("revoke")
@click.argument("key_id")
@pass_state
@guard
def api_keys_revoke(state: State, key_id: str) -> None:
    """Revoke a key: requests with it are refused from now on."""
    key = state.engine.api_keys.revoke(key_id)
    click.echo(f"revoked API key {key.name!r} ({key.id})", err=True)
