"""The emulator kit: loopback server, clocks, rate windows, fault injection, OAuth server."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from billbridge.testing.emulation.clock import ManualClock, ScaledClock
from billbridge.testing.emulation.faults import FaultMiddleware, FaultPlan
from billbridge.testing.emulation.limits import ConcurrencyLimit, SlidingWindow
from billbridge.testing.emulation.oauth import OAuthServer, pkce_challenge
from billbridge.testing.emulation.server import RunningServer, serve
from billbridge.testing.tokens import obtain_tokens

REDIRECT = "http://127.0.0.1:9/callback"


def test_sliding_window_and_manual_clock() -> None:
    clock = ManualClock()
    window = SlidingWindow(limit=3, window=60, clock=clock)
    assert [window.acquire("t") for _ in range(3)] == [0, 0, 0]
    assert window.acquire("t") == pytest.approx(60)
    assert window.remaining("t") == 0
    assert window.remaining("other") == 3
    clock.advance(30)
    assert window.retry_after("t") == 30
    clock.advance(30)
    assert window.acquire("t") == 0


def test_scaled_clock_runs_faster() -> None:
    clock = ScaledClock(600)
    start = clock.time()
    clock.sleep(60)  # a minute of scaled time is a tenth of a second
    assert 59 <= clock.time() - start < 120


def test_concurrency_limit() -> None:
    limit = ConcurrencyLimit(1)
    with limit.hold("t") as first:
        with limit.hold("t") as second:
            assert first and not second
        assert limit.in_flight("t") == 1
    assert limit.in_flight("t") == 0
    assert limit.peak == 1


@pytest.fixture
def counter_server() -> Iterator[tuple[RunningServer, FaultPlan, list[int]]]:
    writes: list[int] = []

    async def write(request: Request) -> Response:
        writes.append(len(writes) + 1)
        return JSONResponse({"written": len(writes)})

    plan = FaultPlan(hang_seconds=2.0, path_prefixes=("/write",))
    app = FaultMiddleware(Starlette(routes=[Route("/write", write, methods=["POST"])]), plan)
    with serve(app) as server:
        yield server, plan, writes


def test_faults_error_timeout_and_lost_response(
    counter_server: tuple[RunningServer, FaultPlan, list[int]],
) -> None:
    server, plan, writes = counter_server
    with httpx.Client(base_url=server.url, timeout=0.5) as client:
        assert client.post("/write").json() == {"written": 1}
        plan.script("error")
        assert client.post("/write").status_code in (500, 503)
        assert writes == [1]  # refused before anything was written
        plan.script("timeout")
        with pytest.raises(httpx.TimeoutException):
            client.post("/write")
        assert writes == [1]
        plan.script("lost")
        with pytest.raises(httpx.RemoteProtocolError):
            client.post("/write")
        assert writes == [1, 2]  # committed, although the client never heard
        assert client.post("/write").json() == {"written": 3}
    assert plan.injected == {"error": 1, "timeout": 1, "lost": 1}


def test_random_faults_follow_the_rates() -> None:
    plan = FaultPlan(error_rate=0.2, lost_response_rate=0.1, seed=42)
    drawn = [plan.draw() for _ in range(2000)]
    assert 300 < drawn.count("error") < 500
    assert 120 < drawn.count("lost") < 280
    assert drawn.count("timeout") == 0


# --- OAuth ---------------------------------------------------------------------------------------


@pytest.fixture
def oauth() -> Iterator[tuple[OAuthServer, RunningServer, ManualClock]]:
    clock = ManualClock()
    provider = OAuthServer(
        clock=clock,
        access_lifetime=1800,
        refresh_lifetime=60 * 86400,
        refresh_grace=1800,
        consent_tenants=lambda query: ["tenant-1"],
        callback_extras=lambda auth: {"realmId": auth.tenants[0]},
        allowed_scopes=["offline_access", "accounting"],
    )
    provider.add_client("app", "s3cret")

    async def api(request: Request) -> Response:
        info = provider.bearer(request)
        if info is None:
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return JSONResponse({"tenants": list(info.authorization.tenants)})

    app = Starlette(
        routes=[
            Route("/authorize", provider.authorize),
            Route("/token", provider.token, methods=["POST"]),
            Route("/revoke", provider.revoke, methods=["POST"]),
            Route("/api", api),
        ]
    )
    with serve(app) as server:
        yield provider, server, clock


def basic(client_id: str = "app", secret: str = "s3cret") -> dict[str, str]:
    token = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def consent(client: httpx.Client, **extra: str) -> dict[str, str]:
    params = {
        "client_id": "app",
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "offline_access accounting",
        "state": "st-1",
        **extra,
    }
    response = client.get("/authorize", params=params)
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    return {k: v[0] for k, v in query.items()}


def exchange(client: httpx.Client, code: str) -> httpx.Response:
    return client.post(
        "/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        headers=basic(),
    )


def refresh(client: httpx.Client, token: str) -> httpx.Response:
    return client.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": token}, headers=basic()
    )


def test_oauth_code_flow_refresh_rotation_and_grace(
    oauth: tuple[OAuthServer, RunningServer, ManualClock],
) -> None:
    provider, server, clock = oauth
    with httpx.Client(base_url=server.url) as client:
        callback = consent(client)
        assert callback["state"] == "st-1"
        assert callback["realmId"] == "tenant-1"
        tokens = exchange(client, callback["code"]).json()
        assert tokens["expires_in"] == 1800
        assert exchange(client, callback["code"]).json() == {"error": "invalid_grant"}
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert client.get("/api", headers=bearer).json() == {"tenants": ["tenant-1"]}

        clock.advance(1801)
        assert client.get("/api", headers=bearer).status_code == 401
        rotated = refresh(client, tokens["refresh_token"]).json()
        assert rotated["refresh_token"] != tokens["refresh_token"]
        # A lost answer: within the grace the spent token gets the same answer again...
        assert refresh(client, tokens["refresh_token"]).json() == rotated
        clock.advance(1801)
        # ...after it, the spent token is refused.
        assert refresh(client, tokens["refresh_token"]).status_code == 400
        assert provider.stats["refreshes"] == 1


def test_oauth_refusals(oauth: tuple[OAuthServer, RunningServer, ManualClock]) -> None:
    provider, server, _clock = oauth
    with httpx.Client(base_url=server.url) as client:
        bad_redirect = client.get(
            "/authorize",
            params={
                "client_id": "app",
                "redirect_uri": "https://evil.example/cb",
                "response_type": "code",
                "scope": "accounting",
            },
        )
        assert bad_redirect.status_code == 400
        assert consent(client, scope="everything")["error"] == "invalid_scope"
        provider.deny = True
        assert consent(client)["error"] == "access_denied"
        provider.deny = False
        code = consent(client)["code"]
        wrong_secret = client.post(
            "/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
            headers=basic(secret="nope"),
        )
        assert wrong_secret.status_code == 401
        tokens: dict[str, Any] = exchange(client, code).json()
        assert (
            client.post(
                "/revoke", json={"token": tokens["refresh_token"]}, headers=basic()
            ).status_code
            == 200
        )
        assert refresh(client, tokens["refresh_token"]).json() == {"error": "invalid_grant"}
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert client.get("/api", headers=bearer).status_code == 401


@pytest.fixture
def body_only() -> Iterator[tuple[OAuthServer, RunningServer]]:
    """A provider that wants the client's credentials in the form body, and PKCE."""
    provider = OAuthServer(
        clock=ManualClock(),
        access_lifetime=3600,
        refresh_lifetime=86400,
        client_auth=("body",),
        require_pkce=True,
    )
    provider.add_client("app", "s3cret")
    app = Starlette(
        routes=[
            Route("/authorize", provider.authorize),
            Route("/token", provider.token, methods=["POST"]),
            Route("/revoke", provider.revoke, methods=["POST"]),
        ]
    )
    with serve(app) as server:
        yield provider, server


