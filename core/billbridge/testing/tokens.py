"""Get an access token from an emulated OAuth provider, for tests that call hooks directly.

The engine completes consents itself (``engine.credentials``); a test that calls a plugin's
hooks without an engine only needs a token for a :class:`~billbridge.plugin.contract.Connection`.
:func:`obtain_tokens` approves the consent page and exchanges the code over real HTTP, exactly
as a browser and the core would, against any emulator built on
:class:`~billbridge.testing.emulation.oauth.OAuthServer`::

    emulator.oauth.add_client("app", "secret")
    tokens = obtain_tokens(http, authorize_url=..., token_url=..., client_id="app",
                           client_secret="secret", scopes=["accounting"])
    connection = Connection(..., access_token=Secret(tokens.access_token), ...)
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import httpx

__all__ = ["LOOPBACK_REDIRECT", "ObtainedTokens", "obtain_tokens"]

LOOPBACK_REDIRECT = "http://127.0.0.1:9/callback"
"""A redirect URI every emulator accepts (loopback); nothing needs to listen there."""


@attrs.frozen
class ObtainedTokens:
    """The token endpoint's answer and the consent callback's query parameters."""

    access_token: str
    refresh_token: str | None
    callback: Mapping[str, str]
    response: Mapping[str, Any]


def obtain_tokens(
    http: httpx.Client,
    *,
    authorize_url: str,
    token_url: str,
    client_id: str,
    client_secret: str,
    scopes: Sequence[str],
    redirect_uri: str = LOOPBACK_REDIRECT,
    extra_params: Mapping[str, str] | None = None,
) -> ObtainedTokens:
    """Approve the consent at ``authorize_url`` and exchange the code at ``token_url``.

    :param extra_params: more query parameters for the consent page (an emulator's tenant
        choice, for instance).
    :raises AssertionError: the emulator did not redirect back with a code, or refused the
        exchange (the message says what it answered).
    """
    consent = http.get(
        authorize_url,
        params={
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": " ".join(scopes),
            "state": "conformance",
            **(extra_params or {}),
        },
    )
    if consent.status_code not in (302, 303) or "location" not in consent.headers:
        raise AssertionError(
            f"the consent page answered {consent.status_code} instead of a redirect: "
            f"{consent.text[:300]}"
        )
    query = parse_qs(urlsplit(consent.headers["location"]).query)
    callback = {key: values[0] for key, values in query.items()}
    if "code" not in callback:
        raise AssertionError(f"the consent redirect carries no code: {callback}")
    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    answer = http.post(
        token_url,
        data={
            "grant_type": "authorization_code",
            "code": callback["code"],
            "redirect_uri": redirect_uri,
        },
        headers={"Authorization": f"Basic {basic}"},
    )
    if answer.status_code != 200:
        raise AssertionError(
            f"the token endpoint answered {answer.status_code}: {answer.text[:300]}"
        )
    tokens: dict[str, Any] = answer.json()
    return ObtainedTokens(
        access_token=str(tokens["access_token"]),
        refresh_token=tokens.get("refresh_token"),
        callback=callback,
        response=tokens,
    )
