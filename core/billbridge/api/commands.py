"""Command-line entry points of the HTTP service: ``billbridge serve`` and
``billbridge api-keys create|list|revoke``.

Plain click commands, to be registered in the ``billbridge`` command group. Errors are one line
on stderr and exit code 1, as everywhere in the CLI.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, ParamSpec, TypeVar

import attrs
import click

from billbridge.domain.access import Scope
from billbridge.domain.models import dumps
from billbridge.errors import BillbridgeError, ValidationFailed

__all__ = ["api_keys", "serve"]

P = ParamSpec("P")
R = TypeVar("R")

_DATABASE_URL = click.option(
    "--database-url",
    envvar="BILLBRIDGE_DATABASE_URL",
    help="Database URL (default: SQLite in $BILLBRIDGE_HOME, ~/.billbridge).",
)


def _fail(message: str, details: list[str] | None = None) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    for line in details or ():
        click.echo(f"  {line}", err=True)
    sys.exit(1)


def _guard(fn: Callable[P, R]) -> Callable[P, R]:
    """billbridge's errors as one line on stderr and exit code 1, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ValidationFailed as exc:
            _fail(str(exc).split(":", 1)[0], [f"{e.path or '/'}: {e.message}" for e in exc.errors])
        except BillbridgeError as exc:
            _fail(str(exc))
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except Exception as exc:
            if os.environ.get("BILLBRIDGE_DEBUG"):
                raise
            _fail(f"unexpected {type(exc).__name__} (set BILLBRIDGE_DEBUG=1 for the traceback)")

    return wrapper


@contextmanager
def _engine(database_url: str | None) -> Iterator[Any]:
    from billbridge.engine import Engine

    engine = Engine(database_url)
    try:
        yield engine
    finally:
        engine.close()


# --- serve ---------------------------------------------------------------------------------------


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8000, show_default=True, help="Port to listen on.")
@_DATABASE_URL
@click.option(
    "--no-worker",
    is_flag=True,
    help="Do not deliver bills in this process (API-only replicas beside `billbridge worker`).",
)
@click.option("--no-webhooks", is_flag=True, help="Do not send webhooks from this process.")
@click.option("--poll", type=float, default=5.0, show_default=True, help="Worker poll seconds.")
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    help="A browser origin allowed to call the API (repeatable; default: CORS off).",
)
@click.option("--max-body-bytes", type=int, help="Largest request body accepted (default 5 MiB).")
@click.option("--public-url", help="The URL the service is reached at (OAuth callbacks).")
@click.option("--log-level", default="info", show_default=True, help="uvicorn's log level.")
@_guard
def serve(
    host: str,
    port: int,
    database_url: str | None,
    no_worker: bool,
    no_webhooks: bool,
    poll: float,
    cors_origins: tuple[str, ...],
    max_body_bytes: int | None,
    public_url: str | None,
    log_level: str,
) -> None:
    """Serve the HTTP API (and, unless --no-worker, deliver bills in the background)."""
    import uvicorn

    from billbridge.api.app import create_app
    from billbridge.api.settings import ApiSettings
    from billbridge.api.worker import BackgroundWorker

    settings = ApiSettings.from_env()
    changes: dict[str, Any] = {}
    if cors_origins:
        changes["cors_origins"] = tuple(o.rstrip("/") for o in cors_origins)
    if max_body_bytes is not None:
        changes["max_body_bytes"] = max_body_bytes
    if public_url:
        changes["public_url"] = public_url.rstrip("/")
    settings = attrs.evolve(settings, **changes)
    with _engine(database_url) as engine:
        worker = BackgroundWorker(
            engine, deliver=not no_worker, webhooks=not no_webhooks, poll=poll
        )
        app = create_app(engine, settings, worker=worker)
        jobs = ", ".join(
            job for job, on in (("delivery", not no_worker), ("webhooks", not no_webhooks)) if on
        )
        click.echo(
            f"billbridge serve on http://{host}:{port} ({engine.db.display_url}; "
            f"background: {jobs or 'none'})",
            err=True,
        )
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="on",
            log_level=log_level,
            # Open event streams must not hold a shutdown forever; they end with a retry hint.
            timeout_graceful_shutdown=10,
        )
        with _signals_end_the_server():
            uvicorn.Server(config).run()
    click.echo("billbridge serve stopped", err=True)


@contextmanager
def _signals_end_the_server() -> Iterator[None]:
    """Let SIGINT/SIGTERM stop the server without killing the process.

    uvicorn shuts down gracefully on them (the worker stops in the app's lifespan), then raises
    the signal again for the handler that was there before it: this no-op one, so that the
    engine is closed and the command exits 0 instead of dying by the signal.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# --- api-keys -----------------------------------------------------------------------------------


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
@_DATABASE_URL
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_guard
def api_keys_create(name: str, scope: str, database_url: str | None, as_json: bool) -> None:
    """Create a key and print it: it is shown this once (only its hash is stored)."""
    from billbridge.api import serializers

    with _engine(database_url) as engine:
        key, text = engine.api_keys.create(name, scope)
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
@_DATABASE_URL
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_guard
def api_keys_list(database_url: str | None, as_json: bool) -> None:
    """List keys (never the keys themselves: their first characters)."""
    from billbridge.api import serializers

    with _engine(database_url) as engine:
        keys = engine.api_keys.list()
    if as_json:
        click.echo(dumps([serializers.api_key(k) for k in keys], indent=2))
        return
    for key in keys:
        state = "active" if key.active else f"revoked {key.revoked_at:%Y-%m-%d %H:%M}"
        click.echo(f"{key.id}  {key.prefix}…  {key.scope.value:<5}  {state:<24}  {key.name}")


@api_keys.command("revoke")
@click.argument("key_id")
@_DATABASE_URL
@_guard
def api_keys_revoke(key_id: str, database_url: str | None) -> None:
    """Revoke a key: requests with it are refused from now on."""
    with _engine(database_url) as engine:
        key = engine.api_keys.revoke(key_id)
    click.echo(f"revoked API key {key.name!r} ({key.id})", err=True)
