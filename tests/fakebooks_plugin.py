"""A minimal OAuth destination ("fakebooks") and its provider, for the core's credential tests.

The provider is billbridge's emulator OAuth server plus two API endpoints: ``/api/connections``
(the tenants a token covers, like Xero's ``/connections``) and ``/api/whoami`` (401 when the
token is not valid). Importable by worker processes (multiprocessing) as ``fakebooks_plugin``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from billbridge import hookimpl
from billbridge.contract import Connection, Destination, OAuthCallback, OAuthSpec, TenantChoice
from billbridge.errors import AuthenticationFailed, TokenExpired
from billbridge.testing.clock import Clock
from billbridge.testing.oauth import OAuthServer

KEY = "fakebooks"
CLIENT_ID = "fake-client"
CLIENT_SECRET = "fake-client-secret-value"
TENANTS = {"t-uk": "Fake UK Ltd", "t-us": "Fake US Inc"}

PANEL = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Fakebooks",
    "description": "A fake destination for tests.",
    "type": "object",
    "properties": {},
    "additionalProperties": False,
}


@hookimpl
def register_destinations() -> list[Destination]:
    """One OAuth destination whose real hosts do not exist (tests override them)."""
    return [
        Destination(
            key=KEY,
            title="Fakebooks",
            schema=PANEL,
            external_tables=("Customer",),
            oauth=OAuthSpec(
                authorize_url="https://fakebooks.invalid/authorize",
                token_url="https://fakebooks.invalid/token",
                revoke_url="https://fakebooks.invalid/revoke",
                scopes=("offline_access", "accounting"),
                access_token_lifetime=1800,
                refresh_token_grace=1800,
            ),
            api_base_url="https://fakebooks.invalid/api",
        )
    ]


@hookimpl
def authenticate(
    destination: str, callback: OAuthCallback, http: httpx.Client, api_base_url: str
) -> Sequence[TenantChoice]:
    """Tenants from ``/connections``, as Xero does it."""
    response = http.get(
        f"{api_base_url}/connections",
        headers={"Authorization": f"Bearer {callback.access_token.reveal()}"},
    )
    if response.status_code != 200:
        raise AuthenticationFailed(f"/connections answered {response.status_code}")
    return [TenantChoice(t["tenantId"], t["tenantName"]) for t in response.json()]


def whoami(connection: Connection) -> dict[str, Any]:
    """An API call that raises TokenExpired on 401, as a plugin client would."""
    response = connection.http.get(
        f"{connection.api_base_url}/whoami",
        headers={"Authorization": f"Bearer {connection.access_token.reveal()}"},
    )
    if response.status_code == 401:
        raise TokenExpired("access token refused")
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


class Provider:
    """The fake provider: an OAuthServer and the two API endpoints, as one ASGI app."""

    def __init__(self, clock: Clock) -> None:
        self.tenants: list[str] = ["t-uk"]
        self.oauth = OAuthServer(
            clock=clock,
            access_lifetime=1800,
            refresh_lifetime=60 * 86400,
            refresh_grace=1800,
            consent_tenants=lambda query: list(self.tenants),
            allowed_scopes=["offline_access", "accounting"],
        )
        self.oauth.add_client(CLIENT_ID, CLIENT_SECRET)
        #: When set, the token endpoint answers this instead (status, body, content type).
        self.token_override: tuple[int, str, str] | None = None
        self.app = Starlette(
            routes=[
                Route("/authorize", self.oauth.authorize),
                Route("/token", self._token, methods=["POST"]),
                Route("/revoke", self.oauth.revoke, methods=["POST"]),
                Route("/api/connections", self._connections),
                Route("/api/whoami", self._whoami),
            ]
        )

    async def _token(self, request: Request) -> Response:
        if self.token_override is not None:
            status, body, content_type = self.token_override
            return Response(body, status_code=status, media_type=content_type)
        return await self.oauth.token(request)

    async def _connections(self, request: Request) -> Response:
        info = self.oauth.bearer(request)
        if info is None:
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return JSONResponse(
            [{"tenantId": t, "tenantName": TENANTS[t]} for t in info.authorization.tenants]
        )

    async def _whoami(self, request: Request) -> Response:
        info = self.oauth.bearer(request)
        if info is None:
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return JSONResponse({"tenants": list(info.authorization.tenants)})
