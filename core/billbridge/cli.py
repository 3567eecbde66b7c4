"""The ``billbridge`` command line.

Every command prints a readable table by default and JSON with ``--json``. Errors are one clear
line (plus one line per field for refused input) on stderr and a non-zero exit, never a
traceback (set ``BILLBRIDGE_DEBUG=1`` to see one).
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypeVar

import click
import simplejson
from rich.console import Console
from rich.table import Table

from billbridge import __version__
from billbridge.domain.models import EventType, RunStatus, dumps, loads, thaw
from billbridge.errors import BillbridgeError, ValidationFailed

__all__ = ["main"]

P = ParamSpec("P")
R = TypeVar("R")

EXIT_ERROR = 1
EXIT_USAGE = 2

# Piped output (logs, CI) gets a wide table rather than rich's 80-column default: ids are 36
# characters and must stay whole to be copied.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(message: str, details: Sequence[str] = (), code: int = EXIT_ERROR) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", markup=True)
    for line in details:
        err.print(f"  {line}", markup=False)
    sys.exit(code)


def _guard(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn billbridge's errors into one clear line and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ValidationFailed as exc:
            summary = str(exc).split(":", 1)[0]
            _fail(summary, [f"{e.path or '/'}: {e.message}" for e in exc.errors])
        except BillbridgeError as exc:
            _fail(str(exc))
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except Exception as exc:
            if os.environ.get("BILLBRIDGE_DEBUG"):
                raise
            _fail(
                f"unexpected {type(exc).__name__}: {exc} "
                "(set BILLBRIDGE_DEBUG=1 for the traceback, and please report it)"
            )

    return wrapper


def _print_json(value: Any) -> None:
    click.echo(dumps(value, indent=2))


def _read_json_arg(value: str | None, what: str) -> dict[str, Any]:
    """A JSON object given inline, as ``@path``, or ``-`` for standard input."""
    if value is None:
        return {}
    try:
        if value == "-":
            text = sys.stdin.read()
        elif value.startswith("@"):
            text = Path(value[1:]).read_text(encoding="utf-8")
        else:
            text = value
    except OSError as exc:
        _fail(f"cannot read {what}: {exc.strerror}: {exc.filename}")
    try:
        data = loads(text)
    except simplejson.JSONDecodeError as exc:
        _fail(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    if not isinstance(data, dict):
        _fail(f"{what} must be a JSON object")
    return data


def _read_json_file(path: Path, what: str) -> Any:
    try:
        return loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        _fail(f"cannot read {what} {path}: {exc.strerror}")
    except simplejson.JSONDecodeError as exc:
        _fail(f"{what} {path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")


class _State:
    """Options shared by every command; the engine is made on first use."""

    def __init__(self, database_url: str | None) -> None:
        self.database_url = database_url
        self._engine: Any = None

    @property
    def engine(self) -> Any:
        if self._engine is None:
            from billbridge.engine import Engine

            self._engine = Engine(self.database_url)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()


pass_state = click.make_pass_decorator(_State)


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
    if isinstance(ctx.obj, _State):
        # An embedding program (or a test) handed in its own engine.
        return
    state = _State(database_url)
    ctx.obj = state
    ctx.call_on_close(state.close)


# --- plugins and schemas ---------------------------------------------------------------------


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_guard
def plugins(as_json: bool) -> None:
    """List installed destination plugins, their destinations and hooks."""
    from billbridge.plugin.manager import load_plugins

    registry = load_plugins()
    destinations = registry.destinations
    if as_json:
        _print_json(
            {
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
        )
        return
    table = Table(title="Installed destinations")
    for column in ("destination", "title", "plugin", "version", "hooks"):
        table.add_column(column)
    for info in registry.plugins():
        for key in info.destinations:
            table.add_row(
                key, destinations[key].title, info.name, info.version or "-", ", ".join(info.hooks)
            )
    out.print(table)
    for failure in registry.failures:
        err.print(f"[yellow]plugin {failure.name!r} not loaded:[/] {failure.error}", markup=True)


@main.command()
@click.argument("key")
@_guard
def schema(key: str) -> None:
    """Print a destination's configuration panel schema (JSON Schema draft-07)."""
    from billbridge.plugin.manager import load_plugins

    _print_json(thaw(load_plugins().destination(key).schema))


