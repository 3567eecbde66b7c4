"""The web console: the built single-page app, served at ``/`` beside the API.

The bundle (``index.html`` and hashed ``assets/``) is built from ``console/`` at the root of the
repository and committed into ``billbridge/api/console/``, so the wheel carries it and
``pip install billbridge`` needs no Node. It is served as the router's fallback: every route of
the API keeps its own answers (an unknown ``/api/...`` route is still a JSON 404, a wrong method
still 405), and any other ``GET`` is a file of the bundle or, for the console's own paths
(``/integrations/...``), its ``index.html``.

The console holds no secret: it asks for an API key and sends it as a header, like any client.
"""

from __future__ import annotations

import mimetypes
from importlib import resources
from importlib.resources.abc import Traversable

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["ConsoleFallback", "bundle"]

#: Paths that belong to the service, never to the console.
_RESERVED = ("/api", "/healthz", "/readyz", "/metrics", "/openapi.json")

_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def bundle() -> Traversable | None:
    """The directory of the built console, or ``None`` when this installation has none."""
    found = resources.files("billbridge.api").joinpath("console")
    return found if found.joinpath("index.html").is_file() else None


class ConsoleFallback:
    """Serves the console for requests no API route took; everything else is the 404 or 405
    it would have been."""

    def __init__(self, not_found: ASGIApp, root: Traversable | None = None) -> None:
        self.not_found = not_found
        self.root = root if root is not None else bundle()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] != "http"
            or self.root is None
            or scope.get("method") not in ("GET", "HEAD")
            or any(path == r or path.startswith(r + "/") for r in _RESERVED)
        ):
            await self.not_found(scope, receive, send)
            return
        response = self._file(path)
        if response is None:
            raise HTTPException(404)
        await response(scope, receive, send)

    def _file(self, path: str) -> Response | None:
        assert self.root is not None
        parts = [p for p in path.split("/") if p]
        if any(p in (".", "..") or "\\" in p for p in parts):
            return None
        if parts and parts[0] == "assets":
            target = self.root.joinpath(*parts)
            if not target.is_file():
                return None
            kind = mimetypes.guess_type(parts[-1])[0] or "application/octet-stream"
            return Response(
                target.read_bytes(),
                media_type=kind,
                # Asset names carry a hash of their content: they never change.
                headers={"Cache-Control": "public, max-age=31536000, immutable"}
                | _SECURITY_HEADERS,
            )
        if parts and "." in parts[-1]:
            return None  # a file the bundle does not have (favicon.ico, robots.txt...)
        page = self.root.joinpath("index.html").read_bytes()
        return Response(
            page,
            media_type="text/html; charset=utf-8",
            headers={"Cache-Control": "no-cache"} | _SECURITY_HEADERS,
        )
