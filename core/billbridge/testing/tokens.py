"""Get tokens from a fake OAuth provider, for tests that call hooks directly.

The engine completes consents itself (``engine.credentials``); a test that calls a plugin's
hooks without an engine only needs a token for a :class:`~billbridge.plugin.contract.Connection`.
:func:`obtain_tokens` approves the consent page and exchanges the code over real HTTP, as a
browser and the core would, against any fake built on
:class:`~billbridge.testing.emulation.oauth.OAuthServer`. Give it your plugin's
:class:`~billbridge.plugin.contract.OAuthSpec` and it asks for the declared scopes, adds the
declared consent parameters and token request headers, and authenticates the client the way
the spec declares (``client_auth``), so a plugin whose declaration disagrees with its provider
fails here, in its own tests, instead of at ``billbridge credentials create``::

    from billbridge_mydest.hooks import OAUTH           # the plugin's OAuthSpec

    provider.oauth.add_client("app", "secret")          # your fake's OAuthServer
    tokens = obtain_tokens(
        http,
        oauth=OAUTH,
        authorize_url=f"{server.url}/oauth/authorize",
        token_url=f"{server.url}/oauth/token",
        client_id="app",
        client_secret="secret",
    )
    connection = Connection(..., access_token=Secret(tokens.access_token), ...)
    callback = tokens.oauth_callback()                  # for Harness.oauth_callback

:class:`OAuthTestApp` holds the same endpoints and app for the conformance kit
(``Harness.oauth_app``), which then checks the exchange with the core's own token code.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import httpx

from billbridge.domain.models import Secret
from billbridge.plugin.contract import OAuthCallback, OAuthSpec

__all__ = [
    "LOOPBACK_REDIRECT",
    "OAuthTestApp",
    "ObtainedTokens",
    "obtain_tokens",
    "refresh_tokens",
]

LOOPBACK_REDIRECT = "http://127.0.0.1:9/callback"
"""A redirect URI every emulator accepts (loopback); nothing needs to listen there."""


@attrs.frozen
class ObtainedTokens:
    """The token endpoint's answer and the consent callback's query parameters.

    :param access_token: the access token, as text (wrap it in ``Secret`` for a Connection).
    :param refresh_token: the refresh token, or ``None`` when the provider gave none.
    :param callback: the consent redirect's query parameters (``code``, ``state``, and what the
        provider adds, such as QuickBooks' ``realmId``).
    :param response: the token endpoint's whole JSON answer.
    """

    access_token: str
    refresh_token: str | None
    callback: Mapping[str, str]
    response: Mapping[str, Any]

    def oauth_callback(self, tenant_hint: str | None = None) -> OAuthCallback:
        """What the core hands ``authenticate`` after this consent (``Harness.oauth_callback``)."""
        return OAuthCallback(
            params=self.callback, access_token=Secret(self.access_token), tenant_hint=tenant_hint
        )


@attrs.frozen(kw_only=True)
class OAuthTestApp:
    """A fake provider's OAuth endpoints and an app registered there (``Harness.oauth_app``).

    :param authorize_url: the fake's consent page.
    :param token_url: the fake's token endpoint.
    :param client_id: an app registered with the fake (``OAuthServer.add_client``).
    :param client_secret: its secret.
    :param revoke_url: the fake's revocation endpoint, if it has one.
    :param redirect_uri: a redirect URI the fake accepts (any loopback address by default).
    """

    authorize_url: str
    token_url: str
    client_id: str
    client_secret: str
    revoke_url: str | None = None
    redirect_uri: str = LOOPBACK_REDIRECT

    def obtain_tokens(self, http: httpx.Client, oauth: OAuthSpec, **options: Any) -> ObtainedTokens:
        """:func:`obtain_tokens` with this app's endpoints and ``oauth``'s declaration."""
        return obtain_tokens(
            http,
            oauth=oauth,
            authorize_url=self.authorize_url,
            token_url=self.token_url,
            client_id=self.client_id,
            client_secret=self.client_secret,
            redirect_uri=self.redirect_uri,
            **options,
        )


def obtain_tokens(
    http: httpx.Client,
    *,
    authorize_url: str,
    token_url: str,
    client_id: str,
    client_secret: str,
    oauth: OAuthSpec | None = None,
    scopes: Sequence[str] | None = None,
    client_auth: str | None = None,
    pkce: bool = False,
    redirect_uri: str = LOOPBACK_REDIRECT,
    extra_params: Mapping[str, str] | None = None,
) -> ObtainedTokens:
    """Approve the consent at ``authorize_url`` and exchange the code at ``token_url``.

    :param http: the client to send both requests with (it must not follow redirects, which
        is httpx's default).
    :param oauth: your plugin's ``OAuthSpec``: its ``scopes``, ``extra_authorize_params``,
        ``token_request_headers`` and ``client_auth`` are used as the core uses them.
    :param scopes: the scopes to ask for (default: ``oauth.scopes``; one of the two is needed).
    :param client_auth: ``"basic"`` or ``"body"`` (default: ``oauth.client_auth``, else
        ``"basic"``); see :data:`~billbridge.testing.emulation.oauth.CLIENT_AUTH_METHODS`.
    :param pkce: send a PKCE challenge (``S256``) and its verifier.
    :param redirect_uri: where the fake redirects back to (nothing needs to listen there).
    :param extra_params: more query parameters for the consent page (an emulator's tenant
        choice, for instance), after ``oauth.extra_authorize_params``.
    :raises AssertionError: the fake did not redirect back with a code, or refused the
        exchange; the message says what it answered and, for ``invalid_client``, which client
        authentication was used and where to declare another.
    """
    wanted = list(scopes if scopes is not None else (oauth.scopes if oauth else ()))
    if not wanted:
        raise ValueError("obtain_tokens needs scopes=... or oauth=<your OAuthSpec>")
    method = client_auth or (oauth.client_auth if oauth else "basic")
    params: dict[str, str] = {
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": " ".join(wanted),
        "state": "conformance",
        **(oauth.extra_authorize_params if oauth else {}),
        **(extra_params or {}),
    }
    form: dict[str, str] = {}
    if pkce:
        # Imported here: the emulation package is only needed for PKCE.
        from billbridge.testing.emulation.oauth import pkce_challenge

        verifier = secrets.token_urlsafe(48)
        params |= {"code_challenge": pkce_challenge(verifier), "code_challenge_method": "S256"}
        form["code_verifier"] = verifier
    consent = http.get(authorize_url, params=params)
    if consent.status_code not in (302, 303) or "location" not in consent.headers:
        raise AssertionError(
            f"the consent page answered {consent.status_code} instead of a redirect: "
            f"{consent.text[:300]}"
        )
    query = parse_qs(urlsplit(consent.headers["location"]).query)
    callback = {key: values[0] for key, values in query.items()}
    if "code" not in callback:
        raise AssertionError(f"the consent redirect carries no code: {callback}")
    form |= {"grant_type": "authorization_code", "code": callback["code"]}
    form["redirect_uri"] = redirect_uri
    tokens = _token_request(http, token_url, form, client_id, client_secret, method, oauth)
    return ObtainedTokens(
        access_token=str(tokens["access_token"]),
        refresh_token=tokens.get("refresh_token"),
        callback=callback,
        response=tokens,
    )


def refresh_tokens(
    http: httpx.Client,
    *,
    token_url: str,
    refresh_token: str,
    client_id: str,
    client_secret: str,
    oauth: OAuthSpec | None = None,
    client_auth: str | None = None,
) -> ObtainedTokens:
    """Use ``refresh_token`` at ``token_url`` as the core does when an access token expires.

    Client authentication and headers as in :func:`obtain_tokens`. The answer's
    ``refresh_token`` is the new one when the provider rotates them (``None`` when it keeps
    the old one); ``callback`` is empty.

    :raises AssertionError: the fake refused (the message says what it answered).
    """
    method = client_auth or (oauth.client_auth if oauth else "basic")
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    tokens = _token_request(http, token_url, form, client_id, client_secret, method, oauth)
    return ObtainedTokens(
        access_token=str(tokens["access_token"]),
        refresh_token=tokens.get("refresh_token"),
        callback={},
        response=tokens,
    )


def _token_request(
    http: httpx.Client,
    token_url: str,
    form: dict[str, str],
    client_id: str,
    client_secret: str,
    method: str,
    oauth: OAuthSpec | None,
) -> dict[str, Any]:
    headers = {"Accept": "application/json", **(oauth.token_request_headers if oauth else {})}
    if method == "basic":
        basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        headers["Authorization"] = f"Basic {basic}"
    elif method == "body":
        form = {**form, "client_id": client_id, "client_secret": client_secret}
    else:
        raise ValueError(f"client_auth must be 'basic' or 'body', not {method!r}")
    answer = http.post(token_url, data=form, headers=headers)
    if answer.status_code != 200:
        hint = ""
        if "invalid_client" in answer.text:
            where = "an HTTP Basic header" if method == "basic" else "the form body"
            other = "body" if method == "basic" else "basic"
            hint = (
                f" (the client id and secret were sent in {where}, client_auth={method!r}; if "
                f"the provider documents the other way, declare OAuthSpec(client_auth={other!r}))"
            )
        raise AssertionError(
            f"the token endpoint answered {answer.status_code}: {answer.text[:300]}{hint}"
        )
    tokens: dict[str, Any] = answer.json()
    return tokens