@main.group()
def schemas() -> None:
    """The published JSON Schemas, for UI builders."""


@schemas.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@_guard
def schemas_export(directory: Path) -> None:
    """Write every core and destination schema into DIRECTORY."""
    from billbridge.domain.schemas import CORE_SCHEMAS, core_schema
    from billbridge.plugin.manager import load_plugins

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in CORE_SCHEMAS:
        path = directory / f"{name}.schema.json"
        path.write_text(dumps(core_schema(name), indent=2) + "\n", encoding="utf-8")
        written.append(path)
    destinations_dir = directory / "destinations"
    destinations_dir.mkdir(exist_ok=True)
    for key, destination in sorted(load_plugins().destinations.items()):
        path = destinations_dir / f"{key}.schema.json"
        path.write_text(dumps(thaw(destination.schema), indent=2) + "\n", encoding="utf-8")
        written.append(path)
    for path in written:
        out.print(str(path), markup=False)


# --- integrations ----------------------------------------------------------------------------


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


def _table(title: str, columns: Sequence[str]) -> Table:
    """A table whose id columns never wrap or truncate: people copy ids from it."""
    table = Table(title=title)
    for column in columns:
        if column == "id" or column.endswith(" id") or column == "integration":
            table.add_column(column, no_wrap=True, min_width=8, overflow="fold")
        else:
            table.add_column(column, no_wrap=True)
    return table


def _integrations_table(
    items: Sequence[Any], installed: Iterable[str], title: str = "Integrations"
) -> Table:
    known = set(installed)
    table = _table(title, ("id", "name", "destination", "enabled", "connected", "version"))
    for i in items:
        destination = (
            i.destination if i.destination in known else (f"{i.destination} (plugin not installed)")
        )
        table.add_row(
            i.id,
            i.name,
            destination,
            "yes" if i.enabled else "no",
            "yes" if i.connected else "no",
            str(i.version),
        )
    return table


def _show_integration(state: _State, integration: Any, as_json: bool) -> None:
    installed = state.engine.plugins.destinations
    if as_json:
        _print_json(_integration_dict(integration, installed))
    else:
        out.print(_integrations_table([integration], installed, title="Integration"))


@main.group()
def integrations() -> None:
    """Create, list, update and delete integrations."""


