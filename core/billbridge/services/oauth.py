"""The OAuth 2.0 protocol parts of credentials: endpoints, the token endpoint, consent URLs.

oauthlib builds and parses the protocol messages; httpx carries them. Nothing here touches the
store: :class:`~billbridge.services.credentials.Credentials` decides what to keep.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import attrs
import httpx
from oauthlib.oauth2 import OAuth2Error, WebApplicationClient

from billbridge.domain.models import Credential, CredentialTokens, Secret
from billbridge.domain.redaction import redact
from billbridge.errors import BillbridgeError, CredentialError, TransientError
from billbridge.plugin.contract import Destination, OAuthSpec, TenantChoice
from billbridge.plugin.http import transport_problem

__all__ = [
    "Endpoints",
    "InvalidGrant",
    "OAuthApp",
    "Tokens",
    "choose",
    "client_authentication",
    "consent_url",
    "oauth_spec",
    "parse_token_response",
    "require_safe_url",
    "state_hash",
    "token_request",
]


@attrs.frozen
class Endpoints:
    """Where a destination's OAuth and API live (real hosts, or overrides)."""

    authorize_url: str
    token_url: str
    revoke_url: str | None
    api_base_url: str


@attrs.frozen
class OAuthApp:
    """The OAuth app billbridge uses for a destination: client id, secret, redirect URI."""

    client_id: str
    client_secret: Secret
    redirect_uri: str | None


def state_hash(state: str) -> str:
    """The SHA-256 of an OAuth ``state``: only this is stored, the state is a bearer secret."""
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