def test_client_authentication_in_the_body_and_what_a_refusal_says(
    body_only: tuple[OAuthServer, RunningServer],
) -> None:
    provider, server = body_only
    verifier = "v" * 50
    with httpx.Client(base_url=server.url) as client:
        callback = consent(
            client, code_challenge=pkce_challenge(verifier), code_challenge_method="S256"
        )
        grant = {
            "grant_type": "authorization_code",
            "code": callback["code"],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        }
        as_basic = client.post("/token", data=grant, headers=basic())
        assert as_basic.status_code == 401
        assert as_basic.json() == {
            "error": "invalid_client",
            "error_description": "this provider does not accept an HTTP Basic Authorization "
            "header; it accepts client_id and client_secret in the form body",
        }
        secrets_in_body = {"client_id": "app", "client_secret": "s3cret"}
        twice = client.post("/token", data=grant | secrets_in_body, headers=basic())
        assert twice.json()["error"] == "invalid_request"
        wrong = client.post("/token", data=grant | secrets_in_body | {"client_secret": "x"})
        assert wrong.json()["error"] == "invalid_client"
        tokens = client.post("/token", data=grant | secrets_in_body).json()
        assert tokens["token_type"] == "bearer"
        revoked = client.post("/revoke", data={"token": tokens["refresh_token"]} | secrets_in_body)
        assert revoked.status_code == 200
        assert client.post("/revoke", data={"token": "x"}, headers=basic()).status_code == 401
    assert provider.stats == {"codes": 1, "refreshes": 0, "refused": 0, "revocations": 1}


