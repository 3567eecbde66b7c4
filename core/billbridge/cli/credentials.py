"""``billbridge credentials …``: OAuth apps, and connections to QuickBooks companies and Xero
organisations completed through a loopback redirect (:mod:`billbridge.cli.consent`)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from billbridge.cli.guard import fail, guard
from billbridge.cli.output import err, out, print_json, table
from billbridge.cli.state import State, pass_state

__all__ = ["credentials"]


def _credential_dict(credential: Any) -> dict[str, Any]:
    # The public view (schemas/credential.schema.json): never a token.
    return {
        "id": credential.id,
        "name": credential.name,
        "displayName": credential.display_name,
        "destination": credential.destination,
        "entityType": credential.entity_type,
        "status": credential.status.value,
        "createdAt": credential.created_at,
        "expiresAt": credential.expires_at,
        "tenantId": credential.tenant_id,
        "tenantName": credential.tenant_name,
        "scopes": list(credential.scopes),
        "accessTokenExpiresAt": credential.access_token_expires_at,
        "refreshTokenExpiresAt": credential.refresh_token_expires_at,
    }


@click.group()
def credentials() -> None:
    """Connect billbridge to QuickBooks companies and Xero organisations (OAuth)."""


@credentials.command("app")
@click.argument("destination")
@click.option("--client-id", required=True, help="The OAuth app's client id.")
@click.option(
    "--client-secret",
    prompt=True,
    hide_input=True,
    help="The client secret (asked for when not given; stored encrypted).",
)
@click.option("--redirect-uri", help="The app's registered redirect URI.")
@pass_state
@guard
def credentials_app(
    state: State,
    destination: str,
    client_id: str,
    client_secret: str,
    redirect_uri: str | None,
) -> None:
    """Store the OAuth app (client id and secret) billbridge uses for DESTINATION."""
    state.engine.credentials.configure_app(
        destination, client_id=client_id, client_secret=client_secret, redirect_uri=redirect_uri
    )
    out.print(f"stored the OAuth app for {destination} (secret encrypted)", markup=False)


def _show_consent_url(open_browser: bool) -> Callable[[str], None]:
    def show(url: str) -> None:
        err.print("Open this address to grant access (waiting for the answer):", markup=False)
        err.print(url, markup=False, soft_wrap=True)
        if open_browser:
            import webbrowser

            webbrowser.open(url)

    return show


def _tenant_picker(tenant: str | None) -> Callable[[list[tuple[str, str | None]]], str]:
    def pick(choices: list[tuple[str, str | None]]) -> str:
        if tenant is not None:
            return tenant
        for index, (tenant_id, tenant_name) in enumerate(choices, 1):
            err.print(f"  {index}. {tenant_name or '?'} ({tenant_id})", markup=False)
        if not sys.stdin.isatty():
            fail("the consent covers several organisations: run again with --tenant ID")
        number = click.prompt("Connect which one", type=click.IntRange(1, len(choices)), err=True)
        return choices[number - 1][0]

    return pick


@credentials.command("create")
@click.argument("destination")
@click.option("--name", required=True, help="A name people recognise, e.g. 'Xero UK'.")
@click.option("--port", type=int, default=0, help="Loopback port to listen on (default: random).")
@click.option("--no-browser", is_flag=True, help="Only print the consent URL.")
@click.option("--tenant", help="The organisation to connect when the consent covers several.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
@guard
def credentials_create(
    state: State,
    destination: str,
    name: str,
    port: int,
    no_browser: bool,
    tenant: str | None,
    as_json: bool,
) -> None:
    """Create a credential and complete its consent through a loopback redirect.

    Prints the provider's consent URL (and opens it in a browser unless --no-browser), listens
    on 127.0.0.1 for the one callback, and completes the credential. It gives up when the
    credential's consent window (10 minutes) ends.
    """
    from billbridge.cli.consent import connect_interactively

    engine = state.engine
    credential = engine.credentials.create(name, destination)
    done = connect_interactively(
        engine,
        credential,
        open_url=_show_consent_url(not no_browser),
        choose_tenant=_tenant_picker(tenant),
        port=port,
    )
    if as_json:
        print_json(_credential_dict(done))
    else:
        out.print(
            f"connected {done.name}: {done.destination} {done.tenant_name or ''} "
            f"({done.tenant_id}) as credential {done.id}",
            markup=False,
        )


@credentials.command("list")
@click.option("--destination", help="Only this destination.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
@guard
def credentials_list(state: State, destination: str | None, as_json: bool) -> None:
    """List credentials (status, expiry, tenant; never secrets)."""
    items = state.engine.credentials.list(destination=destination)
    if as_json:
        print_json([_credential_dict(c) for c in items])
        return
    shown = table("Credentials", ("id", "name", "destination", "status", "tenant", "token expires"))
    for c in items:
        expiry = c.expires_at if c.status.value == "INCOMPLETE" else c.access_token_expires_at
        shown.add_row(
            c.id,
            c.display_name,
            c.destination,
            c.status.value,
            f"{c.tenant_name or ''} {c.tenant_id or ''}".strip() or "-",
            expiry.strftime("%Y-%m-%d %H:%M UTC") if expiry else "-",
        )
    out.print(shown)


@credentials.command("delete")
@click.argument("credential_id")
@click.option("--no-revoke", is_flag=True, help="Do not revoke the tokens at the provider.")
@pass_state
@guard
def credentials_delete(state: State, credential_id: str, no_revoke: bool) -> None:
    """Delete a credential (revokes it; integrations using it are disconnected)."""
    state.engine.credentials.delete(credential_id, revoke=not no_revoke)
    out.print(f"deleted credential {credential_id}", markup=False)


@credentials.command("purge")
@pass_state
@guard
def credentials_purge(state: State) -> None:
    """Remove incomplete credentials whose consent window has ended."""
    removed = state.engine.credentials.purge()
    out.print(f"removed {removed} expired incomplete credential(s)", markup=False)
