"""The engine is thread-safe for the API's uses: 50 concurrent requests, mixed with a worker
delivering in the background, on SQLite and on PostgreSQL, end without an error and with every
bill delivered once."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from api_harness import Api, sample, serve_api

import fakebooks_plugin as fake
from billbridge.api import BackgroundWorker
from billbridge.secrets import generate_key
from billbridge.testing.emulation.clock import ManualClock
from billbridge.testing.emulation.server import serve

ACME = sample("account-acme-uk.json")
ACME_BILL = sample("bill-acme-uk-2025-09.json")
REQUESTS = 50


def pair(n: int) -> dict[str, Any]:
    account = {**ACME, "id": f"acct-{n}"}
    return {
        "bill": {**ACME_BILL, "id": f"bill-{n}", "accountId": account["id"]},
        "account": account,
    }


def one_request(api: Api, n: int, integration_id: str) -> int:
    """One of a mix of reads and writes; returns the status (checked by the caller)."""
    kind = n % 10
    if kind in (0, 1, 2):
        return api.request("POST", "/api/bills", json=pair(n), expect=201).status_code
    if kind == 3:
        body = {"items": [pair(1000 + n), pair(2000 + n)]}
        return api.request("POST", "/api/bills:batch", json=body, expect=201).status_code
    if kind == 4:
        return api.request("POST", "/api/bills:explain", json=pair(n), key=api.read_key).status_code
    if kind == 5:
        current = api.get(f"/api/integrations/{integration_id}")
        body = {
            "version": current["version"],
            "config": {**current["config"], "usersToNotify": [f"u{n}@x.example"]},
        }
        response = api.request("PUT", f"/api/integrations/{integration_id}", json=body)
        assert response.status_code in (200, 409), response.text  # 409: someone saved first
        return response.status_code
    if kind == 6:
        return api.request(
            "GET", "/api/runs", params={"status": "COMPLETE", "limit": 5}
        ).status_code
    if kind == 7:
        return api.request("GET", "/api/events", key=api.read_key).status_code
    if kind == 8:
        return api.request("GET", "/api/mappings", params={"m3terEntity": "Account"}).status_code
    return api.request("GET", "/metrics", key=api.read_key).status_code


def test_fifty_concurrent_requests_beside_a_delivering_worker(
    database_url: str, tmp_path: Path
) -> None:
    clock = ManualClock()
    provider = fake.Provider(clock, rate_limit=100_000)
    with serve(provider.app) as server:
        engine = fake.make_engine(
            database_url, server.url, clock, tmp_path, generate_key(), batch=True
        )
        api, app_server = serve_api(engine)
        worker = BackgroundWorker(engine, poll=0.05)
        try:
            integration = engine.integrations.create(name="Fake", destination="fakebooks")
            engine.integrations.connect(integration.id, fake.connect(engine).id)
            numbers = [n for n in range(REQUESTS) if n % 10 in (0, 1, 2)]
            numbers += [m for n in range(REQUESTS) if n % 10 == 3 for m in (1000 + n, 2000 + n)]
            engine.mappings.create_many(
                [{"entity": "Account", "entity_id": f"acct-{n}", "external_table": "Customer",
                  "external_id": f"c-{n}", "external_system": "fakebooks"} for n in numbers]
            )  # fmt: skip
            worker.start()
            order = list(range(REQUESTS))
            random.Random(7).shuffle(order)
            with ThreadPoolExecutor(25) as pool:
                statuses = list(pool.map(lambda n: one_request(api, n, integration.id), order))
            assert worker.stop(60)
            assert all(s < 500 for s in statuses)
            engine.deliver_pending()  # whatever arrived after the worker's last pass
            runs = engine.runs.list(limit=None)
            assert len(runs) == len(numbers)
            assert {r.status.value for r in runs} == {"COMPLETE"}
            assert len(provider.invoices) == len(numbers)  # each bill once
            assert not any("internal_error" in answer for answer in api.answers)
        finally:
            worker.stop(60)
            app_server.stop()
            api.http.close()
            engine.close()
