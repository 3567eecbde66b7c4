"""``billbridge serve``: the HTTP API (and the console), with delivery in the background."""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs
import click

from billbridge.cli.guard import guard
from billbridge.cli.state import State, pass_state

if TYPE_CHECKING:
    from billbridge.api.settings import ApiSettings
    from billbridge.engine import Engine

__all__ = ["run_server", "serve"]


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8000, show_default=True, help="Port to listen on.")
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
@click.option(
    "--console-key",
    is_flag=True,
    help="Make an admin API key for the web console, print the URL that signs in with it, and "
    "revoke the key when the server stops.",
)
@pass_state
@guard
def serve(
    state: State,
    host: str,
    port: int,
    no_worker: bool,
    no_webhooks: bool,
    poll: float,
    cors_origins: tuple[str, ...],
    max_body_bytes: int | None,
    public_url: str | None,
    log_level: str,
    console_key: bool,
) -> None:
    """Serve the HTTP API and the web console (and, unless --no-worker, deliver bills in the
    background)."""
    from billbridge.api.settings import ApiSettings

    settings = ApiSettings.from_env()
    changes: dict[str, Any] = {}
    if cors_origins:
        changes["cors_origins"] = tuple(o.rstrip("/") for o in cors_origins)
    if max_body_bytes is not None:
        changes["max_body_bytes"] = max_body_bytes
    if public_url:
        changes["public_url"] = public_url.rstrip("/")
    settings = attrs.evolve(settings, **changes)
    run_server(
        state.engine,
        settings,
        host=host,
        port=port,
        deliver=not no_worker,
        webhooks=not no_webhooks,
        poll=poll,
        log_level=log_level,
        console_key=console_key,
    )


def run_server(
    engine: Engine,
    settings: ApiSettings,
    *,
    host: str,
    port: int,
    deliver: bool = True,
    webhooks: bool = True,
    poll: float = 5.0,
    log_level: str = "info",
    console_key: bool = False,
) -> None:
    """Serve the API and the console until SIGINT/SIGTERM (``billbridge serve``, ``billbridge
    demo --serve``).

    :param console_key: make an admin key named "console", print the console URL that signs in
        with it (the key rides in the URL's fragment, which browsers never send to a server),
        and revoke it when the server stops.
    """
    import uvicorn

    from billbridge.api.app import create_app
    from billbridge.api.worker import BackgroundWorker

    worker = BackgroundWorker(engine, deliver=deliver, webhooks=webhooks, poll=poll)
    app = create_app(engine, settings, worker=worker)
    jobs = ", ".join(job for job, on in (("delivery", deliver), ("webhooks", webhooks)) if on)
    base = settings.public_url or f"http://{host}:{port}"
    click.echo(
        f"billbridge serve on http://{host}:{port} ({engine.db.display_url}; "
        f"background: {jobs or 'none'})",
        err=True,
    )
    key_id = None
    if console_key:
        made, secret = engine.api_keys.create("console", "admin")
        key_id = made.id
        lines = [
            f"console: {base}/#key={secret}",
            "  (an admin key made for this run; it is revoked when the server stops)",
        ]
    else:
        lines = [f"console: {base}/ (sign in with an API key: billbridge api-keys create)"]
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        log_level=log_level,
        # Open event streams must not hold a shutdown forever; they end with a retry hint.
        timeout_graceful_shutdown=10,
    )
    try:
        with _signals_end_the_server():
            _server(config, lambda: click.echo("\n".join(lines), err=True)).run()
    finally:
        if key_id is not None:
            engine.api_keys.revoke(key_id)
    click.echo("billbridge serve stopped", err=True)


def _server(config: Any, ready: Callable[[], object]) -> Any:
    """uvicorn's server, calling ``ready`` once it listens: the console URL is printed only
    when it can be opened, since people and scripts act on that line at once."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                ready()

    return Server(config)


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
