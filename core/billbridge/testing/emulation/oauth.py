"""An OAuth 2.0 authorization server (authorization code grant) for emulators.

It behaves like the providers' servers do, with their differences as settings:

* consent (``GET authorize``): checks the client, redirect URI, response type and scopes, then
  redirects back with ``code`` and ``state`` (and extra parameters such as QuickBooks'
  ``realmId``), or with ``error=access_denied`` when the user says no. A PKCE challenge
  (RFC 7636, ``S256`` or ``plain``) is bound to the code when the client sends one, and
  required when the server is made with ``require_pkce=True``;
* tokens (``POST token``): client authentication as the provider documents it (``client_auth``:
  ``"basic"``, an HTTP Basic header, and/or ``"body"``, ``client_id`` and ``client_secret`` in
  the form; a request using another is refused with ``invalid_client`` and a description that
  says what the provider accepts), form body, ``authorization_code`` (single-use codes, bound to
  the redirect URI and the PKCE verifier, 10-minute lifetime) and ``refresh_token`` grants;
  access tokens expire, refresh tokens rotate, a spent refresh token is refused with
  ``invalid_grant`` (after an optional grace period during which the previous answer is
  repeated, as Xero does for 30 minutes);
* revocation (``POST revoke``): the same client authentication (RFC 7009), JSON
  ``{"token": …}`` or a form ``token=…``; revoking either token ends the whole authorization.

Serve it inside your fake provider (a Starlette app)::

    oauth = OAuthServer(clock=SystemClock(), access_lifetime=3600,
                        refresh_lifetime=30 * 86400, client_auth=("body",))
    oauth.add_client("app-id", "app-secret")
    app = Starlette(routes=[
        Route("/oauth/authorize", oauth.authorize),
        Route("/oauth/token", oauth.token, methods=["POST"]),
        Route("/oauth/revoke", oauth.revoke, methods=["POST"]),
        ...,  # your API, checking oauth.bearer(request) on every call
    ])

Emulators authenticate API calls with :meth:`OAuthServer.bearer`.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode

import attrs
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from billbridge.domain.clock import Clock

__all__ = [
    "CLIENT_AUTH_METHODS",
    "PKCE_METHODS",
    "Authorization",
    "OAuthClient",
    "OAuthServer",
    "TokenInfo",
    "pkce_challenge",
    "read_form",
]

CODE_LIFETIME = 600

CLIENT_AUTH_METHODS = ("basic", "body")
"""The client authentications the contract allows (``OAuthSpec.client_auth``): ``"basic"``, an
HTTP Basic header (RFC 6749 §2.3.1, ``client_secret_basic``); ``"body"``, ``client_id`` and
``client_secret`` in the form body (``client_secret_post``)."""

PKCE_METHODS = ("S256", "plain")
"""The PKCE code challenge methods the server understands (RFC 7636 §4.2)."""

_DESCRIBE_AUTH = {
    "basic": "an HTTP Basic Authorization header",
    "body": "client_id and client_secret in the form body",
}


def pkce_challenge(verifier: str, method: str = "S256") -> str:
    """The code challenge for ``verifier`` (RFC 7636 §4.2): ``S256`` or ``plain``."""
    if method == "plain":
        return verifier
    if method != "S256":
        raise ValueError(f"unknown PKCE method {method!r}; use one of {PKCE_METHODS}")
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@attrs.define
class OAuthClient:
    """A registered app: id, secret, and the redirect URIs it may use (None: any loopback)."""

    client_id: str
    client_secret: str
    redirect_uris: Sequence[str] | None = None

    def allows(self, redirect_uri: str) -> bool:
        """True when ``redirect_uri`` is registered (or is loopback when none are)."""
        if self.redirect_uris is not None:
            return redirect_uri in self.redirect_uris
        return redirect_uri.startswith(("http://127.0.0.1:", "http://localhost:", "http://[::1]:"))


@attrs.define
class Authorization:
    """One user consent: which client, scopes and tenants, and whether it was revoked."""

    id: str
    client_id: str
    scopes: tuple[str, ...]
    tenants: tuple[str, ...]
    created_at: float
    revoked: bool = False


@attrs.define
class TokenInfo:
    """What an access token stands for."""

    authorization: Authorization
    expires_at: float


@attrs.define
class _Code:
    authorization: Authorization
    redirect_uri: str
    expires_at: float
    used: bool = False
    #: ``(challenge, method)`` when the consent carried a PKCE challenge.
    pkce: tuple[str, str] | None = None


@attrs.define
class _Refresh:
    authorization: Authorization
    expires_at: float
    spent_at: float | None = None
    successor: dict[str, Any] | None = None


class OAuthServer:
    """The token side of an emulated provider. Thread-safe; all times come from ``clock``.

    :param access_lifetime: seconds an access token lives (QuickBooks 3600, Xero 1800).
    :param refresh_lifetime: seconds a refresh token lives unused.
    :param refresh_grace: seconds a spent refresh token still returns the answer it got
        (Xero: 1800; 0: refused at once).
    :param token_extras: extra fields of every token response (e.g. QuickBooks'
        ``x_refresh_token_expires_in``), computed per response.
    :param consent_tenants: which tenants a consent grants, given the authorize request's query
        parameters (the emulator decides: QuickBooks one realm, Xero the chosen organisations).
    :param callback_extras: extra callback parameters (QuickBooks: ``realmId``).
    :param allowed_scopes: the scopes a consent may ask for (``None``: any).
    :param client_auth: the client authentications the token and revoke endpoints accept, as
        the provider documents them: ``("basic",)`` (the default, what RFC 6749 requires every
        server to support), ``("body",)``, or both (see :data:`CLIENT_AUTH_METHODS`). Set it to
        what the real provider accepts, so a plugin whose ``OAuthSpec.client_auth`` disagrees
        fails against the fake as it would against the provider.
    :param require_pkce: refuse consents without a PKCE ``code_challenge``. A challenge is
        always checked when one is sent.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        access_lifetime: int,
        refresh_lifetime: int,
        refresh_grace: int = 0,
        token_extras: Callable[[Authorization], Mapping[str, Any]] | None = None,
        consent_tenants: Callable[[Mapping[str, str]], Sequence[str]] | None = None,
        callback_extras: Callable[[Authorization], Mapping[str, str]] | None = None,
        allowed_scopes: Sequence[str] | None = None,
        client_auth: Collection[str] = ("basic",),
        require_pkce: bool = False,
    ) -> None:
        unknown = set(client_auth) - set(CLIENT_AUTH_METHODS)
        if unknown or not client_auth:
            given = tuple(client_auth)
            raise ValueError(f"client_auth must be one or more of {CLIENT_AUTH_METHODS}: {given}")
        self.client_auth = tuple(m for m in CLIENT_AUTH_METHODS if m in client_auth)
        self.require_pkce = require_pkce
        self.clock = clock
        self.access_lifetime = access_lifetime
        self.refresh_lifetime = refresh_lifetime
        self.refresh_grace = refresh_grace
        self._token_extras = token_extras or (lambda _a: {})
        self._consent_tenants = consent_tenants or (lambda _q: ())
        self._callback_extras = callback_extras or (lambda _a: {})
        self.allowed_scopes = tuple(allowed_scopes) if allowed_scopes is not None else None
        self.clients: dict[str, OAuthClient] = {}
        #: When True the next consents are refused (``error=access_denied``).
        self.deny = False
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, TokenInfo] = {}
        self._refresh: dict[str, _Refresh] = {}
        self._lock = threading.Lock()
        #: Counters tests read: codes exchanged, refreshes answered, refreshes refused...
        self.stats: dict[str, int] = {"codes": 0, "refreshes": 0, "refused": 0, "revocations": 0}

    def add_client(
        self, client_id: str, client_secret: str, redirect_uris: Sequence[str] | None = None
    ) -> OAuthClient:
        """Register an app."""
        client = OAuthClient(client_id, client_secret, redirect_uris)
        self.clients[client_id] = client
        return client

    # -- consent ------------------------------------------------------------------------------

    async def authorize(self, request: Request) -> Response:
        """The consent page, approving (or denying) at once and redirecting back."""
        query = dict(request.query_params)
        client = self.clients.get(query.get("client_id", ""))
        redirect_uri = query.get("redirect_uri", "")
        if client is None:
            return JSONResponse({"error": "invalid_client"}, status_code=400)
        if not client.allows(redirect_uri):
            # Never redirect to an unregistered address: that is how codes get stolen.
            return JSONResponse(
                {"error": "invalid_request", "error_description": "redirect_uri mismatch"},
                status_code=400,
            )
        state = query.get("state")
        back: dict[str, str] = {"state": state} if state is not None else {}
        scopes = tuple(query.get("scope", "").split())
        if query.get("response_type") != "code":
            return _redirect(redirect_uri, {**back, "error": "unsupported_response_type"})
        if not scopes or (
            self.allowed_scopes is not None and not set(scopes) <= set(self.allowed_scopes)
        ):
            return _redirect(redirect_uri, {**back, "error": "invalid_scope"})
        pkce, problem = _pkce_of(query, required=self.require_pkce)
        if problem is not None:
            return _redirect(
                redirect_uri, {**back, "error": "invalid_request", "error_description": problem}
            )
        if self.deny:
            return _redirect(redirect_uri, {**back, "error": "access_denied"})
        now = self.clock.time()
        authorization = Authorization(
            id=secrets.token_hex(8),
            client_id=client.client_id,
            scopes=scopes,
            tenants=tuple(self._consent_tenants(query)),
            created_at=now,
        )
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Code(authorization, redirect_uri, now + CODE_LIFETIME, pkce=pkce)
        return _redirect(
            redirect_uri, {"code": code, **back, **self._callback_extras(authorization)}
        )

    # -- tokens -------------------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        """The token endpoint: ``authorization_code`` and ``refresh_token`` grants."""
        form = await read_form(request)
        client = self._authenticate(request, form)
        if isinstance(client, Response):
            return client
        grant_type = str(form.get("grant_type", ""))
        if grant_type == "authorization_code":
            return self._exchange_code(client, str(form.get("code", "")), form)
        if grant_type == "refresh_token":
            return self._refresh_grant(client, str(form.get("refresh_token", "")))
        return _oauth_error("unsupported_grant_type", 400)

    def _exchange_code(self, client: OAuthClient, code: str, form: Mapping[str, str]) -> Response:
        now = self.clock.time()
        with self._lock:
            grant = self._codes.get(code)
            if (
                grant is None
                or grant.used
                or grant.expires_at <= now
                or grant.authorization.client_id != client.client_id
                or grant.redirect_uri != str(form.get("redirect_uri", ""))
            ):
                self.stats["refused"] += 1
                return _oauth_error("invalid_grant", 400)
            refused = _pkce_refusal(grant.pkce, form.get("code_verifier"))
            if refused is not None:
                self.stats["refused"] += 1
                return _oauth_error("invalid_grant", 400, refused)
            grant.used = True
            self.stats["codes"] += 1
            body = self._issue(grant.authorization, now)
        return JSONResponse(body, headers={"cache-control": "no-store"})

    def _refresh_grant(self, client: OAuthClient, token: str) -> Response:
        now = self.clock.time()
        with self._lock:
            record = self._refresh.get(token)
            if (
                record is None
                or record.authorization.revoked
                or record.authorization.client_id != client.client_id
                or record.expires_at <= now
            ):
                self.stats["refused"] += 1
                return _oauth_error("invalid_grant", 400)
            if record.spent_at is not None:
                if record.successor is not None and now - record.spent_at < self.refresh_grace:
                    # The client lost our previous answer: repeat it rather than strand it.
                    return JSONResponse(record.successor, headers={"cache-control": "no-store"})
                self.stats["refused"] += 1
                return _oauth_error("invalid_grant", 400)
            body = self._issue(record.authorization, now)
            record.spent_at = now
            record.successor = body
            self.stats["refreshes"] += 1
        return JSONResponse(body, headers={"cache-control": "no-store"})

    def _issue(self, authorization: Authorization, now: float) -> dict[str, Any]:
        access = secrets.token_urlsafe(32)
        refresh = secrets.token_urlsafe(32)
        self._access[access] = TokenInfo(authorization, now + self.access_lifetime)
        self._refresh[refresh] = _Refresh(authorization, now + self.refresh_lifetime)
        return {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "bearer",
            "expires_in": self.access_lifetime,
            "scope": " ".join(authorization.scopes),
            **self._token_extras(authorization),
        }

    async def revoke(self, request: Request) -> Response:
        """Revoke a token (and with it the whole authorization)."""
        form: dict[str, str] = {}
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                token = str((await request.json()).get("token", ""))
            except ValueError:
                return _oauth_error("invalid_request", 400)
        else:
            form = await read_form(request)
            token = form.get("token", "")
        client = self._authenticate(request, form)
        if isinstance(client, Response):
            return client
        with self._lock:
            found = self._refresh.get(token) or self._access.get(token)
            if found is not None and found.authorization.client_id == client.client_id:
                found.authorization.revoked = True
                self.stats["revocations"] += 1
        # RFC 7009: an unknown token is not an error.
        return Response(status_code=200)

    # -- API side -----------------------------------------------------------------------------

    def authorizations(self) -> list[Authorization]:
        """Every consent that tokens were issued for (a test changes them to, e.g.,
        disconnect a tenant)."""
        with self._lock:
            found = {id(r.authorization): r.authorization for r in self._refresh.values()}
            found.update({id(t.authorization): t.authorization for t in self._access.values()})
            return list(found.values())

    def bearer(self, request: Request) -> TokenInfo | None:
        """The valid access token of an API request, or ``None`` (missing, expired, revoked)."""
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            return None
        with self._lock:
            info = self._access.get(header[7:].strip())
        if info is None or info.authorization.revoked or info.expires_at <= self.clock.time():
            return None
        return info

    def expire_access_tokens(self) -> None:
        """Make every access token expire now (to test refresh on 401)."""
        now = self.clock.time()
        with self._lock:
            for info in self._access.values():
                info.expires_at = min(info.expires_at, now)

    def _authenticate(self, request: Request, form: Mapping[str, str]) -> OAuthClient | Response:
        """The client a token or revoke request authenticates as, or the refusal to send.

        Refusals say what the provider accepts (``error_description``), so that a plugin
        declaring another client authentication learns why.
        """
        header = request.headers.get("authorization", "")
        used = []
        if header.lower().startswith("basic "):
            used.append("basic")
        if "client_secret" in form:
            used.append("body")
        accepted = " or ".join(_DESCRIBE_AUTH[m] for m in self.client_auth)
        if len(used) > 1:
            # RFC 6749 §2.3: a client must not use more than one authentication method.
            return _oauth_error(
                "invalid_request",
                400,
                "the client authenticated twice (a Basic header and a client_secret in the "
                f"body); this provider accepts {accepted}",
            )
        if not used:
            return _oauth_error(
                "invalid_client", 401, f"no client authentication; this provider accepts {accepted}"
            )
        method = used[0]
        if method not in self.client_auth:
            return _oauth_error(
                "invalid_client",
                401,
                f"this provider does not accept {_DESCRIBE_AUTH[method]}; it accepts {accepted}",
            )
        if method == "basic":
            client_id, secret = _basic_credentials(header)
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        client = self.clients.get(client_id)
        if client is None or not secrets.compare_digest(
            client.client_secret.encode("utf-8"), secret.encode("utf-8")
        ):
            return _oauth_error("invalid_client", 401, "unknown client id or wrong client secret")
        return client


