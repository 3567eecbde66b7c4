"""``billbridge secrets …``: the key that encrypts tokens and client secrets at rest."""

from __future__ import annotations

import click

from billbridge.cli.guard import guard
from billbridge.cli.output import out
from billbridge.cli.state import State, pass_state

__all__ = ["secrets"]


@click.group()
def secrets() -> None:
    """The key that encrypts tokens and client secrets at rest."""


@secrets.command("generate-key")
def secrets_generate_key() -> None:
    """Print a new Fernet key for BILLBRIDGE_SECRET_KEY."""
    from billbridge.secrets import generate_key

    click.echo(generate_key())


@secrets.command("rotate")
@pass_state
@guard
def secrets_rotate(state: State) -> None:
    """Re-encrypt every stored secret with the first key of BILLBRIDGE_SECRET_KEY."""
    counts = state.engine.rotate_secrets()
    names = {
        "credentials": "credential(s)",
        "oauthApps": "OAuth app secret(s)",
        "destinationSecrets": "destination setting secret(s)",
        "webhookSecrets": "webhook signing secret(s)",
    }
    parts = ", ".join(f"{counts.get(kind, 0)} {label}" for kind, label in names.items())
    out.print(f"re-encrypted with the newest key: {parts}", markup=False)