def test_pkce_is_bound_to_the_code(body_only: tuple[OAuthServer, RunningServer]) -> None:
    _provider, server = body_only
    secrets_in_body = {"client_id": "app", "client_secret": "s3cret"}
    with httpx.Client(base_url=server.url) as client:
        refused = consent(client)  # no challenge, and this provider requires one
        assert refused["error"] == "invalid_request"
        assert "requires PKCE" in refused["error_description"]
        assert consent(client, code_challenge="c", code_challenge_method="MD5")["error"] == (
            "invalid_request"
        )
        for method, challenge in (("S256", pkce_challenge("a" * 43)), ("plain", "a" * 43)):
            code = consent(client, code_challenge=challenge, code_challenge_method=method)["code"]
            grant = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
            mismatch = client.post(
                "/token", data=grant | secrets_in_body | {"code_verifier": "b" * 43}
            )
            assert mismatch.json() == {
                "error": "invalid_grant",
                "error_description": "code_verifier does not match the code_challenge",
            }
            code = consent(client, code_challenge=challenge, code_challenge_method=method)["code"]
            grant["code"] = code
            missing = client.post("/token", data=grant | secrets_in_body)
            assert "send its code_verifier" in missing.json()["error_description"]
            code = consent(client, code_challenge=challenge, code_challenge_method=method)["code"]
            grant["code"] = code
            ok = client.post("/token", data=grant | secrets_in_body | {"code_verifier": "a" * 43})
            assert ok.status_code == 200, (method, ok.text)


def test_the_token_helper_can_send_pkce(body_only: tuple[OAuthServer, RunningServer]) -> None:
    provider, server = body_only
    with httpx.Client() as http:
        tokens = obtain_tokens(
            http,
            authorize_url=f"{server.url}/authorize",
            token_url=f"{server.url}/token",
            client_id="app",
            client_secret="s3cret",
            scopes=["accounting"],
            client_auth="body",
            pkce=True,
        )
    assert tokens.access_token
    assert provider.stats["codes"] == 1


def test_the_server_knows_only_the_contracts_client_authentications() -> None:
    with pytest.raises(ValueError, match="client_auth must be one or more of"):
        OAuthServer(clock=ManualClock(), access_lifetime=1, refresh_lifetime=1, client_auth=())
    with pytest.raises(ValueError, match="client_auth must be one or more of"):
        OAuthServer(
            clock=ManualClock(), access_lifetime=1, refresh_lifetime=1, client_auth=("jwt",)
        )