def _basic_credentials(header: str) -> tuple[str, str]:
    """``(client id, secret)`` from a Basic header; empty strings when it cannot be read."""
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return "", ""
    client_id, _, secret = decoded.partition(":")
    return client_id, secret


def _pkce_of(
    query: Mapping[str, str], *, required: bool
) -> tuple[tuple[str, str] | None, str | None]:
    """The consent's PKCE ``(challenge, method)``, and what is wrong with it (or ``None``)."""
    challenge = query.get("code_challenge")
    if not challenge:
        if required:
            return None, "this provider requires PKCE: send code_challenge (S256)"
        return None, None
    method = query.get("code_challenge_method", "plain")
    if method not in PKCE_METHODS:
        return None, f"code_challenge_method {method!r} is not one of {', '.join(PKCE_METHODS)}"
    return (challenge, method), None


def _pkce_refusal(pkce: tuple[str, str] | None, verifier: str | None) -> str | None:
    """Why a code exchange fails its PKCE check, or ``None`` when it passes."""
    if pkce is None:
        return None
    if not verifier:
        return "the consent carried a code_challenge: send its code_verifier"
    challenge, method = pkce
    if not secrets.compare_digest(pkce_challenge(verifier, method), challenge):
        return "code_verifier does not match the code_challenge"
    return None


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form body as a dict (the last value wins for repeated keys)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return dict(parse_qsl(body, keep_blank_values=True))


def _redirect(uri: str, params: Mapping[str, str]) -> Response:
    separator = "&" if "?" in uri else "?"
    return RedirectResponse(f"{uri}{separator}{urlencode(params)}", status_code=302)


def _oauth_error(error: str, status: int, description: str | None = None) -> Response:
    body = {"error": error}
    if description:
        body["error_description"] = description
    return JSONResponse(body, status_code=status, headers={"cache-control": "no-store"})
