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
from billbridge.testing.emulation.oauth import OAuthServer
from billbridge.testing.emulation.server import RunningServer, serve

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