@integrations.command("list")
@click.option("--destination", help="Only this destination.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
@_guard
def integrations_list(state: _State, destination: str | None, as_json: bool) -> None:
    """List integrations."""
    items = state.engine.integrations.list(destination=destination)
    installed = state.engine.plugins.destinations
    if as_json:
        _print_json([_integration_dict(i, installed) for i in items])
    else:
        out.print(_integrations_table(items, installed))


@integrations.command("show")
@click.argument("integration_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the default here).")
@pass_state
@_guard
def integrations_show(state: _State, integration_id: str, as_json: bool) -> None:
    """Show one integration with its whole configuration."""
    integration = state.engine.integrations.get(integration_id)
    _print_json(_integration_dict(integration, state.engine.plugins.destinations))


_CONFIG_HELP = "JSON object, @file.json, or - for standard input."


@integrations.command("create")
@click.option("--name", required=True, help="The integration's name.")
@click.option("--destination", required=True, help="Destination key (see `billbridge plugins`).")
@click.option("--config", "config", help=f"Global configuration: {_CONFIG_HELP}")
@click.option("--entity-config", help=f"Bill entity configuration: {_CONFIG_HELP}")
@click.option("--destination-config", help=f"Destination configuration: {_CONFIG_HELP}")
@click.option("--disabled", is_flag=True, help="Create it disabled.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
@_guard
def integrations_create(
    state: _State,
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
        config=_read_json_arg(config, "--config"),
        entity_config=_read_json_arg(entity_config, "--entity-config"),
        destination_config=_read_json_arg(destination_config, "--destination-config"),
        enabled=not disabled,
    )
    _show_integration(state, integration, as_json)


@integrations.command("validate")
@click.option("--destination", required=True, help="Destination key.")
@click.option("--name", default="(validation)", help="The integration's name.")
@click.option("--config", "config", help=f"Global configuration: {_CONFIG_HELP}")
@click.option("--entity-config", help=f"Bill entity configuration: {_CONFIG_HELP}")
@click.option("--destination-config", help=f"Destination configuration: {_CONFIG_HELP}")
@pass_state
@_guard
def integrations_validate(
    state: _State,
    destination: str,
    name: str,
    config: str | None,
    entity_config: str | None,
    destination_config: str | None,
) -> None:
    """Check a configuration without saving it."""
    state.engine.integrations.validate(
        destination=destination,
        config={**_read_json_arg(config, "--config"), "name": name},
        entity_config=_read_json_arg(entity_config, "--entity-config"),
        destination_config=_read_json_arg(destination_config, "--destination-config"),
    )
    out.print("configuration is valid")


@integrations.command("update")
@click.argument("integration_id")
@click.option("--version", "version", type=int, required=True, help="The version you read.")
@click.option("--name", help="New name.")
@click.option("--config", "config", help=f"New global configuration: {_CONFIG_HELP}")
@click.option("--entity-config", help=f"New Bill entity configuration: {_CONFIG_HELP}")
@click.option("--destination-config", help=f"New destination configuration: {_CONFIG_HELP}")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
@_guard
def integrations_update(
    state: _State,
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
        config=_read_json_arg(config, "--config") if config is not None else None,
        entity_config=(
            _read_json_arg(entity_config, "--entity-config") if entity_config is not None else None
        ),
        destination_config=(
            _read_json_arg(destination_config, "--destination-config")
            if destination_config is not None
            else None
        ),
    )
    _show_integration(state, integration, as_json)


@integrations.command("delete")
@click.argument("integration_id")
@pass_state
@_guard
def integrations_delete(state: _State, integration_id: str) -> None:
    """Delete an integration with its linked mappings, runs and events."""
    state.engine.integrations.delete(integration_id)
    out.print(f"deleted integration {integration_id}", markup=False)


@integrations.command("enable")
@click.argument("integration_id")
@pass_state
@_guard
def integrations_enable(state: _State, integration_id: str) -> None:
    """Enable an integration (resets its successive-error count)."""
    integration = state.engine.integrations.enable(integration_id)
    out.print(f"enabled {integration.name} ({integration.id})", markup=False)


@integrations.command("disable")
@click.argument("integration_id")
@pass_state
@_guard
def integrations_disable(state: _State, integration_id: str) -> None:
    """Disable an integration."""
    integration = state.engine.integrations.disable(integration_id)
    out.print(f"disabled {integration.name} ({integration.id})", markup=False)


# --- mappings --------------------------------------------------------------------------------


def _mapping_dict(mapping: Any) -> dict[str, Any]:
    return {
        "id": mapping.id,
        "m3terEntity": mapping.m3ter_entity,
        "m3terId": mapping.m3ter_id,
        "externalSystem": mapping.external_system,
        "externalTable": mapping.external_table,
        "externalId": mapping.external_id,
        "integrationConfigId": mapping.integration_id,
        "createdAt": mapping.created_at,
    }


def _print_mappings(items: Sequence[Any], as_json: bool) -> None:
    if as_json:
        _print_json([_mapping_dict(m) for m in items])
        return
    table = _table(
        "External mappings",
        ("id", "entity", "entity id", "system", "table", "external id", "integration"),
    )
    for m in items:
        table.add_row(
            m.id,
            m.m3ter_entity,
            m.m3ter_id,
            m.external_system,
            m.external_table,
            m.external_id,
            m.integration_id or "(global)",
        )
    out.print(table)


@main.group()
def mappings() -> None:
    """Map m3ter entities (accounts, products...) to records in a destination."""


@mappings.command("create")
@click.option("--entity", required=True, help="m3ter entity: Account, Product, Aggregation...")
@click.option("--entity-id", required=True, help="The m3ter id.")
@click.option("--table", "external_table", required=True, help="External table: Customer...")
@click.option("--external-id", required=True, help="The record's id in the destination.")
@click.option("--system", "external_system", help="Destination key (often inferred).")
@click.option("--integration", "integration_id", help="Link to one integration.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
@_guard
def mappings_create(
    state: _State,
    entity: str,
    entity_id: str,
    external_table: str,
    external_id: str,
    external_system: str | None,
    integration_id: str | None,
    as_json: bool,
) -> None:
    """Create one external mapping."""
    mapping = state.engine.mappings.create(
        entity=entity,
        entity_id=entity_id,
        external_table=external_table,
        external_id=external_id,
        external_system=external_system,
        integration_id=integration_id,
    )
    _print_mappings([mapping], as_json)


@mappings.command("import")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
@_guard
def mappings_import(state: _State, path: Path, as_json: bool) -> None:
    """Create every mapping in a JSON array file, all or nothing."""
    data = _read_json_file(path, "mappings file")
    if not isinstance(data, list) or not all(isinstance(m, Mapping) for m in data):
        _fail(f"{path} must hold a JSON array of mapping objects")
    created = state.engine.mappings.create_many(data)
    _print_mappings(created, as_json)


@mappings.command("list")
@click.option("--entity", help="Only this m3ter entity type.")
@click.option("--entity-id", help="Only this m3ter id.")
@click.option("--system", "external_system", help="Only this destination.")
@click.option("--table", "external_table", help="Only this external table.")
@click.option("--external-id", help="Only mappings to this external id (needs --system, --table).")
@click.option("--integration", "integration_id", help="Only mappings linked to this integration.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
@_guard
def mappings_list(
    state: _State,
    entity: str | None,
    entity_id: str | None,
    external_system: str | None,
    external_table: str | None,
    external_id: str | None,
    integration_id: str | None,
    as_json: bool,
) -> None:
    """List external mappings (filters combine)."""
    if external_id is not None:
        if not (external_system and external_table):
            _fail("--external-id needs --system and --table", code=EXIT_USAGE)
        items = state.engine.mappings.find_external(external_system, external_table, external_id)
    else:
        items = state.engine.mappings.list(
            entity=entity,
            entity_id=entity_id,
            external_system=external_system,
            external_table=external_table,
            integration_id=integration_id,
        )
    _print_mappings(items, as_json)


@mappings.command("delete")
@click.argument("mapping_id")
@pass_state
@_guard
def mappings_delete(state: _State, mapping_id: str) -> None:
    """Delete one external mapping."""
    state.engine.mappings.delete(mapping_id)
    out.print(f"deleted mapping {mapping_id}", markup=False)


@integrations.command("connect")
@click.argument("integration_id")
@click.argument("credential_id")
@pass_state
@_guard
def integrations_connect(state: _State, integration_id: str, credential_id: str) -> None:
    """Connect a COMPLETE credential to an integration (replaces any connected one)."""
    integration = state.engine.integrations.connect(integration_id, credential_id)
    out.print(f"connected {integration.name} to credential {credential_id}", markup=False)


@integrations.command("disconnect")
@click.argument("integration_id")
@pass_state
@_guard
def integrations_disconnect(state: _State, integration_id: str) -> None:
    """Disconnect the integration's credential."""
    integration = state.engine.integrations.disconnect(integration_id)
    out.print(f"disconnected {integration.name}", markup=False)


# --- credentials -------------------------------------------------------------------------------


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


@main.group()
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
@_guard
def credentials_app(
    state: _State,
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


@credentials.command("create")
@click.argument("destination")
@click.option("--name", required=True, help="A name people recognise, e.g. 'Xero UK'.")
@click.option("--port", type=int, default=0, help="Loopback port to listen on (default: random).")
@click.option("--no-browser", is_flag=True, help="Only print the consent URL.")
@click.option("--tenant", help="The organisation to connect when the consent covers several.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
@_guard
def credentials_create(
    state: _State,
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
    from billbridge.consent import connect_interactively

    engine = state.engine
    credential = engine.credentials.create(name, destination)

    def show(url: str) -> None:
        err.print("Open this address to grant access (waiting for the answer):", markup=False)
        err.print(url, markup=False, soft_wrap=True)
        if not no_browser:
            import webbrowser

            webbrowser.open(url)

    def pick(choices: list[tuple[str, str | None]]) -> str:
        if tenant is not None:
            return tenant
        for index, (tenant_id, tenant_name) in enumerate(choices, 1):
            err.print(f"  {index}. {tenant_name or '?'} ({tenant_id})", markup=False)
        if not sys.stdin.isatty():
            _fail("the consent covers several organisations: run again with --tenant ID")
        number = click.prompt("Connect which one", type=click.IntRange(1, len(choices)), err=True)
        return choices[number - 1][0]

    done = connect_interactively(engine, credential, open_url=show, choose_tenant=pick, port=port)
    if as_json:
        _print_json(_credential_dict(done))
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
@_guard
def credentials_list(state: _State, destination: str | None, as_json: bool) -> None:
    """List credentials (status, expiry, tenant; never secrets)."""
    items = state.engine.credentials.list(destination=destination)
    if as_json:
        _print_json([_credential_dict(c) for c in items])
        return
    table = _table(
        "Credentials", ("id", "name", "destination", "status", "tenant", "token expires")
    )
    for c in items:
        expiry = c.expires_at if c.status.value == "INCOMPLETE" else c.access_token_expires_at
        table.add_row(
            c.id,
            c.display_name,
            c.destination,
            c.status.value,
            f"{c.tenant_name or ''} {c.tenant_id or ''}".strip() or "-",
            expiry.strftime("%Y-%m-%d %H:%M UTC") if expiry else "-",
        )
    out.print(table)


@credentials.command("delete")
@click.argument("credential_id")
@click.option("--no-revoke", is_flag=True, help="Do not revoke the tokens at the provider.")
@pass_state
@_guard
def credentials_delete(state: _State, credential_id: str, no_revoke: bool) -> None:
    """Delete a credential (revokes it; integrations using it are disconnected)."""
    state.engine.credentials.delete(credential_id, revoke=not no_revoke)
    out.print(f"deleted credential {credential_id}", markup=False)


@credentials.command("purge")
@pass_state
@_guard
def credentials_purge(state: _State) -> None:
    """Remove incomplete credentials whose consent window has ended."""
    removed = state.engine.credentials.purge()
    out.print(f"removed {removed} expired incomplete credential(s)", markup=False)


# --- bills, delivery, runs, events -------------------------------------------------------------


def _run_dict(run: Any) -> dict[str, Any]:
    return {
        "id": run.id,
        "integrationId": run.integration_id,
        "billId": run.bill_id,
        "billVersion": run.bill_version,
        "accountId": run.account_id,
        "status": run.status.value,
        "attempts": run.attempts,
        "externalId": run.external_id,
        "externalUrl": run.external_url,
        "error": run.error,
        "replayedFrom": run.replayed_from,
        "nextAttemptAt": run.next_attempt_at,
        "createdAt": run.created_at,
        "updatedAt": run.updated_at,
    }


def _print_runs(items: Sequence[Any], as_json: bool, title: str = "Runs") -> None:
    if as_json:
        _print_json([_run_dict(r) for r in items])
        return
    table = _table(
        title, ("id", "bill", "v", "integration", "status", "tries", "external", "error")
    )
    for r in items:
        table.add_row(
            r.id,
            r.bill_id,
            str(r.bill_version),
            r.integration_id,
            r.status.value,
            str(r.attempts),
            r.external_id or "-",
            (r.error or "")[:80],
        )
    out.print(table)


def _load_accounts(paths: Sequence[Path]) -> dict[str, Any]:
    accounts: dict[str, Any] = {}
    for path in paths:
        document = _read_json_file(path, "account")
        if not isinstance(document, dict) or "id" not in document:
            _fail(f"{path} is not an m3ter account (an object with an id)")
        accounts[str(document["id"])] = document
    return accounts


@main.group()
def bills() -> None:
    """Hand bills to billbridge."""


@bills.command("submit")
@click.argument(
    "bill_files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path)
)
@click.option(
    "--account",
    "account_files",
    multiple=True,
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The bill's account (m3ter JSON); repeat for bills of several accounts.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
@_guard
def bills_submit(
    state: _State, bill_files: Sequence[Path], account_files: Sequence[Path], as_json: bool
) -> None:
    """Route bills (m3ter JSON files) to every matching integration."""
    accounts = _load_accounts(account_files)
    runs: list[Any] = []
    skips: list[Any] = []
    with _progress(len(bill_files), "routing bills", enabled=not as_json) as advance:
        for path in bill_files:
            document = _read_json_file(path, "bill")
            if not isinstance(document, dict):
                _fail(f"{path} is not an m3ter bill (a JSON object)")
            account = accounts.get(str(document.get("accountId")))
            if account is None:
                _fail(f"{path}: no --account given for account {document.get('accountId')}")
            result = state.engine.submit_bill(document, account)
            runs += result.runs
            skips += result.skips
            advance(1)
    if as_json:
        _print_json(
            {
                "runs": [_run_dict(r) for r in runs],
                "skips": [
                    {"integrationId": s.integration_id, "billId": s.bill_id, "reason": s.reason}
                    for s in skips
                ],
            }
        )
        return
    _print_runs(runs, False, title=f"Queued: {len(runs)} run(s)")
    if skips:
        table = _table(f"Skipped: {len(skips)}", ("integration", "bill", "v", "reason"))
        for skip in skips:
            table.add_row(skip.integration_id, skip.bill_id, str(skip.bill_version), skip.reason)
        out.print(table)


@main.command()
@click.option("--integration", "integration_id", required=True, help="The integration.")
@click.argument("bill_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--account", "account_file", required=True, type=click.Path(dir_okay=False, path_type=Path)
)
@pass_state
@_guard
def preview(state: _State, integration_id: str, bill_file: Path, account_file: Path) -> None:
    """Print the exact request an integration would send for a bill (nothing is sent)."""
    bill = _read_json_file(bill_file, "bill")
    account = _read_json_file(account_file, "account")
    _print_json(state.engine.preview(bill, account, integration_id))


@contextmanager
def _progress(total: int, label: str, *, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr (nothing when not enabled or stderr is not a terminal)."""
    if not enabled or total <= 1:
        yield lambda _n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _deliver_with_progress(engine: Any, quiet: bool) -> Any:
    if quiet:
        return engine.deliver_pending()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
    ) as bar:
        task = bar.add_task("delivering", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=max(total, done))

        return engine.deliver_pending(progress=update)


def _report_line(report: Any) -> str:
    parts = ", ".join(f"{count} {status}" for status, count in sorted(report.statuses.items()))
    return (
        f"delivered {report.attempted} run(s) in {report.seconds:.1f}s"
        f"{': ' + parts if parts else ''} ({report.requests} request(s), "
        f"{report.throttled} throttled)"
    )


@main.command()
@click.option("--once", is_flag=True, help="Deliver what is due now, then stop.")
@click.option("--poll", type=float, default=5.0, show_default=True, help="Seconds between checks.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@pass_state
@_guard
def worker(state: _State, once: bool, poll: float, quiet: bool) -> None:
    """Deliver waiting runs: once, or continuously (Ctrl-C stops after the current batch)."""
    engine = state.engine
    while True:
        report = _deliver_with_progress(engine, quiet or not sys.stderr.isatty())
        if report.attempted or once:
            err.print(_report_line(report), markup=False)
        if once:
            return
        next_due = engine.next_due_at()
        wait = poll
        if next_due is not None:
            wait = max(0.0, min(poll, (next_due - engine.clock.now()).total_seconds()))
        try:
            time.sleep(wait)
        except KeyboardInterrupt:
            err.print("worker stopped", markup=False)
            return


@main.group()
def runs() -> None:
    """Delivery runs: list, show with attempts, replay."""


@runs.command("list")
@click.option("--integration", "integration_id", help="Only this integration.")
@click.option("--bill", "bill_id", help="Only this bill.")
@click.option("--status", "statuses", multiple=True, help="Only these statuses (repeatable).")
@click.option("--since", type=click.DateTime(), help="Created at or after (UTC).")
@click.option("--until", type=click.DateTime(), help="Created before (UTC).")
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
@_guard
def runs_list(
    state: _State,
    integration_id: str | None,
    bill_id: str | None,
    statuses: Sequence[str],
    since: datetime | None,
    until: datetime | None,
    limit: int,
    as_json: bool,
) -> None:
    """List runs, newest first."""
    try:
        wanted = [RunStatus(s.upper()) for s in statuses] or None
    except ValueError:
        _fail(f"unknown status; known: {', '.join(s.value for s in RunStatus)}", code=EXIT_USAGE)
    items = state.engine.runs.list(
        integration_id=integration_id,
        bill_id=bill_id,
        status=wanted,
        since=since.replace(tzinfo=UTC) if since else None,
        until=until.replace(tzinfo=UTC) if until else None,
        limit=limit,
    )
    _print_runs(items, as_json)


@runs.command("show")
@click.argument("run_id")
@pass_state
@_guard
def runs_show(state: _State, run_id: str) -> None:
    """One run with its attempts (JSON)."""
    run = state.engine.runs.get(run_id)
    attempts = state.engine.runs.attempts(run_id)
    _print_json(
        {
            **_run_dict(run),
            "attemptLog": [
                {
                    "number": a.number,
                    "status": a.status.value,
                    "startedAt": a.started_at,
                    "finishedAt": a.finished_at,
                    "worker": a.worker,
                    "error": a.error,
                }
                for a in attempts
            ],
        }
    )


@runs.command("replay")
@click.argument("run_id")
@pass_state
@_guard
def runs_replay(state: _State, run_id: str) -> None:
    """Queue a run again (a new run pointing to this one)."""
    replay = state.engine.runs.replay(run_id)
    out.print(f"queued run {replay.id} (replays {run_id})", markup=False)


@main.group()
def events() -> None:
    """What people must act on."""


@events.command("list")
@click.option("--integration", "integration_id", help="Only this integration.")
@click.option("--type", "event_type", help="Only this type, e.g. integration.validation.error.")
@click.option("--open/--all", "only_open", default=False, help="Only events not actioned yet.")
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
@_guard
def events_list(
    state: _State,
    integration_id: str | None,
    event_type: str | None,
    only_open: bool,
    limit: int,
    as_json: bool,
) -> None:
    """List events, newest first."""
    try:
        kind = EventType(event_type) if event_type else None
    except ValueError:
        _fail(
            f"unknown event type; known: {', '.join(t.value for t in EventType)}", code=EXIT_USAGE
        )
    items = state.engine.events.list(
        integration_id=integration_id, type=kind, actioned=False if only_open else None, limit=limit
    )
    if as_json:
        _print_json(
            [
                {
                    "id": e.id,
                    "type": e.type.value,
                    "message": e.message,
                    "integrationId": e.integration_id,
                    "runId": e.run_id,
                    "details": thaw(e.details),
                    "createdAt": e.created_at,
                    "actionedAt": e.actioned_at,
                    "actionedBy": e.actioned_by,
                }
                for e in items
            ]
        )
        return
    table = _table("Events", ("id", "type", "when", "actioned", "message"))
    for e in items:
        table.add_row(
            e.id,
            e.type.value,
            e.created_at.strftime("%Y-%m-%d %H:%M"),
            "yes" if e.actioned else "no",
            e.message,
        )
    out.print(table)


@events.command("action")
@click.argument("event_id")
@click.option("--by", default=lambda: os.environ.get("USER", ""), help="Who dealt with it.")
@pass_state
@_guard
def events_action(state: _State, event_id: str, by: str) -> None:
    """Mark an event as dealt with."""
    event = state.engine.events.mark_actioned(event_id, by=by)
    out.print(f"marked {event.id} as actioned", markup=False)


@main.group()
def skips() -> None:
    """Routing decisions not to send a bill, with their reasons."""


@skips.command("list")
@click.option("--integration", "integration_id", help="Only this integration.")
@click.option("--bill", "bill_id", help="Only this bill.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
@_guard
def skips_list(
    state: _State, integration_id: str | None, bill_id: str | None, as_json: bool
) -> None:
    """List skips, newest first."""
    items = state.engine.skips.list(integration_id=integration_id, bill_id=bill_id)
    if as_json:
        _print_json(
            [
                {
                    "integrationId": s.integration_id,
                    "billId": s.bill_id,
                    "billVersion": s.bill_version,
                    "reason": s.reason,
                    "createdAt": s.created_at,
                }
                for s in items
            ]
        )
        return
    table = _table("Skips", ("integration", "bill", "v", "reason"))
    for s in items:
        table.add_row(s.integration_id, s.bill_id, str(s.bill_version), s.reason)
    out.print(table)


# --- secrets -----------------------------------------------------------------------------------


@main.group()
def secrets() -> None:
    """The key that encrypts tokens and client secrets at rest."""


@secrets.command("generate-key")
def secrets_generate_key() -> None:
    """Print a new Fernet key for BILLBRIDGE_SECRET_KEY."""
    from billbridge.secrets import generate_key

    click.echo(generate_key())


@secrets.command("rotate")
@pass_state
@_guard
def secrets_rotate(state: _State) -> None:
    """Re-encrypt every stored secret with the first key of BILLBRIDGE_SECRET_KEY."""
    count = state.engine.rotate_secrets()
    out.print(f"re-encrypted {count} record(s) with the newest key", markup=False)


# --- the demo ----------------------------------------------------------------------------------


@main.command()
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the demo's SQLite database here (default: a temporary directory).",
)
@_guard
def demo(home: Path | None) -> None:
    """Run the main job end to end against the QuickBooks and Xero emulators.

    Starts both emulators on loopback, connects credentials through the OAuth flow, creates
    three integrations with mappings, delivers the sample bills, then a regenerated bill, and
    shows what happened.
    """
    from billbridge.demo import run_demo

    if home is not None:
        home.mkdir(parents=True, exist_ok=True)
    run_demo(home, console=out)


# --- emulators ---------------------------------------------------------------------------------


@main.command()
@click.argument("name")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, required=True, help="Port to listen on.")
@_guard
def emulator(name: str, host: str, port: int) -> None:
    """Run a destination's emulator (QuickBooks, Xero) in the foreground, for demos and tests."""
    from billbridge.testing.emulation.emulators import emulator_module

    try:
        module = emulator_module(name)
    except KeyError as exc:
        _fail(str(exc.args[0]))
    module.main(host=host, port=port)


# --- database --------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@pass_state
@_guard
def db_upgrade(state: _State) -> None:
    """Apply every pending migration (also done automatically on first use)."""
    from billbridge.settings import Settings
    from billbridge.store import Database

    url = state.database_url or Settings().resolved_database_url
    database = Database(url)
    try:
        before = database.current_revision()
        database.upgrade()
        after = database.current_revision()
    finally:
        database.dispose()
    if before == after:
        out.print(f"{database.display_url}: already at {after}", markup=False)
    else:
        out.print(f"{database.display_url}: upgraded {before or '(empty)'} → {after}", markup=False)


if __name__ == "__main__":  # pragma: no cover
    main()
