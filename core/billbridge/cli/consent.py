"""Completing an OAuth consent from a command line: a one-request loopback redirect listener.

As command-line tools do (RFC 8252, "OAuth 2.0 for Native Apps"), billbridge listens on
``127.0.0.1`` on a random port, sends the user to the provider's consent page with that address
as the redirect URI, takes the one callback request, and completes the credential. The listener
stops after that request or when the credential's consent window ends.
"""

from __future__ import annotations

import html
import secrets
import threading
from collections.abc import Callable
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from billbridge.domain.models import Credential
from billbridge.errors import CredentialError

if TYPE_CHECKING:
    from billbridge.engine import Engine

__all__ = ["LoopbackListener", "connect_interactively"]

CALLBACK_PATH = "/callback"


class LoopbackListener:
    """An HTTP server on 127.0.0.1 that waits for exactly one OAuth callback."""

    def __init__(self, port: int = 0) -> None:
        received: dict[str, str] = {}
        done = threading.Event()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != CALLBACK_PATH or done.is_set():
                    self.send_error(404)
                    return
                query = dict(parse_qsl(parts.query, keep_blank_values=True))
                if not secrets.compare_digest(query.get("state", ""), listener.expected_state):
                    # Not the consent we sent the user to (a stray request, a stale tab, a
                    # page guessing): refused, and the listener keeps waiting for the real one.
                    self.send_error(400, "not the consent billbridge is waiting for")
                    return
                received.update(query)
                failed = "error" in received
                text = (
                    f"Access was not granted ({html.escape(received.get('error', ''))})."
                    if failed
                    else "billbridge received the authorization. You can close this tab."
                )
                body = f"<!doctype html><title>billbridge</title><p>{text}</p>".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                done.set()

            def log_message(self, format: str, *args: object) -> None:
                # The default handler prints every request line, which includes the code.
                return

        #: The ``state`` of the consent URL sent to the user: only its callback is taken.
        self.expected_state = ""
        self._server = HTTPServer(("127.0.0.1", port), Handler)
        self._received = received
        self._done = done
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def redirect_uri(self) -> str:
        """Where the provider must send the user back to."""
        return f"http://127.0.0.1:{self._server.server_address[1]}{CALLBACK_PATH}"

    def wait(self, timeout: float) -> dict[str, str] | None:
        """The callback's query parameters, or ``None`` when ``timeout`` passes first."""
        got = self._done.wait(timeout)
        return dict(self._received) if got else None

    def close(self) -> None:
        """Stop listening."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def connect_interactively(
    engine: Engine,
    credential: Credential,
    *,
    open_url: Callable[[str], None],
    choose_tenant: Callable[[list[tuple[str, str | None]]], str] | None = None,
    port: int = 0,
) -> Credential:
    """Run the consent for an INCOMPLETE credential through a loopback redirect.

    :param open_url: shows the consent URL to the user (prints it, opens a browser).
    :param choose_tenant: asked when the consent covers several tenants; gets
        ``(tenant id, name)`` pairs and returns the chosen id.
    :raises CredentialError: the consent was refused, failed, or did not come back in time.
    """
    from billbridge.errors import TenantChoiceRequired

    listener = LoopbackListener(port)
    try:
        url = engine.credentials.authorization_url(credential.id, listener.redirect_uri)
        listener.expected_state = dict(parse_qsl(urlsplit(url).query)).get("state", "")
        open_url(url)
        remaining = (
            (credential.expires_at - engine.clock.now()).total_seconds()
            if credential.expires_at
            else timedelta(minutes=10).total_seconds()
        )
        params = listener.wait(max(remaining, 0))
    finally:
        listener.close()
    if params is None:
        raise CredentialError(
            f"no answer from the consent page before the credential expired; "
            f"create {credential.name!r} again"
        )
    try:
        return engine.credentials.complete(
            params.get("state", ""),
            params.get("code"),
            realm_id=params.get("realmId"),
            error=params.get("error"),
            error_description=params.get("error_description"),
            params=params,
        )
    except TenantChoiceRequired as choice:
        if choose_tenant is None:
            raise
        picked = choose_tenant([(c.tenant_id, c.name) for c in choice.choices])
        return engine.credentials.choose_tenant(choice.credential_id, picked)