def _is_loopback_http(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def require_safe_url(url: str, what: str) -> None:
    """Refuse a URL that is neither https nor on this machine (codes and tokens travel on it)."""
    # OAuth codes and tokens travel over these URLs: TLS, except on this machine (emulators).
    if not (url.startswith("https://") or _is_loopback_http(url)):
        raise CredentialError(f"refusing to use {what} {url!r}: it must be https (or loopback)")


def client_authentication(
    spec: OAuthSpec, app: OAuthApp
) -> tuple[httpx.BasicAuth | None, dict[str, str]]:
    """How the app proves itself to the provider, as the plugin's ``client_auth`` declares.

    The same for the token and the revoke endpoint (RFC 6749 §2.3.1, RFC 7009 §2.1): an HTTP
    Basic header (``"basic"``), or the id and secret among the request's fields (``"body"``).

    :returns: the Basic auth to send (or ``None``) and the fields to add to the body.
    """
    if spec.client_auth == "basic":
        return httpx.BasicAuth(app.client_id, app.client_secret.reveal()), {}
    return None, {"client_id": app.client_id, "client_secret": app.client_secret.reveal()}


def token_request(
    http: httpx.Client,
    destination: Destination,
    token_url: str,
    app: OAuthApp,
    body: str,
    *,
    purpose: str,
) -> Tokens:
    """POST ``body`` to the token endpoint with the client authentication the plugin declares.

    :param purpose: ``"code"`` (a failure is the consent's: :class:`CredentialError`) or
        ``"refresh"`` (a failure is worth retrying: :class:`TransientError`).
    :raises InvalidGrant: the provider refused the grant: start again or reconnect.
    """
    require_safe_url(token_url, "token URL")
    spec = oauth_spec(destination)
    key = destination.key
    headers = {
        "Accept": "application/json",
        "Content-Type": "application/x-www-form-urlencoded",
        **spec.token_request_headers,
    }
    extra: dict[str, Any] = {}
    auth, fields = client_authentication(spec, app)
    if auth is not None:
        extra["auth"] = auth
    if fields:
        body += "&" + str(httpx.QueryParams(fields))
    failure = CredentialError if purpose == "code" else TransientError
    try:
        response = http.post(token_url, content=body, headers=headers, **extra)
    except httpx.HTTPError as exc:
        # The exception text may carry the URL but never the body: no secrets leak here.
        raise failure(
            f"could not reach the {key} token endpoint: {transport_problem(exc)}"
        ) from None
    return parse_token_response(key, response, spec, failure)


class InvalidGrant(CredentialError):
    """The provider refused the grant (code or refresh token): start again / reconnect."""


@attrs.frozen
class Tokens:
    """A token endpoint's answer, secrets wrapped."""

    access_token: Secret
    refresh_token: Secret | None
    expires_in: int | None
    refresh_expires_in: int | None
    scopes: tuple[str, ...]

    def apply(self, credential: Credential, now: datetime) -> Credential:
        """The credential's expiry times and scopes after these tokens (from ``now``)."""
        return attrs.evolve(
            credential,
            access_token_expires_at=(
                now + timedelta(seconds=self.expires_in) if self.expires_in else None
            ),
            refresh_token_expires_at=(
                now + timedelta(seconds=self.refresh_expires_in)
                if self.refresh_expires_in
                else credential.refresh_token_expires_at
            ),
            scopes=self.scopes or credential.scopes,
            has_tokens=True,
        )

    def stored(self, before: CredentialTokens | None) -> CredentialTokens:
        """The tokens to keep: these, with the refresh token held ``before`` when the provider
        sent none (some keep the refresh token on refresh)."""
        return CredentialTokens(
            access_token=self.access_token,
            refresh_token=self.refresh_token or (before.refresh_token if before else None),
        )


def parse_token_response(
    destination: str,
    response: httpx.Response,
    spec: OAuthSpec,
    failure: type[BillbridgeError],
) -> Tokens:
    """Read a token endpoint's answer; errors are raised as ``failure`` (or InvalidGrant)."""
    where = f"the {destination} token endpoint"
    if response.status_code >= 500:
        raise failure(f"{where} answered HTTP {response.status_code}; try again later")
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise failure(
            f"{where} answered HTTP {response.status_code} with something that is not JSON"
        )
    if response.status_code >= 400 or "error" in payload:
        error = str(payload.get("error", f"HTTP {response.status_code}"))
        description = payload.get("error_description")
        # The provider's words may echo what it was sent (the refresh token): redacted.
        text = redact(
            f"{where} refused the request: {error}" + (f" ({description})" if description else "")
        )
        if error == "invalid_grant":
            raise InvalidGrant(text)
        raise CredentialError(text)
    client = WebApplicationClient("")
    try:
        # oauthlib validates the response (token type, required fields); scope changes are
        # allowed because providers legitimately narrow what was asked for.
        token = client.parse_request_body_response(response.text, scope=None)
    except (OAuth2Error, ValueError, Warning):
        raise failure(f"{where} sent a token response that is not valid OAuth 2.0") from None
    access = token.get("access_token")
    if not isinstance(access, str) or not access:
        raise failure(f"{where} sent no access token")
    refresh = token.get("refresh_token")
    scope = token.get("scope")
    scopes = tuple(scope) if isinstance(scope, list) else tuple(str(scope or "").split())
    refresh_in = token.get("x_refresh_token_expires_in") or spec.refresh_token_lifetime
    return Tokens(
        access_token=Secret(access),
        refresh_token=Secret(refresh) if isinstance(refresh, str) and refresh else None,
        expires_in=int(token.get("expires_in") or spec.access_token_lifetime),
        refresh_expires_in=int(refresh_in) if refresh_in else None,
        scopes=scopes,
    )


def oauth_spec(destination: Destination) -> OAuthSpec:
    """The destination's OAuth declaration, or :class:`CredentialError` if it has none."""
    if destination.oauth is None:
        raise CredentialError(f"{destination.key} does not use OAuth")
    return destination.oauth


def choose(choices: Sequence[TenantChoice], tenant_id: str | None) -> TenantChoice | None:
    """The tenant asked for, the only one offered, or ``None`` when the user must choose."""
    if tenant_id is not None:
        chosen = next((c for c in choices if c.tenant_id == tenant_id), None)
        if chosen is None:
            raise CredentialError(f"{tenant_id} is not one of the tenants this consent covers")
        return chosen
    return choices[0] if len(choices) == 1 else None


def consent_url(client: WebApplicationClient, authorize_url: str, **params: Any) -> str:
    """The provider's consent URL with the OAuth parameters."""
    if _is_loopback_http(authorize_url):
        # oauthlib refuses plain http outright; emulators on this machine are the one exception
        # billbridge allows, so build the URL as https and put the scheme back.
        built = client.prepare_request_uri("https://" + authorize_url[len("http://") :], **params)
        return "http://" + built[len("https://") :]
    return client.prepare_request_uri(authorize_url, **params)
