"""Event push: webhooks retried with backoff and logged, redelivered; the Server-Sent Events
stream. On the ``fakebooks`` destination, with a manual clock for the backoff."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from api_harness import Api, sample, serve_api
from test_flow import Receiver, verify

import fakebooks_plugin as fake
from billbridge import Engine
from billbridge.api import ApiSettings
from billbridge.secrets import generate_key
from billbridge.services.webhooks import MAX_ATTEMPTS
from billbridge.testing.emulation.clock import ManualClock
from billbridge.testing.emulation.server import serve

ACME = sample("account-acme-uk.json")
ACME_BILL = sample("bill-acme-uk-2025-09.json")


@attrs.define
class World:
    engine: Engine
    api: Api
    clock: ManualClock
    provider: fake.Provider


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    clock = ManualClock()
    provider = fake.Provider(clock)
    with serve(provider.app) as server:
        engine = fake.make_engine(database_url, server.url, clock, tmp_path, generate_key())
        api, app_server = serve_api(engine, ApiSettings(stream_interval=0.05, stream_lifetime=5))
        try:
            yield World(engine, api, clock, provider)
        finally:
            app_server.stop()
            api.http.close()
            engine.close()


def deliver_one_bill(world: World, *, mapped: bool = True) -> None:
    integration = world.engine.integrations.create(name="Fake", destination="fakebooks")
    credential = fake.connect(world.engine)
    world.engine.integrations.connect(integration.id, credential.id)
    if mapped:
        world.engine.mappings.create(
            entity="Account", entity_id=ACME["id"], external_table="Customer",
            external_id="c-1", external_system="fakebooks",
        )  # fmt: skip
    world.api.post("/api/bills", {"bill": ACME_BILL, "account": ACME}, expect=201)
    world.engine.deliver_pending()


def test_a_failing_endpoint_is_retried_with_backoff_then_given_up(world: World) -> None:
    receiver = Receiver(fail=MAX_ATTEMPTS + 1)
    with serve(receiver.app) as hooks:
        created = world.api.post(
            "/api/webhooks", {"url": f"{hooks.url}/hook", "eventTypes": ["run.complete"]},
            expect=201,
        )  # fmt: skip
        webhook = created["webhook"]["id"]
        deliver_one_bill(world)
        webhooks = world.engine.webhooks
        assert webhooks.dispatch() == 1
        log = world.api.get(f"/api/webhooks/{webhook}/deliveries")["items"]
        assert (log[0]["status"], log[0]["attempts"], log[0]["responseStatus"]) == (
            "PENDING",
            1,
            500,
        )
        assert log[0]["error"] == "the endpoint answered HTTP 500"
        assert webhooks.dispatch() == 0  # not due yet: backoff
        waits = []
        for _ in range(MAX_ATTEMPTS - 1):
            due = webhooks.deliveries(webhook)[0].next_attempt_at
            assert due is not None
            waits.append((due - world.clock.now()).total_seconds())
            world.clock.advance(waits[-1])
            assert webhooks.dispatch() == 1
        assert waits == [10, 20, 40, 80, 160, 320, 640, 1280, 2560]
        failed = world.api.get(f"/api/webhooks/{webhook}/deliveries", params={"status": "FAILED"})
        assert failed["total"] == 1 and failed["items"][0]["attempts"] == MAX_ATTEMPTS
        # Sent again by hand: the receiver is up now (one more failure left, then it answers).
        again = world.api.post(f"/api/webhooks/deliveries/{failed['items'][0]['id']}/redeliver")
        assert again["status"] == "PENDING"
        webhooks.dispatch()
        world.clock.advance(10)
        webhooks.dispatch()
        done = world.api.get(f"/api/webhooks/{webhook}/deliveries")["items"][0]
        assert (done["status"], done["responseStatus"]) == ("DELIVERED", 200)
    bodies = {body for _, body in receiver.received}
    assert len(bodies) == 1  # the same notification every time, signed afresh
    for headers, body in receiver.received:
        verify(created["secret"], headers, body)
        assert headers["x-billbridge-event"] == "run.complete"
    payload = json.loads(next(iter(bodies)))
    assert payload["type"] == "run.complete" and payload["data"]["billId"] == ACME_BILL["id"]


def test_a_webhook_url_must_be_https(world: World) -> None:
    body = world.api.post(
        "/api/webhooks", {"url": "http://hooks.example.com/x", "eventTypes": ["run.lost"]},
        expect=422,
    )  # fmt: skip
    assert body["errors"][0]["path"] == "/eventTypes/0"
    body = world.api.post("/api/webhooks", {"url": "http://hooks.example.com/x"}, expect=422)
    assert body["errors"] == [
        {"path": "/url", "message": "must be an https URL (plain http only on this machine)"}
    ]


def read_events(
    url: str,
    key: str,
    wanted: int,
    seen: list[dict[str, Any]],
    connected: threading.Event | None = None,
) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.stream("GET", url, headers=headers, timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("retry:") and connected is not None:
                connected.set()
            if line.startswith("data: "):
                seen.append(json.loads(line[len("data: ") :]))
                if len(seen) >= wanted:
                    return


def test_the_event_stream_pushes_outcomes_and_events(world: World) -> None:
    seen: list[dict[str, Any]] = []
    connected = threading.Event()
    reader = threading.Thread(
        target=read_events,
        args=(f"{world.api.url}/api/stream", world.api.read_key, 2, seen, connected),
        daemon=True,
    )
    reader.start()
    assert connected.wait(10)
    world.clock.advance(1)  # items after the stream opened
    deliver_one_bill(world, mapped=False)  # an ERROR outcome and its event
    reader.join(10)
    assert sorted(item["type"] for item in seen) == [
        "integration.missingaccountmapping.error", "run.error",
    ]  # fmt: skip
    assert len({item["key"] for item in seen}) == 2
    filtered: list[dict[str, Any]] = []
    read_events(
        f"{world.api.url}/api/stream?types=run.error&since=2000-01-01T00:00:00Z",
        world.api.read_key, 1, filtered,
    )  # fmt: skip
    assert [item["type"] for item in filtered] == ["run.error"]
